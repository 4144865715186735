"""OTel evidence: LMCache spans (and metric names) from OTLP JSON lines.

Upstream exports spans only over OTLP/gRPC, so operators keep them as JSON lines written by a
collector (OTLP/JSON: hex ids) or by a receiver using protobuf's JSON mapping (base64 ids,
64-bit integers as strings). Both are read, with attribute values of any OTLP type. The facts
are per-span-name summaries — counts, errors, durations, numeric attribute sums (hit and
requested tokens ...), and the parent/child structure — never the spans themselves.
"""

from __future__ import annotations

import binascii
import math
import os
from typing import Any

import msgspec

from inferguard import _lazy
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, read_source, status_from

MAX_SPAN_NAMES = 1000
# OTLP JSON lines are parsed whole (~14x the file in memory): 32 MiB keeps a read < 512 MB.
MAX_OTEL_BYTES = 32 << 20
MAX_PROBLEMS = 100
# Span attributes holding prompt token ids (user content): counted, never kept or copied.
TOKEN_ID_ATTRIBUTES = frozenset(["lmcache.input_ids"])


class SpanSummary(msgspec.Struct, frozen=True):
    """All spans of one name."""

    name: str
    scope: str
    count: int
    errors: int
    open: int
    duration_ms_min: float | None
    duration_ms_mean: float | None
    duration_ms_p50: float | None
    duration_ms_p90: float | None
    duration_ms_max: float | None
    numeric_sums: dict[str, float]
    string_values: dict[str, dict[str, int]]


class SpanEdge(msgspec.Struct, frozen=True):
    parent: str
    child: str
    count: int


class SpanGap(msgspec.Struct, frozen=True, omit_defaults=True):
    """Parent spans that have one child (meeting `condition`) but none of `lacks`, with
    their durations: `cb.request` roots whose `cb.lookup` matched chunks and that never got
    a `cb.retrieve` (or no-op) stay open until server shutdown."""

    parent: str
    has_child: str
    lacks: list[str]
    condition: str = ""
    count: int = 0
    open: int = 0
    over_1s: int = 0
    duration_ms_p50: float | None = None
    duration_ms_max: float | None = None


class OtlpMetric(msgspec.Struct, frozen=True, omit_defaults=True):
    """One OTLP metric as exported: cumulative data from the latest export that carries it,
    delta data summed over exports. `total` adds sum/gauge values, or histogram and summary
    counts; `prometheus_name` is the name the Prometheus exporter gives it."""

    name: str
    kind: str
    prometheus_name: str
    unit: str = ""
    monotonic: bool = False
    points: int = 0
    nonzero_points: int = 0
    total: float = 0.0

    @property
    def metric_type(self) -> str:
        """counter / gauge / histogram / summary, as a scrape would type it."""
        if self.kind == "sum":
            return "counter" if self.monotonic else "gauge"
        return "histogram" if "istogram" in self.kind else self.kind


class SpanStep(msgspec.Struct, frozen=True, omit_defaults=True):
    """One span of the example request: its name, depth in the tree, start (ms since the
    request's first span started) and duration (None while open). No ids."""

    name: str
    depth: int
    start_ms: float
    duration_ms: float | None = None


MAX_STEPS = 60
"""Most spans kept for the example request (a waterfall, not an export)."""


class OtelFacts(msgspec.Struct, frozen=True, tag="otel", omit_defaults=True):
    """Span summaries by name, the tree's edges, and what else the export held."""

    export_lines: int = 0
    span_count: int = 0
    trace_count: int = 0
    id_encoding: str | None = None
    service_instance_ids: list[str] = msgspec.field(default_factory=list)
    spans: list[SpanSummary] = msgspec.field(default_factory=list)
    edges: list[SpanEdge] = msgspec.field(default_factory=list)
    root_spans: dict[str, int] = msgspec.field(default_factory=dict)
    orphan_spans: int = 0
    metric_lines: int = 0
    # `--enable-token-trace` (LMCache 0.5.7 subscribers/tracing/mp_server.py): spans whose
    # `lmcache.input_ids` attribute holds prompt token ids. Only how many and how long.
    token_id_spans: int = 0
    token_ids_total: int = 0
    token_ids_max: int = 0
    metric_names: list[str] = msgspec.field(default_factory=list)
    metrics: list[OtlpMetric] = msgspec.field(default_factory=list)
    orphans_by_name: dict[str, int] = msgspec.field(default_factory=dict)
    gaps: list[SpanGap] = msgspec.field(default_factory=list)
    # The spans of one request (the trace with the most spans; the first such in the file).
    example_request: list[SpanStep] = msgspec.field(default_factory=list)

    def span(self, name: str) -> SpanSummary | None:
        return next((s for s in self.spans if s.name == name), None)


# String attributes worth tallying by value (small, categorical). MP and CacheBlend child
# spans stringify their metadata, so booleans arrive as "True"/"False" (`success` on
# cb.retrieve / cb.scatter, `no_gpu_context` on cb.lookup); typed booleans tally the same.
_TALLY = frozenset(["early_exit_reason", "model_name", "cache_salt", "device", "reason",
                    "noop_reason", "success", "no_gpu_context"])

# (parent, child it has, numeric child attribute that must be > 0 or "", children it lacks):
# the span-tree gaps summarised as `SpanGap`s.
_GAPS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("cb.request", "cb.lookup", "fingerprint_hits", ("cb.retrieve", "cb.retrieve.noop")),
)
_GAP_PARENTS = frozenset(g[0] for g in _GAPS)
_GAP_CHILDREN = frozenset(n for g in _GAPS for n in (g[1], *g[3]))


def _get(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None


def _norm_id(v: Any) -> tuple[str | None, str | None]:
    """(hex id, encoding) from a hex or base64 id; (None, None) when absent."""
    if not isinstance(v, str) or not v:
        return None, None
    if len(v) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in v):
        return v.lower(), "hex"
    try:
        import base64  # here: only ids written in base64 need it

        return base64.b64decode(v, validate=True).hex(), "base64"
    except (binascii.Error, ValueError):
        return v, "unknown"


def _value(v: Any) -> Any:
    """An OTLP AnyValue as a Python value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v or "string_value" in v:
        return _get(v, "stringValue", "string_value")
    if "intValue" in v or "int_value" in v:
        raw = _get(v, "intValue", "int_value")
        try:
            return int(raw)
        except (TypeError, ValueError):
            return raw
    if "doubleValue" in v or "double_value" in v:
        raw = _get(v, "doubleValue", "double_value")
        try:
            return float(raw)
        except (TypeError, ValueError):
            return raw
    if "boolValue" in v or "bool_value" in v:
        return bool(_get(v, "boolValue", "bool_value"))
    if "arrayValue" in v or "array_value" in v:
        arr = _get(v, "arrayValue", "array_value") or {}
        return [_value(x) for x in arr.get("values", [])] if isinstance(arr, dict) else []
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = _get(v, "kvlistValue", "kvlist_value") or {}
        return _attrs(kv.get("values", [])) if isinstance(kv, dict) else {}
    if "bytesValue" in v or "bytes_value" in v:
        return f"<{len(str(_get(v, 'bytesValue', 'bytes_value')))} base64 chars>"
    return None


def _attrs(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(items, list):
        for a in items:
            if isinstance(a, dict) and isinstance(a.get("key"), str):
                out[a["key"]] = _value(a.get("value"))
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            f = float(v)
        except (ValueError, RecursionError):
            return None
        return f if math.isfinite(f) else None
    return None


class _Acc:
    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.count = self.errors = self.open = 0
        self.durations: list[float] = []
        self.sums: dict[str, float] = {}
        self.tallies: dict[str, dict[str, int]] = {}


_METRIC_KINDS = (("sum", "sum"), ("gauge", "gauge"), ("histogram", "histogram"),
                 ("exponentialHistogram", "exponential_histogram"), ("summary", "summary"))
_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "By": "bytes",
          "KBy": "kilobytes", "MBy": "megabytes", "1": "ratio"}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}


def prometheus_name(name: str, unit: str, kind: str, monotonic: bool) -> str:
    """The Prometheus exporter's name for an OTLP metric: invalid characters become `_`,
    the unit is appended (`s` -> `seconds`, `GB/s` -> `GB_per_second`, `{chunks}` dropped),
    and monotonic sums end in `_total` (`lmcache_mp.l1_write`, `chunks` ->
    `lmcache_mp_l1_write_chunks_total`)."""
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    u = "" if unit.startswith("{") else _UNITS.get(unit, unit)
    if "/" in u:
        num, _, den = u.partition("/")
        u = f"{_UNITS.get(num, num)}_per_{_PER_UNITS.get(den, den)}"
    u = "".join(c if c.isalnum() or c == "_" else "_" for c in u).strip("_")
    if u and not base.endswith(f"_{u}"):
        base = f"{base}_{u}"
    if kind == "sum" and monotonic and not base.endswith("_total"):
        base += "_total"
    return base


def _metric_data(m: dict[str, Any]) -> tuple[str, bool, bool, int, int, float] | None:
    """(kind, monotonic, delta, points, nonzero points, total) of one OTLP metric."""
    for kind, snake in _METRIC_KINDS:
        data = _get(m, kind, snake)
        if isinstance(data, dict):
            break
    else:
        return None
    temporality = _get(data, "aggregationTemporality", "aggregation_temporality")
    delta = temporality in (1, "1", "AGGREGATION_TEMPORALITY_DELTA")
    monotonic = bool(_get(data, "isMonotonic", "is_monotonic"))
    points = nonzero = 0
    total = 0.0
    for dp in _get(data, "dataPoints", "data_points") or []:
        if not isinstance(dp, dict):
            continue
        raw = (_get(dp, "asInt", "as_int", "asDouble", "as_double") if kind in ("sum", "gauge")
               else dp.get("count"))
        try:
            v = float(raw) if raw is not None else 0.0
        except (TypeError, ValueError):
            continue
        if not math.isfinite(v):
            continue
        points += 1
        nonzero += v != 0
        total += v
    return kind, monotonic, delta, points, nonzero, total


def _pct(sorted_vals: list[float], p: float) -> float:
    k = max(0, math.ceil(p * len(sorted_vals) / 100) - 1)
    return sorted_vals[k]


def read_otel_bytes(data: bytes, source: EvidenceSource) -> Evidence:
    """Parse OTLP JSON lines (or one OTLP JSON document). Never raises."""
    import json

    problems: list[Problem] = []
    docs: list[tuple[int, Any]] = []
    lines = data.splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            docs.append((n, json.loads(line)))
        except (ValueError, RecursionError) as exc:
            if n == 1:  # maybe one pretty-printed document
                try:
                    docs = [(1, json.loads(data))]
                    break
                except (ValueError, RecursionError):
                    pass
            if len(problems) < MAX_PROBLEMS:
                problems.append(Problem(f"not JSON: {str(exc)[:200]}", line=n))
    acc: dict[str, _Acc] = {}
    names: dict[str, str] = {}
    parents: list[tuple[str | None, str, str]] = []  # (parent id, child name, trace)
    traces: set[str] = set()
    instances: set[str] = set()
    metric_names: set[str] = set()
    metric_data: dict[str, OtlpMetric] = {}
    encodings: set[str] = set()
    gap_parents: dict[str, tuple[str, float | None]] = {}  # span id -> (name, duration)
    gap_children: list[tuple[str, str, float]] = []  # (parent id, name, condition value)
    timed: list[tuple[str, str | None, str | None, str, int, int]] = []
    metric_lines = span_lines = 0
    token_spans = token_total = token_max = 0
    for n, doc in docs:
        if not isinstance(doc, dict):
            problems.append(Problem("line is not a JSON object", line=n))
            continue
        rms = _get(doc, "resourceMetrics", "resource_metrics")
        if isinstance(rms, list):
            metric_lines += 1
            in_line: dict[str, tuple[OtlpMetric, bool]] = {}
            for rm in rms:
                if not isinstance(rm, dict):
                    continue
                for sm in _get(rm, "scopeMetrics", "scope_metrics") or []:
                    for m in sm.get("metrics", []) if isinstance(sm, dict) else []:
                        if isinstance(m, dict) and isinstance(m.get("name"), str):
                            metric_names.add(m["name"])
                            _add_metric(in_line, m)
            for name, (om, delta) in in_line.items():
                prev = metric_data.get(name)
                if delta and prev is not None and om.kind == prev.kind:
                    # Delta temporality: each export holds only what happened since the last.
                    om = msgspec.structs.replace(
                        om, points=max(om.points, prev.points),
                        nonzero_points=max(om.nonzero_points, prev.nonzero_points),
                        total=prev.total + om.total)
                metric_data[name] = om  # cumulative and gauges: the latest export wins
            continue
        rss = _get(doc, "resourceSpans", "resource_spans")
        if not isinstance(rss, list):
            problems.append(Problem("no resourceSpans or resourceMetrics", line=n))
            continue
        span_lines += 1
        for rs in rss:
            if not isinstance(rs, dict):
                continue
            try:
                res = _attrs(_get(rs.get("resource") or {}, "attributes") or [])
            except RecursionError:
                res = {}
            if isinstance(res.get("service.instance.id"), str):
                instances.add(res["service.instance.id"])
            for ss in _get(rs, "scopeSpans", "scope_spans") or []:
                if not isinstance(ss, dict):
                    continue
                scope = str((ss.get("scope") or {}).get("name", ""))
                for sp in ss.get("spans", []):
                    if not isinstance(sp, dict) or not isinstance(sp.get("name"), str):
                        problems.append(Problem("span without a name", line=n))
                        continue
                    name = sp["name"]
                    sid, enc = _norm_id(_get(sp, "spanId", "span_id"))
                    tid, _ = _norm_id(_get(sp, "traceId", "trace_id"))
                    pid, _ = _norm_id(_get(sp, "parentSpanId", "parent_span_id"))
                    if enc:
                        encodings.add(enc)
                    if tid:
                        traces.add(tid)
                    if name not in acc:
                        if len(acc) >= MAX_SPAN_NAMES:
                            continue
                        acc[name] = _Acc(scope)
                    a = acc[name]
                    a.count += 1
                    status = sp.get("status") or {}
                    code = status.get("code") if isinstance(status, dict) else None
                    if code in (2, "2", "STATUS_CODE_ERROR"):
                        a.errors += 1
                    try:
                        start = int(_get(sp, "startTimeUnixNano", "start_time_unix_nano"))
                        end = int(_get(sp, "endTimeUnixNano", "end_time_unix_nano") or 0)
                    except (TypeError, ValueError):
                        start = end = 0
                    duration = (end - start) / 1e6 if end and start and end >= start else None
                    if duration is not None:
                        a.durations.append(duration)
                    else:
                        a.open += 1
                    try:
                        attrs = _attrs(sp.get("attributes") or [])
                    except RecursionError:
                        problems.append(Problem("span attributes nested too deeply", line=n))
                        attrs = {}
                    for tok_attr in TOKEN_ID_ATTRIBUTES & attrs.keys():
                        ids = attrs.pop(tok_attr)
                        n_ids = len(ids) if isinstance(ids, list) else _stripped_count(ids)
                        token_spans += 1
                        token_total += n_ids
                        token_max = max(token_max, n_ids)
                    for k, v in attrs.items():
                        num = _number(v)
                        if num is not None and k != "session_id":
                            a.sums[k] = a.sums.get(k, 0.0) + num
                        elif k in _TALLY and isinstance(v, (str, bool)):
                            t = a.tallies.setdefault(k, {})
                            t[str(v)] = t.get(str(v), 0) + 1
                    if sid:
                        names[sid] = name
                        if name in _GAP_PARENTS:
                            gap_parents[sid] = (name, duration)
                    if pid and name in _GAP_CHILDREN:
                        gap_children.append((pid, name, _gap_value(name, attrs)))
                    parents.append((pid, name, tid or ""))
                    if tid and start:
                        timed.append((tid, sid, pid, name, start, end))
    edges: dict[tuple[str, str], int] = {}
    roots: dict[str, int] = {}
    orphans = 0
    orphan_names: dict[str, int] = {}
    for pid, child, _ in parents:
        if not pid:
            roots[child] = roots.get(child, 0) + 1
        elif pid in names:
            key = (names[pid], child)
            edges[key] = edges.get(key, 0) + 1
        else:
            orphans += 1
            orphan_names[child] = orphan_names.get(child, 0) + 1
    spans = []
    for name, a in sorted(acc.items()):
        d = sorted(a.durations)
        spans.append(SpanSummary(
            name, a.scope, a.count, a.errors, a.open,
            d[0] if d else None, sum(d) / len(d) if d else None, _pct(d, 50) if d else None,
            _pct(d, 90) if d else None, d[-1] if d else None,
            dict(sorted(a.sums.items())), {k: dict(sorted(v.items()))
                                           for k, v in sorted(a.tallies.items())}))
    facts = OtelFacts(
        export_lines=span_lines, span_count=sum(a.count for a in acc.values()),
        trace_count=len(traces),
        id_encoding=("+".join(sorted(encodings)) if encodings else None),
        service_instance_ids=sorted(instances), spans=spans,
        edges=[SpanEdge(p, c, k) for (p, c), k in sorted(edges.items())],
        root_spans=dict(sorted(roots.items())), orphan_spans=orphans, metric_lines=metric_lines,
        metric_names=sorted(metric_names),
        metrics=[om for _, om in sorted(metric_data.items())],
        orphans_by_name=dict(sorted(orphan_names.items())),
        gaps=_span_gaps(gap_parents, gap_children), token_id_spans=token_spans,
        token_ids_total=token_total, token_ids_max=token_max,
        example_request=_example_request(timed))
    readable = bool(span_lines or metric_lines)
    return Evidence(kind="otel", source=source, status=status_from(problems, readable=readable),
                    facts=facts if readable else None, problems=problems)


def _example_request(timed: list[tuple[str, str | None, str | None, str, int, int]]
                     ) -> list[SpanStep]:
    """The spans of the trace with the most spans, in start order, with their depth."""
    per: dict[str, int] = {}
    for row in timed:
        per[row[0]] = per.get(row[0], 0) + 1
    if not per:
        return []
    best = max(per, key=lambda t: per[t])  # first seen wins a tie (dicts keep order)
    rows = sorted((r for r in timed if r[0] == best), key=lambda r: r[4])
    parent = {r[1]: r[2] for r in rows if r[1]}

    def depth(sid: str | None) -> int:
        d, seen = 0, set()
        while sid and (p := parent.get(sid)) and p in parent and p not in seen:
            seen.add(p)
            sid, d = p, d + 1
        return d

    t0 = rows[0][4]
    return [SpanStep(name, depth(sid), round((start - t0) / 1e6, 3),
                     round((end - start) / 1e6, 3) if end and end >= start else None)
            for _, sid, _, name, start, end in rows[:MAX_STEPS]]


def _gap_value(name: str, attrs: dict[str, Any]) -> float:
    """The value of the gap condition's attribute on a child span (1.0 when it has none)."""
    for _, has, attr, _ in _GAPS:
        if name == has and attr:
            return _number(attrs.get(attr)) or 0.0
    return 1.0


def _span_gaps(parents: dict[str, tuple[str, float | None]],
               children: list[tuple[str, str, float]]) -> list[SpanGap]:
    """Apply `_GAPS`: parents with the wanted child (condition met) and none of `lacks`."""
    out = []
    for parent, has, attr, lacks in _GAPS:
        ids = {sid for sid, (name, _) in parents.items() if name == parent}
        if not ids:
            continue
        with_has = {pid for pid, name, val in children if name == has and val > 0}
        with_lacks = {pid for pid, name, _ in children if name in lacks}
        hit = sorted((ids & with_has) - with_lacks)
        d = sorted(x for x in (parents[i][1] for i in hit) if x is not None)
        out.append(SpanGap(parent, has, list(lacks), f"{attr} > 0" if attr else "",
                           len(hit), len(hit) - len(d), sum(1 for x in d if x >= 1000.0),
                           _pct(d, 50) if d else None, d[-1] if d else None))
    return out


def _add_metric(acc: dict[str, tuple[OtlpMetric, bool]], m: dict[str, Any]) -> None:
    """Fold one metric of one export into `acc` (several scopes may carry one name)."""
    data = _metric_data(m)
    if data is None:
        return
    kind, monotonic, delta, points, nonzero, total = data
    name: str = m["name"]
    unit = m.get("unit") if isinstance(m.get("unit"), str) else ""
    prev = acc.get(name)
    if prev is not None:
        points += prev[0].points
        nonzero += prev[0].nonzero_points
        total += prev[0].total
    acc[name] = (OtlpMetric(name, kind, prometheus_name(name, unit or "", kind, monotonic),
                            unit or "", monotonic, points, nonzero, total), delta)


_STRIPPED = _lazy.pattern(r"^<(\d+) token ids removed by inferguard>$")


def _stripped_count(v: Any) -> int:
    """How many ids a value replaced by `strip_token_ids` held (so a packet's copy reads
    the same counts as the original)."""
    m = _STRIPPED.match(v) if isinstance(v, str) else None
    return int(m.group(1)) if m else 0


def _strip(node: Any) -> int:
    """Replace every token-id attribute value inside one OTLP JSON document, in place, by a
    string naming how many ids it held; returns how many attributes were replaced."""
    n = 0
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("key") in TOKEN_ID_ATTRIBUTES and "value" in x:
                v = _value(x["value"])
                count = len(v) if isinstance(v, list) else 0
                x["value"] = {"stringValue": f"<{count} token ids removed by inferguard>"}
                n += 1
                continue
            for k in TOKEN_ID_ATTRIBUTES & x.keys():  # a plain {"lmcache.input_ids": [...]}
                x[k] = "<token ids removed by inferguard>"
                n += 1
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return n


def strip_token_ids(data: bytes) -> tuple[bytes, int]:
    """An OTLP JSON / JSONL export with the values of token-id attributes (`lmcache.input_ids`
    of `mp.request.trace` spans) replaced, for the packet's copy: the prompt's token ids are
    user content and never leave the reader. Every other byte of a line without them is kept;
    a line that holds them but is not JSON is dropped whole (with the export parsed as one
    document first). Returns (bytes, attributes or lines removed)."""
    import json

    if b"input_ids" not in data:
        return data, 0
    out: list[bytes] = []
    removed = 0
    bad: list[int] = []
    lines = data.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if b"input_ids" not in line:
            out.append(line)
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            bad.append(i)
            out.append(b"")
            continue
        n = _strip(doc)
        removed += n
        end = line[len(line.rstrip(b"\r\n")):]
        out.append(json.dumps(doc, separators=(",", ":")).encode() + end if n else line)
    if bad:
        try:
            whole = json.loads(data)
        except (ValueError, RecursionError):
            return b"".join(out), removed + len(bad)
        n = _strip(whole)
        return json.dumps(whole).encode() + b"\n", n
    return b"".join(out), removed


def read_otel(path: str | os.PathLike[str]) -> Evidence:
    """An OTLP JSON-lines file (at most `MAX_OTEL_BYTES`, a regular file) as evidence."""
    data, source, problem = read_source(path, max_bytes=MAX_OTEL_BYTES)
    if data is None:
        assert problem is not None
        return Evidence(kind="otel", source=source, status="malformed", problems=[problem])
    return read_otel_bytes(data, source)
