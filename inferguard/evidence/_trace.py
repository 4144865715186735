"""A `.lct` trace recording as evidence: the summary with its integrity section and the
analytics findings."""

from __future__ import annotations

import math
import os

import msgspec
import numpy as np
import numpy.typing as npt

from inferguard.evidence._model import Evidence, EvidenceSource, Problem
from inferguard.lct._file import TraceFile, TraceFormatError, TraceSummary
from inferguard.lct._stats import TraceAnalysis, TraceStatsFinding, analyze_trace, record_times

MAX_POINTS = 120
"""Most points of a trace's time series: adjacent buckets are summed down to this, so the
series stay a few kilobytes whatever the trace's length or size."""
REUSE_EDGES = (0, 1, 2, 3, 5, 9, 17, 33, 65, 129)
"""Lower edges of the key-reuse bins: 0, 1, 2, 3-4, 5-8, ... 65-128, 129+ records per key."""


class BreakTimes(msgspec.Struct, frozen=True, omit_defaults=True):
    """One lifecycle-break kind: how many, and when its first examples happened (seconds
    since the trace's first bucket; at most the analytics' 20 examples)."""

    kind: str
    count: int
    exact: bool = True
    t_s: list[float] = msgspec.field(default_factory=list)


class TraceSeries(msgspec.Struct, frozen=True, omit_defaults=True):
    """A trace's aggregated series for pictures: records per second by op over time, cache
    events per second by kind (events level), keys by how often they were looked up / read,
    and lifecycle breaks with their times. Bounded: at most MAX_POINTS points, never a key.
    Point i starts at `t_s[i]` and spans `point_s` seconds (the last one `last_point_s`)."""

    point_s: float
    t_s: list[float]
    ops_per_second: dict[str, list[float]]
    events_per_second: dict[str, list[float]] = msgspec.field(default_factory=dict)
    reuse_bins: list[str] = msgspec.field(default_factory=list)
    keys_by_lookups: list[float] = msgspec.field(default_factory=list)
    keys_by_reads: list[float] = msgspec.field(default_factory=list)
    keys_estimated: bool = False
    breaks: list[BreakTimes] = msgspec.field(default_factory=list)
    last_point_s: float | None = None  # None: the same as point_s


class TraceFacts(msgspec.Struct, frozen=True, tag="trace"):
    """A `.lct` recording: the trace summary with its integrity section, the findings of
    the trace analytics (lifecycle breaks, reuse, write amplification, ...) and the
    aggregated series the HTML report draws."""

    summary: TraceSummary
    analytics: list[TraceStatsFinding] = msgspec.field(default_factory=list)
    series: TraceSeries | None = None


def _bin_label(i: int) -> str:
    lo = REUSE_EDGES[i]
    if i + 1 == len(REUSE_EDGES):
        return f"{lo}+"
    hi = REUSE_EDGES[i + 1] - 1
    return str(lo) if hi == lo else f"{lo}-{hi}"


def _hist(per_key: npt.NDArray[np.int64], scale: float) -> list[float]:
    idx = np.searchsorted(np.asarray(REUSE_EDGES), per_key, side="right") - 1
    n = np.bincount(idx, minlength=len(REUSE_EDGES))[:len(REUSE_EDGES)]
    return [round(float(x) * scale, 3) for x in n.tolist()]


def _per_second(col: npt.NDArray[np.int64], group: int, bucket_s: float) -> list[float]:
    """Sum `group` buckets per point, per second of the buckets summed (the last point may
    hold fewer buckets: it is divided by its own width, not the full point's)."""
    pad = (-len(col)) % group
    summed = np.concatenate([col, np.zeros(pad, col.dtype)]).reshape(-1, group).sum(axis=1)
    widths = np.full(len(summed), group * bucket_s)
    if len(widths):
        widths[-1] = (group - pad) * bucket_s
    return [float(f"{x / w:.9g}") for x, w in zip(summed.tolist(), widths.tolist(),
                                                  strict=True)]


def trace_series(t: TraceFile, analysis: TraceAnalysis) -> TraceSeries:
    """The bounded series of one analysed trace (the file is open for break times)."""
    a, st = analysis.arrays, analysis.stats
    nb = len(a.records)
    group = max(1, math.ceil(nb / MAX_POINTS))
    point_s = st.time.bucket_s * group
    t0 = float(a.bucket_start[0]) if nb else 0.0
    starts = [round(float(x) - t0, 6) for x in a.bucket_start[::group].tolist()]
    w = st.time.bucket_s
    ops = {role: _per_second(col, group, w) for role, col in a.records_by_role.items()
           if nb and int(col.sum())}
    events = {kind: _per_second(col, group, w) for kind, col in a.events_by_kind.items()
              if nb and int(col.sum())}
    scale = 1.0 / a.key_sample_rate if a.key_sample_rate else 1.0
    breaks = []
    for kind in st.lifecycle.__struct_fields__:
        life = getattr(st.lifecycle, kind)
        if not hasattr(life, "count") or not life.count.value:
            continue
        times = [round(x - t0, 6) for x in record_times(t, life.offsets) if x is not None]
        breaks.append(BreakTimes(kind, int(life.count.value), life.count.exact, times))
    has_keys = len(a.reads_per_key) > 0
    return TraceSeries(
        point_s=point_s, t_s=starts, ops_per_second=ops, events_per_second=events,
        reuse_bins=[_bin_label(i) for i in range(len(REUSE_EDGES))] if has_keys else [],
        keys_by_lookups=_hist(a.lookups_per_key, scale) if has_keys else [],
        keys_by_reads=_hist(a.reads_per_key, scale) if has_keys else [],
        keys_estimated=a.key_sample_rate < 1.0, breaks=breaks,
        last_point_s=(nb - (len(starts) - 1) * group) * w if nb else None)


def read_trace(path: str | os.PathLike[str]) -> Evidence:
    """A `.lct` file as evidence; a damaged trace is partial, a non-trace malformed."""
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
        with TraceFile(p) as t:
            analysis = analyze_trace(t)
            series = trace_series(t, analysis)
        stats = analysis.stats
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
                    facts=TraceFacts(summary, stats.findings, series), problems=problems)


def _sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


