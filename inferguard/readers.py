"""One entry point per evidence kind: `read_evidence(kind, path)` -> `Evidence`.

The low-level readers (`inferguard.prom`, `inferguard.trace`) raise or return their own
models; the adapters here turn them into evidence (damage becomes problems and a status,
never an exception), and the registry maps every kind to its reader.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from inferguard.evidence import (
    Evidence,
    EvidenceKind,
    EvidenceSource,
    Problem,
    read_source,
    status_from,
)
from inferguard.launch import LaunchFacts, read_launch
from inferguard.lmcache_controller import ControllerFacts, read_controller
from inferguard.lmcache_http import HttpFacts, read_http_capture_dir
from inferguard.logs import LogFacts, read_log
from inferguard.lookup_hashes import LookupHashFacts, read_lookup_hashes
from inferguard.otel import OtelFacts, read_otel
from inferguard.prom import Exposition, MetricsSummary, parse_text
from inferguard.replay import ReplayFacts, read_replay
from inferguard.trace import TraceFile, TraceFormatError, TraceSummary
from inferguard.trace_stats import TraceStatsFinding, trace_stats

MAX_METRICS_BYTES = 1 << 30


MAX_LABEL_VALUES = 64


class LabelValues(msgspec.Struct, frozen=True):
    """The values one label takes in a family (at most 64 kept, all counted)."""

    distinct: int
    values: list[str]


class FamilyStats(msgspec.Struct, frozen=True, omit_defaults=True):
    """What compat needs of one family: presence, size, zero or not, totals, label sets.

    `total` sums counter and gauge samples, or histogram/summary `_count` samples;
    `_created` samples (timestamps) never count as data. `buckets` are a histogram's
    cumulative counts per finite `le`, summed over series (an outlier shows as the one
    observation above the rest); `label_totals` split a counter or gauge with exactly one
    label by its values (`retrieve_noops_total{reason}`)."""

    name: str
    type: str
    samples: int
    series: int
    nonzero_samples: int
    total: float
    labels: dict[str, LabelValues] = msgspec.field(default_factory=dict)
    buckets: list[tuple[float, float]] = msgspec.field(default_factory=list)
    label_totals: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)


class MetricsFacts(msgspec.Struct, frozen=True, tag="metrics", omit_defaults=True):
    """A Prometheus/OpenMetrics scrape: its summary, per-family stats, and who exported it."""

    summary: MetricsSummary
    service_instance_ids: list[str] = msgspec.field(default_factory=list)
    families: list[FamilyStats] = msgspec.field(default_factory=list)

    def family(self, name: str) -> FamilyStats | None:
        return next((f for f in self.families if f.name == name), None)


def family_stats(exp: Exposition) -> list[FamilyStats]:
    out = []
    for fam in exp.families:
        data = [s for s in fam.samples if not s.name.endswith("_created")]
        if fam.type in ("histogram", "gaugehistogram", "summary"):
            counted = [s for s in data if s.name.endswith("_count")]
        else:
            counted = data
        series = {(s.name, s.labels) for s in data}
        labels: dict[str, set[str]] = {}
        for s in data:
            for k, v in s.labels:
                if k not in ("le", "quantile"):
                    labels.setdefault(k, set()).add(v)
        total = math.fsum(s.value for s in counted if math.isfinite(s.value))
        out.append(FamilyStats(
            name=fam.name, type=fam.type, samples=len(data), series=len(series),
            nonzero_samples=sum(1 for s in data if s.value != 0 and not math.isnan(s.value)),
            total=total,
            labels={k: LabelValues(len(v), sorted(v)[:MAX_LABEL_VALUES])
                    for k, v in sorted(labels.items())},
            buckets=_buckets(data) if fam.type in ("histogram", "gaugehistogram") else [],
            label_totals=_label_totals(data, labels) if fam.type in ("counter", "gauge")
            else {}))
    return out


def _buckets(data: list[Any]) -> list[tuple[float, float]]:
    """Cumulative bucket counts per finite `le`, summed over series (at most 64 bounds)."""
    acc: dict[float, float] = {}
    for s in data:
        if not s.name.endswith("_bucket") or not math.isfinite(s.value):
            continue
        le = next((v for k, v in s.labels if k == "le"), None)
        try:
            bound = float(le) if le is not None else math.inf
        except ValueError:
            continue
        if math.isfinite(bound):
            acc[bound] = acc.get(bound, 0.0) + s.value
    return sorted(acc.items())[:MAX_LABEL_VALUES]


def _label_totals(data: list[Any], labels: dict[str, set[str]]
                  ) -> dict[str, dict[str, float]]:
    """Totals per value of the one label a counter or gauge has (none for 0 or 2+ labels)."""
    if len(labels) != 1:
        return {}
    (key, values), = labels.items()
    if len(values) > MAX_LABEL_VALUES:
        return {}
    acc: dict[str, float] = {}
    for s in data:
        v = next((lv for k, lv in s.labels if k == key), None)
        if v is not None and math.isfinite(s.value):
            acc[v] = acc.get(v, 0.0) + s.value
    return {key: dict(sorted(acc.items()))}


class TraceFacts(msgspec.Struct, frozen=True, tag="trace"):
    """A `.lct` recording: the trace summary with its integrity section, and the findings
    of the trace analytics (lifecycle breaks, reuse, write amplification, ...)."""

    summary: TraceSummary
    analytics: list[TraceStatsFinding] = msgspec.field(default_factory=list)


Facts = (HttpFacts | LogFacts | OtelFacts | LookupHashFacts | ReplayFacts | LaunchFacts
         | MetricsFacts | TraceFacts | ControllerFacts)


def read_metrics_bytes(data: bytes, source: EvidenceSource, kind: EvidenceKind) -> Evidence:
    exp = parse_text(data, path=source.path or source.url or "<metrics>")
    summary = exp.summary()
    ids: set[str] = set()
    for name in ("target_info", "target"):
        if exp.family(name) is not None:
            ids |= exp.label_values(name, "service_instance_id")
    problems = [Problem(f"expected {p.expected}", line=p.line, column=p.column)
                for p in summary.problems]
    if summary.problem_count > len(problems):
        problems.append(Problem(f"{summary.problem_count - len(problems)} more problems"))
    status = status_from(problems, readable=summary.families > 0 or not problems)
    return Evidence(kind=kind, source=source, status=status,
                    facts=MetricsFacts(summary, sorted(ids), family_stats(exp)),
                    problems=problems)


def read_metrics(path: str | os.PathLike[str], kind: EvidenceKind = "lmcache_metrics"
                 ) -> Evidence:
    data, source, problem = read_source(path, max_bytes=MAX_METRICS_BYTES)
    if data is None:
        assert problem is not None
        return Evidence(kind=kind, source=source, status="malformed", problems=[problem])
    return read_metrics_bytes(data, source, kind)


def read_trace(path: str | os.PathLike[str]) -> Evidence:
    """A `.lct` file as evidence; a damaged trace is partial, a non-trace malformed."""
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
        with TraceFile(p) as t:
            stats = trace_stats(t)
        summary = stats.summary
    except TraceFormatError as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(str(exc), offset=0)])
    except OSError as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(f"cannot read file: {exc.strerror or exc}")])
    problems = [Problem(f"{f.kind}: {f.detail}", offset=f.offset)
                for f in summary.integrity.findings]
    source = EvidenceSource(path=p, sha256=_sha256_file(p), size=size)
    return Evidence(kind="trace", source=source, status="partial" if problems else "ok",
                    facts=TraceFacts(summary, stats.findings), problems=problems)


def _sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _http(path: str | os.PathLike[str]) -> Evidence:
    if Path(path).is_dir():
        return read_http_capture_dir(path)
    return load_evidence_file(path, "http")


READERS: dict[str, Callable[[str | os.PathLike[str]], Evidence]] = {
    "engine_metrics": lambda p: read_metrics(p, "engine_metrics"),
    "lmcache_metrics": lambda p: read_metrics(p, "lmcache_metrics"),
    "http": _http,
    "log": read_log,
    "trace": read_trace,
    "otel": read_otel,
    "lookup_hash": read_lookup_hashes,
    "trace_replay": read_replay,
    "launch_config": read_launch,
    "controller": read_controller,
}


def read_evidence(kind: str, path: str | os.PathLike[str]) -> Evidence:
    """Read one input of the given kind. Unknown kinds are a ValueError (a caller bug)."""
    try:
        reader = READERS[kind]
    except KeyError:
        known = sorted(READERS)
        raise ValueError(f"no reader for evidence kind {kind!r}; known: {known}") from None
    return reader(path)


def decode_evidence(obj: Any) -> Evidence:
    """An Evidence from its JSON form, with typed facts restored."""
    ev = msgspec.convert(obj, Evidence)
    if isinstance(ev.facts, dict):
        ev = msgspec.structs.replace(ev, facts=msgspec.convert(ev.facts, Facts))
    return ev


def load_evidence_set(path: str | os.PathLike[str], kind: str) -> list[Evidence]:
    """Every Evidence in an InferGuard evidence JSON file (a set, or a single one)."""
    data, source, problem = read_source(path, max_bytes=256 << 20)
    k: Any = kind
    if data is None:
        assert problem is not None
        return [Evidence(kind=k, source=source, status="malformed", problems=[problem])]
    try:
        doc = msgspec.json.decode(data)
        items = doc["evidence"] if isinstance(doc, dict) and "evidence" in doc else [doc]
        return [decode_evidence(e) for e in items]
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, KeyError,
            TypeError) as exc:
        return [Evidence(kind=k, source=source, status="malformed",
                         problems=[Problem(f"not an InferGuard evidence file: {exc}")])]


def load_evidence_file(path: str | os.PathLike[str], kind: str | None = None) -> Evidence:
    """Read an evidence JSON file written by InferGuard (one Evidence, or a set of them:
    the first is returned). Never raises on bad content."""
    data, source, problem = read_source(path, max_bytes=256 << 20)
    k: Any = kind or "http"
    if data is None:
        assert problem is not None
        return Evidence(kind=k, source=source, status="malformed", problems=[problem])
    try:
        doc = msgspec.json.decode(data)
        if isinstance(doc, dict) and isinstance(doc.get("evidence"), list) and doc["evidence"]:
            doc = doc["evidence"][0]
        return decode_evidence(doc)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        return Evidence(kind=k, source=source, status="malformed",
                        problems=[Problem(f"not an InferGuard evidence file: {exc}")])
