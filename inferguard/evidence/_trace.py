"""A `.lct` trace recording as evidence: the summary with its integrity section and the
analytics findings."""

from __future__ import annotations

import os

import msgspec
import numpy as np

from inferguard._files import NotRegularFile
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, open_input
from inferguard.lct._file import TraceFile, TraceFormatError, TraceSummary
from inferguard.lct._stats import TraceStatsFinding, iter_key_columns, trace_stats


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
    """A `.lct` recording: the trace summary with its integrity section, and the findings
    of the trace analytics (lifecycle breaks, reuse, write amplification, ...)."""

    summary: TraceSummary
    analytics: list[TraceStatsFinding] = msgspec.field(default_factory=list)
    first_chunk_gaps: FirstChunkGaps | None = None


MAX_GAP_RECORDS = 50_000
_LOOKUP, _RESERVE, _READ = ("StorageManager.submit_prefetch_task", "StorageManager.reserve_write",
                            "StorageManager.finish_read_prefetched")


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
    lookups: list[tuple[int, tuple[int, ...]]] = []
    reserves: set[tuple[int, ...]] = set()
    written: set[int] = set()
    read: set[int] = set()
    n_reserves = 0
    if offs:
        off = np.concatenate(offs)
        fp = np.concatenate(fps)
        keep = off <= last
        off, fp = off[keep], fp[keep]
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
        first_offset=gaps[0][0] if gaps else None, records_read=len(rec))


def read_trace(path: str | os.PathLike[str]) -> Evidence:
    """A `.lct` file as evidence; a damaged trace is partial, a non-trace malformed."""
    p = os.fspath(path)
    try:
        with open_input(p) as f:  # a device or FIFO is refused before it is mapped
            size = os.fstat(f.fileno()).st_size
        with TraceFile(p) as t:
            stats = trace_stats(t)
            gaps = first_chunk_gaps(t, p)
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
    source = EvidenceSource(path=p, sha256=_sha256_file(p), size=size)
    return Evidence(kind="trace", source=source, status="partial" if problems else "ok",
                    facts=TraceFacts(summary, stats.findings, gaps), problems=problems)


def _sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


