"""A `.lct` trace recording as evidence: the facts types, which a packet decodes. The
reading (scan, analytics, series, the first-chunk digest) is `_trace_read.read_trace`,
which the reader registry imports on the first trace read: judging a packet needs only
these types, not the scanner, numpy or the C core."""

from __future__ import annotations

import msgspec

from inferguard.lct._summary import TraceStatsFinding, TraceSummary

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



class FirstChunkGaps(msgspec.Struct, frozen=True):
    """Prefix lookups whose first chunk was never stored (counts only; no key leaves here).

    LMCache 0.5.7's lmcache-driven STORE skips every chunk whose engine blocks are all the
    server's `--null-block-id` (default 0; `lmcache_driven_transfer.py::all_null_chunk_masks`),
    so when chunk 0 sits in block 0 the `reserve_write` carries every key of the lookup but the
    first, and every later prefix lookup of that prompt misses from its first chunk on.
    `gap_lookups`: lookups (`submit_prefetch_task`, two keys or more) followed by a
    `reserve_write` of exactly their keys after the first, whose first key no `reserve_write`
    ever held; `gap_lookups_read`: how many of those prompts were read back anyway
    (`finish_read_prefetched` with the first key); `lookups`/`writes`: all seen;
    `records_read`: how many records were examined (the first `MAX_GAP_RECORDS`)."""

    lookups: int = 0
    writes: int = 0
    gap_lookups: int = 0
    gap_lookups_read: int = 0
    first_offset: int | None = None
    records_read: int = 0


class TraceFacts(msgspec.Struct, frozen=True, tag="trace"):
    """A `.lct` recording: the trace summary with its integrity section, the findings of
    the trace analytics (lifecycle breaks, reuse, write amplification, ...), the first-chunk
    gaps digest and the aggregated series the HTML report draws."""

    summary: TraceSummary
    analytics: list[TraceStatsFinding] = msgspec.field(default_factory=list)
    first_chunk_gaps: FirstChunkGaps | None = None
    series: TraceSeries | None = None
