"""Reading a `.lct` trace as evidence: one analytics pass (`lct.analyze_trace`) gives the
summary, the findings, the series the report draws and (through `FirstChunkTap`) the
first-chunk digest. The facts types live in `_trace`; the reader registry imports this
module on the first trace read."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from inferguard._files import NotRegularFile, sha256_file
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, open_input
from inferguard.evidence._trace import (
    MAX_POINTS,
    REUSE_EDGES,
    BreakTimes,
    FirstChunkGaps,
    TraceFacts,
    TraceSeries,
)
from inferguard.lct._file import TraceFile, TraceFormatError
from inferguard.lct._stats import TraceAnalysis, analyze_trace, iter_key_columns, record_times

MAX_GAP_RECORDS = 50_000
"""Records the first-chunk digest examines (the first readable ones)."""
_LOOKUP, _RESERVE, _READ = ("StorageManager.submit_prefetch_task", "StorageManager.reserve_write",
                            "StorageManager.finish_read_prefetched")


class FirstChunkTap:
    """`first_chunk_gaps` taken from the analytics pass (a `KeyTap`): the same records
    (the first MAX_GAP_RECORDS readable ones) and key rows, with no second scan or key
    extraction. `first_chunk_gaps` below is its reference."""

    def __init__(self) -> None:
        self.records_read = 0
        self.kind: dict[int, str] = {}
        self.offs: list[np.ndarray] = []
        self.fps: list[np.ndarray] = []
        self._cur: np.ndarray | None = None

    def chunk(self, chunk: Any, op_names: list[str]) -> None:
        self._cur = None
        if self.records_read >= MAX_GAP_RECORDS:
            return
        take = np.flatnonzero(chunk.status == 0)[:MAX_GAP_RECORDS - self.records_read]
        self.records_read += len(take)
        wanted = np.array([q.endswith((_LOOKUP, _RESERVE, _READ)) for q in op_names] + [False],
                          np.bool_)
        op = chunk.op[take]
        take = take[wanted[np.where(op >= 0, op, len(op_names))]]
        if not len(take):
            return
        for o, i in zip(chunk.offset[take].tolist(), chunk.op[take].tolist(), strict=True):
            self.kind[o] = op_names[i]
        cur = np.zeros(len(chunk.offset), np.bool_)
        cur[take] = True
        self._cur = cur

    def keys(self, chunk: Any, k: Any) -> None:
        if self._cur is None:
            return
        m = self._cur[k.row]
        if m.any():
            self.offs.append(chunk.offset[k.row[m]])
            self.fps.append(k.fp[m])

    def result(self, t: TraceFile) -> FirstChunkGaps | None:
        if t.header.level != "storage":
            return None
        if not self.records_read:
            return FirstChunkGaps()
        return _gap_digest(self.kind, self.offs, self.fps, self.records_read)


def first_chunk_gaps(t: TraceFile, source: str | os.PathLike[str] | bytes
                     ) -> FirstChunkGaps | None:
    """The first-chunk-never-stored digest of a storage-level trace (None for other levels),
    from the scan's op column and the key rows' fingerprints (both C-speed passes; no raw
    hash leaves the key extractor)."""
    if t.header.level != "storage":
        return None
    cols = t.scan()
    rec = np.flatnonzero(cols.status == 0)[:MAX_GAP_RECORDS]
    if not len(rec):
        return FirstChunkGaps()
    wanted = {i: q for i, q in enumerate(cols.ops) if q.endswith((_LOOKUP, _RESERVE, _READ))}
    kind = {int(cols.offset[r]): wanted[int(cols.op[r])] for r in rec
            if int(cols.op[r]) in wanted}
    last = int(cols.offset[rec[-1]])
    offs: list[np.ndarray] = []
    fps: list[np.ndarray] = []
    for kc in iter_key_columns(source):
        offs.append(kc.offset)
        fps.append(kc.fingerprint)
        if len(kc.offset) and int(kc.offset[-1]) > last:
            break
    if offs:
        off = np.concatenate(offs)
        keep = off <= last
        offs, fps = [off[keep]], [np.concatenate(fps)[keep]]
    return _gap_digest(kind, offs, fps, len(rec))


def _gap_digest(kind: dict[int, str], offs: list[np.ndarray], fps: list[np.ndarray],
                records_read: int) -> FirstChunkGaps:
    """The digest over the key rows (file order) of the records in `kind`."""
    lookups: list[tuple[int, tuple[int, ...]]] = []
    reserves: set[tuple[int, ...]] = set()
    written: set[int] = set()
    read: set[int] = set()
    n_reserves = 0
    if offs:
        off = np.concatenate(offs)
        fp = np.concatenate(fps)
        cuts = np.flatnonzero(np.diff(off)) + 1
        starts = np.concatenate([[0], cuts]).astype(np.int64) if len(off) else cuts
        for o, keys in zip(off[starts].tolist(), np.split(fp, cuts), strict=True):
            q = kind.get(o)
            if q is None:
                continue
            ks = tuple(keys.tolist())
            if q.endswith(_LOOKUP):
                lookups.append((o, ks))
            elif q.endswith(_RESERVE):
                n_reserves += 1
                reserves.add(ks)
                written.update(ks)
            else:
                read.update(ks)
    gaps = [(o, ks) for o, ks in lookups if len(ks) >= 2 and ks[0] not in written
            and ks[1:] in reserves]
    return FirstChunkGaps(
        lookups=len(lookups), writes=n_reserves, gap_lookups=len(gaps),
        gap_lookups_read=sum(1 for _, ks in gaps if ks[0] in read),
        first_offset=gaps[0][0] if gaps else None, records_read=records_read)


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
        with open_input(p) as f:  # a device or FIFO is refused before it is mapped
            size = os.fstat(f.fileno()).st_size
        with TraceFile(p) as t:
            tap = FirstChunkTap()
            analysis = analyze_trace(t, tap=tap)
            series = trace_series(t, analysis)
            gaps = tap.result(t)
        stats = analysis.stats
        summary = stats.summary
    except TraceFormatError as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(str(exc), offset=0)])
    except NotRegularFile as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(exc.strerror or str(exc))])
    except OSError as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(f"cannot read file: {exc.strerror or exc}")])
    problems = [Problem(f"{f.kind}: {f.detail}", offset=f.offset)
                for f in summary.integrity.findings]
    source = EvidenceSource(path=p, sha256=sha256_file(p), size=size)
    return Evidence(kind="trace", source=source, status="partial" if problems else "ok",
                    facts=TraceFacts(summary, stats.findings, gaps, series), problems=problems)
