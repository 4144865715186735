"""Trace-replay evidence: what `lmcache trace replay` wrote.

Reads `trace_replay_summary.json` (`--json`), the per-record JSONL (`--jsonl-out`),
`trace_replay_ops.csv` (CRLF, `%.6f`) and the terminal table (stdout). Upstream facts that
shape the meaning (see docs/evidence.md): `failed` means only that a handler raised — cache
misses during replay are invisible; skipped records appear in the JSONL as
`latency_ms 0.0, failed true` but are not failures; the JSON summary has no totals.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import msgspec

from inferguard import _lazy
from inferguard.evidence._logs import ANSI
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, read_source, status_from

# Replay output is read whole (a stdout log or a JSON/CSV table): capped like OTel.
MAX_REPLAY_BYTES = 32 << 20

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
    # From the replay's log (stderr, or stdout and stderr together): what `failed` hides.
    log_records_ok: int | None = None
    log_records_failed: int | None = None   # FAIL progress lines (skips included)
    handler_raised: int | None = None       # "handler for X raised": upstream's `failed`
    allocation_failures: int | None = None  # "Failed to batched allocate ..." warnings
    failed_reads: int | None = None         # "Failed to read prefetched object ..." errors
    failed_read_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    reads_of_missing_keys: int | None = None  # "finish read on non-existing key"


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
    import csv
    import json

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
    logged = _replay_log(text)
    if "Trace Replay Result" in text:
        def grab(label: str) -> str | None:
            m = re.search(rf"^{re.escape(label)}:\s*(.+?)\s*$", text, re.MULTILINE)
            return m.group(1) if m else None
        digest = grab("Config digest")
        replayed, skipped, failed_s = (grab("Records replayed"), grab("Records skipped"),
                                       grab("Records failed"))
        table = ReplayFacts(
            form="terminal_table", duration_s=_f(grab("Replay duration (s)")),
            level=grab("Trace level"),
            replayed=_i(replayed) if replayed else None,
            skipped=_i(skipped) if skipped else None,
            failed=_i(failed_s) if failed_s else None,
            digest_match=None if digest is None else digest.startswith("match"))
        if logged is not None:  # stdout and stderr captured together
            table = msgspec.structs.replace(table, **{
                k: getattr(logged, k) for k in _LOG_FIELDS})
        return table, problems
    if logged is not None:
        return logged, problems
    return None, [Problem("not a trace-replay output (summary JSON, records JSONL, ops CSV, "
                          "terminal table or replay log)", line=1)]


_LOG_FIELDS = ("log_records_ok", "log_records_failed", "handler_raised", "allocation_failures",
               "failed_reads", "failed_read_reasons", "reads_of_missing_keys")
# lmcache/cli/commands/trace/replay_command.py (0.5.6): the start line and the per-record
# progress line (`[%d/%d] %s %s (%.3fms)`, status OK or FAIL, skips included as FAIL).
_R_START = _lazy.pattern(r"trace replay: file=.* records=(\d+)")
_R_PROGRESS = _lazy.pattern(r"\[(\d+)/(\d+)\] (OK|FAIL) (\S+) \((\d+(?:\.\d+)?)ms\)")
# cli/commands/trace/_driver.py: a handler raised (upstream's `failed`), or a skip.
_R_RAISED = _lazy.pattern(r"trace replay: handler for \S+ raised")
_R_SKIP = _lazy.pattern(r"trace replay: (?:failed to decode args for \S+|no handler for "
                     r"qualname .*); skipping")
# What `failed` does not count: v1/memory_management.py (the allocator's warning, not the
# RuntimeError text), v1/distributed/storage_manager.py read_prefetched_results and
# v1/distributed/l1_manager.py finish_read. Only counts and upstream's error names are kept:
# these lines print ObjectKeys, whose raw chunk hashes never leave this reader.
_R_ALLOC = _lazy.pattern(r"Failed to batched allocate \d+ memory blocks of size \d+ because no "
                      r"enough memory is available")
_R_READ = _lazy.pattern(r"Failed to read prefetched object .* from L1 storage: ?(.*?)\s*(?:\(\S+"
                     r":\d+:\S+\))?$")
_R_MISSING = _lazy.pattern(r"L1Manager: finish read on non-existing key")


def _replay_log(text: str) -> ReplayFacts | None:
    """The replay's own log lines (LMCache log format, ANSI codes allowed), or None when
    the text has neither the start line nor a progress line."""
    records: int | None = None
    ok = fail = raised = skipped = alloc = reads = missing = 0
    reasons: dict[str, int] = {}
    seen = False
    for raw in text.splitlines():
        line = ANSI.sub("", raw) if "\x1b" in raw else raw
        if "trace replay" in line:
            m = _R_START.search(line)
            if m:
                records, seen = int(m.group(1)), True
                continue
            raised += bool(_R_RAISED.search(line))
            skipped += bool(_R_SKIP.search(line))
        m = _R_PROGRESS.search(line)
        if m and "LMCache" in line:  # the log form (the --verbose stdout form has 2 spaces)
            seen = True
            if m.group(3) == "OK":
                ok += 1
            else:
                fail += 1
            continue
        if _R_ALLOC.search(line):
            alloc += 1
        elif (rm := _R_READ.search(line)) is not None:
            reads += 1
            reason = re.sub(r"[^A-Za-z0-9_ .-]", "", rm.group(1))[:60] or "?"
            reasons[reason] = reasons.get(reason, 0) + 1
        elif _R_MISSING.search(line):
            missing += 1
    if not seen:
        return None
    return ReplayFacts(form="replay_log", records=records, failed=raised, skipped=skipped,
                       log_records_ok=ok, log_records_failed=fail, handler_raised=raised,
                       allocation_failures=alloc, failed_reads=reads,
                       failed_read_reasons=dict(sorted(reasons.items())),
                       reads_of_missing_keys=missing)


def _code_pct(lat: list[float], p: int) -> float | None:
    """Upstream's percentile as the code computes it: index int(p/100*N), clamped."""
    if not lat:
        return None
    return lat[min(len(lat) - 1, max(0, int(p / 100 * len(lat))))]


def read_replay(path: str | os.PathLike[str]) -> Evidence:
    from pathlib import Path

    data, source, problem = read_source(path, max_bytes=MAX_REPLAY_BYTES)
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
