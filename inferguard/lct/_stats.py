"""What a `.lct` trace says about cache behaviour: keys, reuse, lifecycles, breakdowns, time.

One bounded-memory pass over the columnar scan (`TraceFile`) plus one row per ObjectKey
(`_trace_keys`), on the native or the pure-Python backend with identical results:

* per key (a 64-bit fingerprint; raw chunk hashes never appear): keys written, looked up,
  read, written more than once; reads of keys written earlier in the trace vs never written
  (trace-derived reuse); lookups never followed by a read;
* lifecycle balance: reserve_write never finished, __enter__ without __exit__, prefetches
  whose reads never came, with counts, byte offsets and times;
* breakdowns by model, kv_rank (decoded), cache_salt and object group;
* time: fixed buckets, bursts, idle gaps; at the `events` level, cache events per tier and
  backend over time, L1 -> L2 flow, lifetimes from store to delete, restarts;
* findings with a stable code and an evidence level, for a later `diagnose`.

Counting is exact up to `max_exact_keys` distinct keys; past that, per-key numbers come from a
uniform hash sample of keys and distinct counts from HyperLogLog, each with its standard
error beside it (`Count.stderr`).
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from inferguard._native import Backend, resolve_backend
from inferguard._native._protocols import KeyExtractor, KeyRows
from inferguard._threads import Ahead
from inferguard.lct import _engine as ts
from inferguard.lct import _frame as tf
from inferguard.lct import _scan
from inferguard.lct._events import Count, EventsEngine, EventStats
from inferguard.lct._file import MAX_FINDINGS, PathOrBuffer, TraceFile, TraceSummary, _Aggregate
from inferguard.lct._keys import make_extractor
from inferguard.lct._scan import Chunk, FindingLog, Kernel
from inferguard.lct._summary import TraceStatsFinding

__all__ = [
    "EVIDENCE_LEVELS",
    "STATS_SCHEMA",
    "BreakdownRow",
    "Breakdowns",
    "Burst",
    "Count",
    "EventStats",
    "Gap",
    "KeyColumns",
    "KeyTotals",
    "Lifecycle",
    "LifecycleCount",
    "OpKeyStats",
    "Reuse",
    "TimeStats",
    "TraceAnalysis",
    "TraceStats",
    "TraceStatsArrays",
    "TraceStatsFinding",
    "analyze_trace",
    "iter_key_columns",
    "record_times",
    "trace_findings",
    "trace_stats",
]

STATS_SCHEMA = "inferguard.trace_stats/1"
EVIDENCE_LEVELS = ("supported", "partial", "missing_signal", "inferred_without_engine_metrics")
ProgressFn = Callable[[int, int], None]


class KeyTap(Protocol):
    """Sees the analytics pass's chunks and key rows as they go by (file order), so a
    digest that needs them takes them from this one pass instead of a second scan. It
    reads the chunk's columns only: the chunk's window may be unmapped by then."""

    def chunk(self, chunk: Chunk, op_names: list[str]) -> None: ...

    def keys(self, chunk: Chunk, k: KeyRows) -> None: ...
# A lifecycle break this close to the end of the trace may just be in flight.
IN_FLIGHT_S = 1.0
# How far the scan stage may run ahead of the fold (items of `_scanned`: key row pieces of
# at most `_keys.KEY_ROWS` rows, a chunk's head and end): the memory of what runs ahead.
AHEAD_PIECES = 4  # 1, 4 and 16 tried (docs/performance.md): 4 and 16 alike, 1 slower


# -- result types ---------------------------------------------------------------------------


class KeyTotals(msgspec.Struct, frozen=True):
    """Distinct keys by what happened to them. `key_rows` counts every ObjectKey occurrence
    (equal to the summary's keys_total); `sample_rate` is 1.0 while exact."""

    exact: bool
    sample_rate: float
    max_exact_keys: int
    tracked_keys: int
    key_rows: int
    malformed_key_rows: int
    distinct: Count
    written: Count
    written_more_than_once: Count
    reserved: Count
    looked_up: Count
    read: Count
    read_never_written: Count
    looked_up_never_read: Count


class Reuse(msgspec.Struct, frozen=True):
    """Trace-derived reuse, in key rows: "written" means a finish_write of the same key came
    earlier in this trace (data stored before recording began cannot be seen)."""

    reads: int
    reads_of_written: Count
    reads_of_unwritten: Count
    read_reuse_ratio: float | None
    lookups: int
    lookups_of_written: Count
    writes: int
    rewrites: Count
    write_amplification: float | None
    reserves: int
    reserves_of_written: Count


class LifecycleCount(msgspec.Struct, frozen=True):
    """How often one lifecycle rule broke, where first (byte offset of the record, t_mono),
    and the first few record offsets."""

    count: Count
    first_offset: int | None = None
    first_t_mono: float | None = None
    offsets: list[int] = msgspec.field(default_factory=list)


class Lifecycle(msgspec.Struct, frozen=True):
    """Lifecycle balance. Key-level rules count key rows; read contexts count records.

    unfinished_writes: reserve_write of a key not written before, never followed by its
    finish_write/abort_write; redundant_reserves: the same for a key already written (upstream
    rejects these); finish_without_reserve: finish_write with no open reserve of its key;
    open_read_contexts: read_prefetched_results.__enter__ records never exited (matched by key
    multiset, innermost first); exits_without_enter; unserved_prefetches: lookups
    (submit_prefetch_task) of written keys not followed by finish_read_prefetched of the key
    before its next lookup; cold_lookups_unread: the same for keys never written (misses);
    reads_without_lookup: finish_read_prefetched with no open lookup of its key."""

    unfinished_writes: LifecycleCount
    redundant_reserves: LifecycleCount
    finish_without_reserve: LifecycleCount
    open_read_contexts: LifecycleCount
    exits_without_enter: LifecycleCount
    unserved_prefetches: LifecycleCount
    cold_lookups_unread: LifecycleCount
    reads_without_lookup: LifecycleCount
    untracked_contexts: int = 0


class OpKeyStats(msgspec.Struct, frozen=True):
    """Per qualname: records, key rows, and key rows whose key was written earlier."""

    qualname: str
    role: str
    count: int
    key_rows: int
    malformed_key_rows: int
    key_rows_of_written: Count | None
    first_offset: int | None
    first_t_mono: float | None
    last_t_mono: float | None
    calls_per_second: float | None


class BreakdownRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """One value of a dimension (model, kv_rank, cache_salt, object_group)."""

    value: str
    key_rows: int
    distinct_keys: Count
    rows_by_op: dict[str, int]
    reads_of_written: Count
    lookups_of_written: Count
    world_size: int | None = None
    global_rank: int | None = None
    local_world_size: int | None = None
    local_rank: int | None = None


class Breakdowns(msgspec.Struct, frozen=True):
    model: list[BreakdownRow]
    kv_rank: list[BreakdownRow]
    cache_salt: list[BreakdownRow]
    object_group: list[BreakdownRow]
    truncated: bool = False


class Burst(msgspec.Struct, frozen=True):
    """Consecutive buckets at >= burst_factor x the median non-empty bucket."""

    t_start: float
    t_end: float
    records: int
    peak_records_per_second: float


class Gap(msgspec.Struct, frozen=True):
    """An idle gap between consecutive records (file order); `offset` is the record after."""

    t_start: float
    t_end: float
    duration_s: float
    offset: int


class Rates(msgspec.Struct, frozen=True):
    p50: float
    p90: float
    p99: float
    max: float


class TimeStats(msgspec.Struct, frozen=True):
    """Fixed buckets from `t_origin`; rates are over non-empty buckets."""

    bucket_s: float
    buckets: int
    t_origin: float | None
    records_per_second: Rates | None
    key_rows_per_second: Rates | None
    burst_factor: float
    bursts: list[Burst]
    idle_gap_threshold_s: float
    idle_gaps_over_threshold: int
    idle_time_s: float
    largest_idle_gaps: list[Gap]
    records_outside_timeline: int = 0


class TraceStats(msgspec.Struct, frozen=True):
    """Everything `inferguard trace stats` reports (schema inferguard.trace_stats/1)."""

    schema: str
    path: str
    size_bytes: int
    backend: str
    summary: TraceSummary
    keys: KeyTotals
    reuse: Reuse
    lifecycle: Lifecycle
    ops: list[OpKeyStats]
    breakdowns: Breakdowns
    time: TimeStats
    events: EventStats | None
    findings: list[TraceStatsFinding]


@dataclass(frozen=True)
class TraceStatsArrays:
    """Column form: the timeline (one row per bucket) and the per-op table."""

    bucket_start: npt.NDArray[np.float64]
    records: npt.NDArray[np.int64]
    key_rows: npt.NDArray[np.int64]
    bytes: npt.NDArray[np.int64]
    new_keys: npt.NDArray[np.float64]
    records_by_role: dict[str, npt.NDArray[np.int64]]
    events_by_kind: dict[str, npt.NDArray[np.int64]]
    # Per tracked key (a hash sample of keys once past max_exact_keys): how many lookup and
    # read records named it; `key_sample_rate` scales a count of keys back to the trace.
    lookups_per_key: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, np.int64))
    reads_per_key: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    key_sample_rate: float = 1.0


@dataclass(frozen=True)
class TraceAnalysis:
    stats: TraceStats
    arrays: TraceStatsArrays


@dataclass(frozen=True)
class KeyColumns:
    """ObjectKey rows of consecutive records, in file order: the record's byte offset, the
    key fingerprint (0 when malformed), ids into `models` / `salts` (-1: no salt or
    malformed, -2: name not interned), kv_rank, object_group_id and status (0 ok, 1
    malformed). Raw chunk hashes are never exposed."""

    offset: npt.NDArray[np.int64]
    fingerprint: npt.NDArray[np.uint64]
    model: npt.NDArray[np.int32]
    salt: npt.NDArray[np.int32]
    kv_rank: npt.NDArray[np.int64]
    object_group_id: npt.NDArray[np.int64]
    status: npt.NDArray[np.uint8]
    models: tuple[str, ...]
    salts: tuple[str, ...]


def iter_key_columns(source: PathOrBuffer, *, backend: Backend | None = None
                     ) -> Iterator[KeyColumns]:
    """Every ObjectKey row of a trace, a bounded piece at a time (the raw material of the
    analytics; see docs/trace-format.md for which bytes are a key)."""
    with TraceFile(source) as tfile:
        chosen = resolve_backend(backend)
        chunks, _ = tfile._chunks(chosen, [], keys=True)
        ex = make_extractor(chosen)
        for chunk in chunks:
            for k in ex.extract(chunk):
                models, salts = ex.names()
                yield KeyColumns(chunk.offset[k.row], k.fp, k.model, k.salt, k.kv_rank,
                                 k.group, k.status, tuple(models), tuple(salts))


# -- the pass -----------------------------------------------------------------------------------


def _names_cached(kernel: Kernel) -> Callable[[], list[str]]:
    """kernel.names(), refetched only when the op table grew (a new list each time, so a
    list already handed out never changes under its holder)."""
    cache: list[list[str]] = [[]]

    def get() -> list[str]:
        if kernel.size() != len(cache[0]):
            cache[0] = kernel.names()
        return cache[0]

    return get


def analyze_trace(source: PathOrBuffer | TraceFile, *, backend: Backend | None = None,
                  max_exact_keys: int = ts.DEFAULT_MAX_KEYS, bucket_s: float = 1.0,
                  idle_gap_s: float = 1.0, burst_factor: float = 4.0,
                  progress: ProgressFn | None = None, tap: KeyTap | None = None
                  ) -> TraceAnalysis:
    """Run the full analytics pass over a trace (a path, bytes, or an open TraceFile);
    `tap` sees every chunk and key row on the way."""
    if isinstance(source, TraceFile):
        return _analyze(source, backend, max_exact_keys, bucket_s, idle_gap_s, burst_factor,
                        progress, tap)
    with TraceFile(source) as tfile:
        return _analyze(tfile, backend, max_exact_keys, bucket_s, idle_gap_s, burst_factor,
                        progress, tap)


def trace_stats(source: PathOrBuffer | TraceFile, *, backend: Backend | None = None,
                max_exact_keys: int = ts.DEFAULT_MAX_KEYS, bucket_s: float = 1.0,
                progress: ProgressFn | None = None) -> TraceStats:
    """`analyze_trace(...).stats`."""
    return analyze_trace(source, backend=backend, max_exact_keys=max_exact_keys,
                         bucket_s=bucket_s, progress=progress).stats


def trace_findings(stats: TraceStats) -> list[TraceStatsFinding]:
    """The trace-derived findings (stable codes, evidence levels, offsets) for `diagnose`."""
    return list(stats.findings)


def _analyze(tfile: TraceFile, backend: Backend | None, max_keys: int, bucket_s: float,
             idle_gap_s: float, burst_factor: float, progress: ProgressFn | None,
             tap: KeyTap | None = None) -> TraceAnalysis:
    chosen = resolve_backend(backend)
    raw_findings = FindingLog(MAX_FINDINGS)  # bounded, like TraceFile.summary()
    chunks, kernel = tfile._chunks(chosen, raw_findings, keys=True)
    names = _names_cached(kernel)
    extractor = make_extractor(chosen)
    engine = ts.Engine(chosen, max_keys=max_keys, bucket_s=bucket_s, idle_gap_s=idle_gap_s)
    events_level = tfile.header.level == "events"
    events = EventsEngine(engine.timeline, max_keys, chosen) if events_level else None
    agg = _Aggregate(events_level, chosen)

    # Two threads (the default where two cores are): the scan and key extraction run on a
    # worker, up to AHEAD_PIECES items ahead of the fold (docs/performance.md, "The scan a
    # chunk ahead of the fold"). Not at the events level, whose folds read records from the
    # scan's window, which the scan unmaps when it moves on.
    stream = _scanned(chunks, names, extractor)
    ahead = _scan.ANALYTICS_SCAN_THREADS > 1 and not events_level
    with (Ahead(stream, "inferguard-scan", AHEAD_PIECES) if ahead
          else nullcontext(stream)) as items:
        for chunk, op_names, pieces in _regrouped(items):
            ev = events.decode(chunk, op_names) if events is not None else None
            agg.add(chunk, op_names, ev)  # the events records decoded once for both folds
            if tap is not None:
                tap.chunk(chunk, op_names)
                pieces = _tapped(tap, chunk, pieces)
            engine.add(chunk, op_names, pieces)
            if events is not None:
                events.add(chunk, op_names, engine.last_tb, ev)
            if progress is not None:
                progress(int(chunk.offset[-1]) + 4 + int(chunk.length[-1]), tfile.size)
    engine.finish()
    summary = agg.result(tfile, chosen, kernel.names(), tfile._header_findings + raw_findings,
                         raw_findings.omitted, raw_findings.omitted_skipped)
    models, salts = extractor.names()
    return _build(tfile, chosen, summary, engine, events, kernel.names(), models, salts,
                  burst_factor)


# The scan stage's stream: per chunk, (the chunk, the op names it may use), then its key
# rows a piece at a time, then None.
_Item = tuple[Chunk, list[str]] | KeyRows | None


def _scanned(chunks: Iterator[Chunk], names: Callable[[], list[str]],
             extractor: KeyExtractor) -> Iterator[_Item]:
    """The scan stage (on the worker thread when there is one): the only code that touches
    the scanner's op table and the key extractor. Key rows come a piece at a time, so what
    runs ahead is bounded in rows, not in chunks."""
    for chunk in chunks:
        yield chunk, names()
        yield from extractor.extract(chunk)
        yield None


def _regrouped(items: Iterator[_Item]
               ) -> Iterator[tuple[Chunk, list[str], Iterator[KeyRows]]]:
    """The stream as (chunk, op names, its key rows); rows the fold left unread are
    skipped before the next chunk."""
    for head in items:
        assert isinstance(head, tuple), head
        pieces = _pieces(items)
        yield head[0], head[1], pieces
        for _ in pieces:
            pass


def _pieces(items: Iterator[_Item]) -> Iterator[KeyRows]:
    for k in items:
        if k is None:
            return
        assert isinstance(k, KeyRows), k
        yield k


def _tapped(tap: KeyTap, chunk: Chunk, pieces: Iterator[KeyRows]) -> Iterator[KeyRows]:
    for k in pieces:
        tap.keys(chunk, k)
        yield k


# -- turning numbers into results -----------------------------------------------------------


class _Scale:
    """Estimates from the tracked keys: exact at level 0, else scaled by 1 / sample rate."""

    def __init__(self, keys: ts.Keys) -> None:
        self.p = keys.sample_rate
        self.exact = keys.level == 0

    def keys(self, mask: npt.NDArray[np.bool_]) -> Count:
        x = int(np.count_nonzero(mask))
        if self.exact:
            return Count(x)
        p = self.p  # (at least one key's worth of error: a sample of 0 is not a sure 0)
        return Count(round(x / p), False, math.sqrt(max(x, 1) * (1 - p)) / p, "key_sample")

    def rows(self, per_key: npt.NDArray[Any]) -> Count:
        v = per_key.astype(np.float64)
        x = float(v.sum())
        if self.exact:
            return Count(int(x))
        p = self.p
        return Count(round(x / p), False,
                     math.sqrt((1 - p) * max(float((v * v).sum()), 1.0)) / p, "key_sample")


def _by_group(sc: _Scale, sums: npt.NDArray[Any], sq: npt.NDArray[Any],
              keys: bool) -> list[Count]:
    if sc.exact:
        return [Count(int(x)) for x in sums.tolist()]
    p = sc.p
    return [Count(round(x / p), False, math.sqrt((1 - p) * max(q, 1.0)) / p, "key_sample")
            for x, q in zip(sums.tolist(), (sums if keys else sq).tolist(), strict=True)]


def _distinct(keys: ts.Keys, idx: int, mask: npt.NDArray[np.bool_] | None) -> Count:
    if keys.hll is None:
        return Count(int(keys.count if mask is None else np.count_nonzero(mask)))
    e = keys.hll[idx].estimate()
    return Count(round(e), False, ts.HLL_STDERR * e, "hyperloglog")


def record_times(tfile: TraceFile, offsets: list[int]) -> list[float | None]:
    """t_mono of the records at a handful of byte offsets (each re-read from the file)."""
    return [_frame_time(tfile, o) for o in offsets]


def _frame_time(tfile: TraceFile, offset: int | None) -> float | None:
    """t_mono of the record at `offset` (re-read; used for a handful of offsets)."""
    if offset is None or offset < 0:
        return None
    head = tfile._src.read(offset, 4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    d = tf.decode_body(tfile._src.read(offset + 4, n))
    return None if d.status == tf.ROW_MALFORMED or math.isnan(d.t_mono) else d.t_mono


def _life(tfile: TraceFile, count: Count, ex: ts.Examples) -> LifecycleCount:
    offs = [int(x) for x in ex.offsets.tolist()]
    first = offs[0] if offs else None
    return LifecycleCount(count, first, _frame_time(tfile, first), offs)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _build(tfile: TraceFile, backend: str, summary: TraceSummary, eng: ts.Engine,
           events: EventsEngine | None, op_names: list[str], models: list[str],
           salts: list[str], burst_factor: float) -> TraceAnalysis:
    keys = eng.keys
    n = keys.count
    c = keys.counters()
    sc = _Scale(keys)
    read_any = (c[:, ts.C_READ] > 0) | (c[:, ts.C_ENTER] > 0)
    written = c[:, ts.C_WRITE] > 0
    totals = KeyTotals(
        exact=sc.exact, sample_rate=sc.p, max_exact_keys=keys.max_keys, tracked_keys=n,
        key_rows=eng.key_rows, malformed_key_rows=eng.malformed_keys,
        distinct=_distinct(keys, 0, None),
        written=_distinct(keys, 1, written),
        written_more_than_once=sc.keys(c[:, ts.C_WRITE] > 1),
        reserved=_distinct(keys, 4, c[:, ts.C_RESERVE] > 0),
        looked_up=_distinct(keys, 2, c[:, ts.C_LOOKUP] > 0),
        read=_distinct(keys, 3, read_any),
        read_never_written=sc.keys(read_any & ~written),
        looked_up_never_read=sc.keys((c[:, ts.C_LOOKUP] > 0) & ~read_any))

    role_rows = np.zeros(ts.NROLES, np.int64)
    if len(eng.class_roles):
        role_rows = eng.class_roles.sum(axis=0)
    reads = int(role_rows[ts.ROLE_READ])
    reads_w = sc.rows(c[:, ts.C_READ_STORED])
    writes = int(role_rows[ts.ROLE_WRITE])
    rewrites = sc.rows(np.maximum(c[:, ts.C_WRITE].astype(np.int64) - 1, 0))
    reuse = Reuse(
        reads=reads, reads_of_written=reads_w,
        reads_of_unwritten=sc.rows(c[:, ts.C_READ].astype(np.int64)
                                   - c[:, ts.C_READ_STORED].astype(np.int64)),
        read_reuse_ratio=_ratio(reads_w.value, reads),
        lookups=int(role_rows[ts.ROLE_LOOKUP]),
        lookups_of_written=sc.rows(c[:, ts.C_LOOKUP_STORED]),
        writes=writes, rewrites=rewrites,
        write_amplification=_ratio(writes, totals.written.value),
        reserves=int(role_rows[ts.ROLE_RESERVE]),
        reserves_of_written=sc.rows(c[:, ts.C_RESERVE_STORED]))

    ex = keys.examples
    n_open, leaked = eng.contexts.leaked(ts.EXAMPLES)
    leak_offs = [o for o, _ in leaked]
    life = Lifecycle(
        unfinished_writes=_life(tfile, sc.rows(c[:, ts.C_UNFINISHED_NEW]), ex["unfinished_new"]),
        redundant_reserves=_life(tfile, sc.rows(c[:, ts.C_UNFINISHED_STORED]),
                                 ex["unfinished_stored"]),
        finish_without_reserve=_life(tfile, sc.rows(c[:, ts.C_FINISH_NO_RESERVE]),
                                     ex["finish_no_reserve"]),
        open_read_contexts=LifecycleCount(
            Count(n_open), leak_offs[0] if leak_offs else None,
            _opt(leaked[0][1]) if leaked else None, leak_offs),
        exits_without_enter=_life(tfile, Count(eng.contexts.exit_alone),
                                  eng.contexts.exit_examples),
        unserved_prefetches=_life(tfile, sc.rows(c[:, ts.C_UNSERVED_STORED]),
                                  ex["unserved_stored"]),
        cold_lookups_unread=_life(tfile, sc.rows(c[:, ts.C_UNSERVED_COLD]), ex["unserved_cold"]),
        reads_without_lookup=_life(tfile, sc.rows(c[:, ts.C_READ_NO_LOOKUP]),
                                   ex["read_no_lookup"]),
        untracked_contexts=eng.contexts.untracked)

    ops = _ops(eng, summary, op_names, c, keys, sc)
    breakdowns = _breakdowns(eng, models, salts, c, keys, sc)
    time, arrays = _time(eng, keys, sc, burst_factor, events)
    arrays = dataclasses.replace(
        arrays, lookups_per_key=c[:, ts.C_LOOKUP].astype(np.int64),
        reads_per_key=np.maximum(c[:, ts.C_READ], c[:, ts.C_ENTER]).astype(np.int64),
        key_sample_rate=sc.p)
    ev = events.result() if events is not None else None
    stats = TraceStats(
        schema=STATS_SCHEMA, path=tfile.path, size_bytes=tfile.size, backend=backend,
        summary=summary, keys=totals, reuse=reuse, lifecycle=life, ops=ops,
        breakdowns=breakdowns, time=time, events=ev, findings=[])
    stats = msgspec.structs.replace(stats, findings=_findings(tfile, stats, ex))
    return TraceAnalysis(stats, arrays)


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


_ROLE_STORED = {ts.ROLE_READ: ts.C_READ_STORED, ts.ROLE_LOOKUP: ts.C_LOOKUP_STORED,
                ts.ROLE_RESERVE: ts.C_RESERVE_STORED}


def _ops(eng: ts.Engine, summary: TraceSummary, names: list[str], c: npt.NDArray[np.uint32],
         keys: ts.Keys, sc: _Scale) -> list[OpKeyStats]:
    o = eng.ops
    o.grow(len(names))
    counts = {op.qualname: op.count for op in summary.ops}
    out = []
    for i, name in enumerate(names):
        if not counts.get(name):
            continue
        role = ts.role_of(name)
        stored: Count | None = None
        if role in _ROLE_STORED:
            stored = sc.rows(c[:, _ROLE_STORED[role]])
        elif role == ts.ROLE_WRITE:
            stored = sc.rows(np.maximum(c[:, ts.C_WRITE].astype(np.int64) - 1, 0))
        first_t, last_t = _opt(float(o.first_t[i])), _opt(float(o.last_t[i]))
        span = (last_t - first_t) if first_t is not None and last_t is not None else 0.0
        out.append(OpKeyStats(
            qualname=name, role=ts.ROLE_METHODS[role] or "other", count=counts[name],
            key_rows=int(o.key_rows[i]), malformed_key_rows=int(o.malformed[i]),
            key_rows_of_written=stored,
            first_offset=int(o.first_off[i]) if o.first_off[i] >= 0 else None,
            first_t_mono=first_t, last_t_mono=last_t,
            calls_per_second=counts[name] / span if span > 0 else None))
    for st, (rows, bad) in sorted(eng.special_rows.items()):
        label = {tf.ROW_OP_TABLE_FULL: f"(more than {tf.MAX_OPS} distinct qualnames)",
                 tf.ROW_QUALNAME_LONG: f"(qualname longer than {tf.MAX_QUALNAME} bytes)"}[st]
        out.append(OpKeyStats(label, "other", counts.get(label, 0), rows, bad, None, None, None,
                              None, None))
    out.sort(key=lambda x: x.qualname)
    return out


def _kv_label(v: int) -> dict[str, int]:
    return {"world_size": (v >> 24) & 0xFF, "global_rank": (v >> 16) & 0xFF,
            "local_world_size": (v >> 8) & 0xFF, "local_rank": v & 0xFF}


MAX_BREAKDOWN_ROWS = 1000


def _breakdowns(eng: ts.Engine, models: list[str], salts: list[str],
                c: npt.NDArray[np.uint32], keys: ts.Keys, sc: _Scale) -> Breakdowns:
    cl = eng.classes
    ncls = cl.size
    if ncls == 0:
        return Breakdowns([], [], [], [])
    kc = keys.cls[:keys.count].astype(np.int64)
    tuples = [*cl.tuples] + ([(-3, -3, -1, -1)] if cl.other else [])
    cut = [cl.other]
    # Per class once (a pass over the tracked keys), then per dimension value by adding up
    # its classes: the keys, and each counter's sum and sum of squares (for the error).
    nt = len(tuples)
    per_class: list[npt.NDArray[Any]] = [np.bincount(kc, minlength=nt).astype(np.float64)]
    for col in (ts.C_READ_STORED, ts.C_LOOKUP_STORED):
        v = c[:, col].astype(np.float64)
        per_class += [np.bincount(kc, weights=v, minlength=nt),
                      np.bincount(kc, weights=v * v, minlength=nt)]

    def dim_rows(label_of: Callable[[tuple[int, int, int, int]], str],
                 extra: Callable[[str], dict[str, int]] | None = None) -> list[BreakdownRow]:
        labels = [label_of(t) for t in tuples]
        uniq = sorted(set(labels))
        index = {lab: i for i, lab in enumerate(uniq)}
        cmap = np.array([index[lab] for lab in labels], np.int64)
        d = len(uniq)
        roles = np.zeros((d, ts.NROLES), np.int64)
        np.add.at(roles, cmap, eng.class_roles[:ncls])
        n, rs, rq, ls, lq = (np.bincount(cmap, weights=w, minlength=d) for w in per_class)
        distinct = _by_group(sc, n, n, keys=True)
        reads_w = _by_group(sc, rs, rq, keys=False)
        lookups_w = _by_group(sc, ls, lq, keys=False)
        cut[0] |= d > MAX_BREAKDOWN_ROWS
        return [BreakdownRow(
            value=lab, key_rows=int(roles[j].sum()), distinct_keys=distinct[j],
            rows_by_op={(ts.ROLE_METHODS[r] or "other"): int(roles[j, r])
                        for r in range(ts.NROLES) if roles[j, r]},
            reads_of_written=reads_w[j], lookups_of_written=lookups_w[j],
            **(extra(lab) if extra else {}))
            for j, lab in enumerate(uniq[:MAX_BREAKDOWN_ROWS])]

    def name(table: list[str], i: int, none: str) -> str:
        if i >= 0:
            return table[i]
        return {-1: none, -2: "(name not interned)"}.get(i, "(other)")

    def value(table: list[int], i: int) -> str:
        return str(table[i]) if 0 <= i < len(table) else "(other)"

    def kv_extra(lab: str) -> dict[str, int]:
        v = int(lab) if lab.lstrip("-").isdigit() else -1
        return _kv_label(v) if 0 <= v < 1 << 32 else {}

    return Breakdowns(
        model=dim_rows(lambda t: name(models, t[0], "(none)")),
        kv_rank=dim_rows(lambda t: value(cl.ranks, t[2]), kv_extra),
        cache_salt=dim_rows(lambda t: name(salts, t[1], "(no salt)")),
        object_group=dim_rows(lambda t: value(cl.groups, t[3])),
        truncated=cut[0])


def _rates(counts: npt.NDArray[np.int64], width: float) -> Rates | None:
    nz = counts[counts > 0].astype(np.float64) / width
    if not len(nz):
        return None
    q = np.quantile(nz, [0.5, 0.9, 0.99])
    return Rates(float(q[0]), float(q[1]), float(q[2]), float(nz.max()))


def _time(eng: ts.Engine, keys: ts.Keys, sc: _Scale, burst_factor: float,
          events: EventsEngine | None) -> tuple[TimeStats, TraceStatsArrays]:
    tl = eng.timeline
    w = tl.width
    data = tl.data
    nb = len(data)
    starts = ((tl.origin or 0.0) + (np.arange(nb) + tl.lo) * w).astype(np.float64)
    records = data[:, ts.TL_RECORDS] if nb else np.zeros(0, np.int64)
    new_keys = np.zeros(nb, np.float64)
    fb = keys.first_buckets() >> tl.shift
    if nb and len(fb):
        new_keys = np.bincount(fb - tl.lo, minlength=nb)[:nb].astype(np.float64) / sc.p
    bursts: list[Burst] = []
    nz = records[records > 0]
    if len(nz):
        thr = max(burst_factor * float(np.median(nz)), 2.0)
        hot = records >= thr
        edges = np.flatnonzero(np.diff(np.concatenate([[0], hot.astype(np.int8), [0]])))
        runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        runs.sort(key=lambda ab: (-int(records[ab[0]:ab[1]].sum()), ab[0]))
        for a, b in sorted(runs[:10]):
            bursts.append(Burst(float(starts[a]), float(starts[a] + (b - a) * w),
                                int(records[a:b].sum()), float(records[a:b].max() / w)))
    g = eng.gaps
    gaps = [Gap(float(t0), float(t0 + d), float(d), int(o))
            for d, t0, o in zip(g.gap.tolist(), g.t0.tolist(), g.off.tolist(), strict=True)]
    time = TimeStats(
        bucket_s=w, buckets=nb, t_origin=tl.origin,
        records_per_second=_rates(records, w),
        key_rows_per_second=_rates(data[:, ts.TL_KEY_ROWS] if nb else records, w),
        burst_factor=burst_factor, bursts=bursts, idle_gap_threshold_s=g.threshold,
        idle_gaps_over_threshold=g.over, idle_time_s=g.idle, largest_idle_gaps=gaps,
        records_outside_timeline=tl.out_of_range)
    by_role = {(ts.ROLE_METHODS[r] or "other"): (data[:, ts.TL_ROLE0 + r] if nb
                                                 else np.zeros(0, np.int64))
               for r in range(ts.NROLES)}
    arrays = TraceStatsArrays(
        bucket_start=starts, records=records,
        key_rows=data[:, ts.TL_KEY_ROWS] if nb else np.zeros(0, np.int64),
        bytes=data[:, ts.TL_BYTES] if nb else np.zeros(0, np.int64), new_keys=new_keys,
        records_by_role=by_role,
        events_by_kind=events.timeline_columns(nb, tl) if events is not None else {})
    return time, arrays


# -- findings -------------------------------------------------------------------------------


def _finding(tfile: TraceFile, code: str, evidence: str, detail: str, count: Count,
             offsets: list[int]) -> TraceStatsFinding:
    first = offsets[0] if offsets else None
    return TraceStatsFinding(code, evidence, detail, count, first,
                             _frame_time(tfile, first), offsets)


def _findings(tfile: TraceFile, s: TraceStats, ex: dict[str, ts.Examples]
              ) -> list[TraceStatsFinding]:
    out: list[TraceStatsFinding] = []
    last_t = s.summary.t_mono_last
    clean_end = not any(f.kind in ("truncated_frame", "truncated_length_prefix")
                        for f in s.summary.integrity.findings)

    def settled(life: LifecycleCount) -> str:
        """supported if the break is not just something still in flight at the end."""
        t = life.first_t_mono
        if clean_end and t is not None and last_t is not None and t < last_t - IN_FLIGHT_S:
            return "supported"
        return "partial"

    def measured(count: Count, life: LifecycleCount | None = None) -> str:
        """A count read off the trace is measured: supported when exact, the trace ends
        cleanly and (for a lifecycle break) it is not just in flight at the end; partial
        when sampled/estimated or the trace is truncated."""
        if not count.exact or not clean_end:
            return "partial"
        return settled(life) if life is not None else "supported"

    def offs(name: str) -> list[int]:
        return [int(x) for x in ex[name].offsets.tolist()]

    i = s.summary.integrity
    if not i.ok:
        out.append(_finding(
            tfile, "trace_damaged", "supported",
            f"{len(i.findings) + i.findings_omitted} integrity findings, "
            f"{i.malformed_frames} malformed frames, {i.skipped_bytes} bytes not read as "
            "records; analytics cover the readable records only",
            Count(len(i.findings) + i.findings_omitted), [f.offset for f in i.findings[:20]]))
    k = s.keys
    # Only the storage level carries ObjectKeys; events-level records carry their keys as
    # entries' chunk_hash_hex (analysed by the events aggregate), never as ObjectKeys.
    if s.summary.header.level == "storage" and s.summary.total_records and k.key_rows == 0:
        out.append(_finding(
            tfile, "trace_no_object_keys", "missing_signal",
            "storage-level records carry no ObjectKey arguments, so per-key analytics are "
            "impossible", Count(0), []))
    if k.malformed_key_rows:
        out.append(_finding(
            tfile, "trace_malformed_object_keys", "supported",
            f"{k.malformed_key_rows} ObjectKey wrappers whose payload is not a key",
            Count(k.malformed_key_rows), []))
    if not k.exact:
        out.append(_finding(
            tfile, "trace_key_stats_sampled", "partial",
            f"more than {k.max_exact_keys} distinct keys: per-key numbers come from a hash "
            f"sample of {k.sample_rate:.6g} of the keys, distinct counts from HyperLogLog; "
            "each carries its standard error", k.distinct, []))
    r = s.reuse
    if (s.reuse.writes or s.reuse.lookups) and r.reads == 0 and k.key_rows:
        out.append(_finding(
            tfile, "trace_no_read_records", "missing_signal",
            "keys were written or looked up but never read in this trace; reuse cannot be "
            "measured from it", Count(0), []))
    if r.reads_of_unwritten.value:
        out.append(_finding(
            tfile, "trace_reads_of_unwritten_keys", "partial",
            f"{r.reads_of_unwritten.value} of {r.reads} finish_read_prefetched key rows read "
            "a key with no earlier finish_write in this trace (stored before recording "
            "began, by another instance, or not through this StorageManager)",
            r.reads_of_unwritten, offs("read_unstored")))
    life = s.lifecycle
    if life.open_read_contexts.count.value:
        out.append(_finding(
            tfile, "trace_leaked_read_contexts", settled(life.open_read_contexts),
            f"{life.open_read_contexts.count.value} __enter__ records have no matching "
            "__exit__ (read locks may be held until their TTL)",
            life.open_read_contexts.count, life.open_read_contexts.offsets))
    if life.exits_without_enter.count.value:
        out.append(_finding(
            tfile, "trace_exit_without_enter", "partial",
            f"{life.exits_without_enter.count.value} __exit__ records match no open __enter__ "
            "(entered before recording began, or keys differ)", life.exits_without_enter.count,
            life.exits_without_enter.offsets))
    if life.unfinished_writes.count.value:
        out.append(_finding(
            tfile, "trace_unfinished_writes", settled(life.unfinished_writes),
            f"{life.unfinished_writes.count.value} reserved key rows (keys not written before) "
            "saw no finish_write or abort_write afterwards", life.unfinished_writes.count,
            life.unfinished_writes.offsets))
    if life.finish_without_reserve.count.value:
        out.append(_finding(
            tfile, "trace_finish_without_reserve", "partial",
            f"{life.finish_without_reserve.count.value} finished key rows had no open "
            "reserve_write of the key in this trace", life.finish_without_reserve.count,
            life.finish_without_reserve.offsets))
    amp = r.write_amplification
    redundant = life.redundant_reserves.count
    # Amplification needs a rewrite: a reserve_write of a resident key is refused upstream
    # (L1Manager.reserve_write: KEY_NOT_WRITABLE), so re-reserves alone rewrite nothing.
    if r.rewrites.value:
        detail = (f"{r.rewrites.value} finish_write key rows rewrote a key already written"
                  + (f" (write amplification {amp:.3f})" if amp is not None else ""))
        if r.reserves_of_written.value:
            detail += (f"; {r.reserves_of_written.value} reserve_write key rows re-reserved a "
                       f"written key ({redundant.value} never finished: rejected re-stores)")
        out.append(_finding(
            tfile, "trace_write_amplification", measured(r.rewrites),
            detail + ". Eviction between the writes would make this legitimate; only "
            "engine/cache metrics can tell", r.rewrites, []))
    if life.unserved_prefetches.count.value:
        out.append(_finding(
            tfile, "trace_unserved_prefetches",
            measured(life.unserved_prefetches.count, life.unserved_prefetches),
            f"{life.unserved_prefetches.count.value} lookups of keys written earlier were "
            "not followed by finish_read_prefetched of the key (evicted, missed, or the read "
            "never finished; a lock taken at prefetch may be held until its TTL)",
            life.unserved_prefetches.count, life.unserved_prefetches.offsets))
    if s.events is not None:
        out += _event_findings(tfile, s.events)
    return out


def _event_findings(tfile: TraceFile, e: EventStats) -> list[TraceStatsFinding]:
    out = []
    restarts = [i for i in e.instances if i.restarts]
    if restarts:
        offs = sorted(o for i in restarts for o in i.restart_offsets)[:20]
        out.append(_finding(
            tfile, "trace_events_restarts", "supported",
            ", ".join(f"{i.instance_id}: {i.restarts}" for i in restarts),
            Count(sum(i.restarts for i in restarts)), offs))
    if e.deletes_of_unstored.value:
        out.append(_finding(
            tfile, "trace_events_delete_without_store", "partial",
            f"{e.deletes_of_unstored.value} delete entries name a key with no earlier store "
            "on that tier", e.deletes_of_unstored, []))
    return out
