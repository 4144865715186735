"""Trace-replay evidence: what `lmcache trace replay` wrote.

Reads `trace_replay_summary.json` (`--json`), the per-record JSONL (`--jsonl-out`),
`trace_replay_ops.csv` (CRLF, `%.6f`) and the terminal table (stdout). Upstream facts that
shape the meaning (see docs/evidence.md): `failed` means only that a handler raised — cache
misses during replay are invisible; skipped records appear in the JSONL as
`latency_ms 0.0, failed true` but are not failures; the JSON summary has no totals.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import msgspec

from inferguard.evidence._model import Evidence, EvidenceSource, Problem, read_source, status_from

CSV_HEADER = ["qualname", "count", "errors", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms",
              "max_ms"]


class ReplayOp(msgspec.Struct, frozen=True, omit_defaults=True):
    qualname: str
    count: int
    errors: int
    mean_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None


class ReplayFacts(msgspec.Struct, frozen=True, tag="trace_replay", omit_defaults=True):
    """One replay output file's facts; `form` says which output it was."""

    form: str = "unknown"
    duration_s: float | None = None
    ops: list[ReplayOp] = msgspec.field(default_factory=list)
    records: int | None = None
    replayed: int | None = None
    failed: int | None = None
    skipped_or_failed: int | None = None
    skipped: int | None = None
    level: str | None = None
    digest_match: bool | None = None


def _f(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def _i(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _op(name: str, d: dict[str, Any]) -> ReplayOp:
    return ReplayOp(name, _i(d.get("count")), _i(d.get("errors")), _f(d.get("mean_ms")),
                    _f(d.get("p50_ms")), _f(d.get("p90_ms")), _f(d.get("p99_ms")),
                    _f(d.get("min_ms")), _f(d.get("max_ms")))


def parse_replay(data: bytes, name: str) -> tuple[ReplayFacts | None, list[Problem]]:
    """Recognise the output form by content (not by name alone) and read it."""
    text = data.decode("utf-8", "replace")
    problems: list[Problem] = []
    stripped = text.lstrip()
    if stripped.startswith("{") and '"ops"' in text and not name.endswith(".jsonl"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return None, [Problem(f"summary JSON does not parse: {exc}")]
        ops = doc.get("ops") if isinstance(doc, dict) else None
        if not isinstance(ops, dict):
            return None, [Problem('summary JSON has no "ops" map')]
        return ReplayFacts(form="summary_json", duration_s=_f(doc.get("duration_s")),
                           ops=[_op(k, v if isinstance(v, dict) else {})
                                for k, v in sorted(ops.items())]), problems
    if stripped.startswith("{"):
        per_op: dict[str, list[float]] = {}
        errs: dict[str, int] = {}
        records = failed_zero = failed = 0
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                q, lat, fail = str(d["qualname"]), float(d["latency_ms"]), bool(d["failed"])
            except (ValueError, KeyError, TypeError, RecursionError):
                problems.append(Problem("expected {qualname, latency_ms, failed}", line=n))
                continue
            records += 1
            if fail:
                # Skipped records are written as latency 0.0, failed true: indistinguishable
                # from a failure that took no time, so they are counted apart.
                errs[q] = errs.get(q, 0) + 1
                if lat == 0.0:
                    failed_zero += 1
                else:
                    failed += 1
            else:
                per_op.setdefault(q, []).append(lat)
        ops = []
        for q in sorted(set(per_op) | set(errs)):
            ms = sorted(per_op.get(q, []))
            ops.append(ReplayOp(q, len(ms), errs.get(q, 0),
                                sum(ms) / len(ms) if ms else None,
                                _code_pct(ms, 50), _code_pct(ms, 90), _code_pct(ms, 99),
                                ms[0] if ms else None, ms[-1] if ms else None))
        if not records:
            return None, problems or [Problem("no replay record lines", line=1)]
        return ReplayFacts(form="records_jsonl", ops=ops, records=records,
                           failed=failed, skipped_or_failed=failed_zero), problems
    first = text.splitlines()[0].strip().lstrip("\ufeff") if text.strip() else ""
    if first.split(",") == CSV_HEADER:
        ops = []
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
            if not row.get("qualname"):
                problems.append(Problem("row without a qualname", line=n))
                continue
            ops.append(_op(row["qualname"], dict(row)))
        return ReplayFacts(form="ops_csv", ops=ops), problems
    if "Trace Replay Result" in text:
        def grab(label: str) -> str | None:
            m = re.search(rf"^{re.escape(label)}:\s*(.+?)\s*$", text, re.MULTILINE)
            return m.group(1) if m else None
        digest = grab("Config digest")
        replayed, skipped, failed_s = (grab("Records replayed"), grab("Records skipped"),
                                       grab("Records failed"))
        return ReplayFacts(
            form="terminal_table", duration_s=_f(grab("Replay duration (s)")),
            level=grab("Trace level"),
            replayed=_i(replayed) if replayed else None,
            skipped=_i(skipped) if skipped else None,
            failed=_i(failed_s) if failed_s else None,
            digest_match=None if digest is None else digest.startswith("match")), problems
    return None, [Problem("not a trace-replay output (summary JSON, records JSONL, ops CSV or "
                          "terminal table)", line=1)]


def _code_pct(lat: list[float], p: int) -> float | None:
    """Upstream's percentile as the code computes it: index int(p/100*N), clamped."""
    if not lat:
        return None
    return lat[min(len(lat) - 1, max(0, int(p / 100 * len(lat))))]


def read_replay(path: str | os.PathLike[str]) -> Evidence:
    data, source, problem = read_source(path)
    if data is None:
        assert problem is not None
        return Evidence(kind="trace_replay", source=source, status="malformed",
                        problems=[problem])
    return read_replay_bytes(data, source, Path(path).name)


def read_replay_bytes(data: bytes, source: EvidenceSource, name: str) -> Evidence:
    facts, problems = parse_replay(data, name)
    return Evidence(kind="trace_replay", source=source,
                    status=status_from(problems, readable=facts is not None), facts=facts,
                    problems=problems)
