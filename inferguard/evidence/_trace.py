"""A `.lct` trace recording as evidence: the summary with its integrity section and the
analytics findings."""

from __future__ import annotations

import os
from typing import Any

import msgspec

from inferguard.evidence._model import Evidence, EvidenceSource, Problem
from inferguard.lct._file import TraceFile, TraceFormatError, TraceSummary
from inferguard.lct._stats import TraceStatsFinding, trace_stats


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


def _hashes(x: Any, out: list[bytes], depth: int = 0) -> None:
    """The chunk hashes of every ObjectKey wrapper inside raw (still wrapped) args, in order."""
    if depth > 32:
        return
    if isinstance(x, dict):
        if x.get("__t__") == "ObjectKey":
            v = x.get("v")
            h = v.get("chunk_hash") if isinstance(v, dict) else None
            if isinstance(h, bytes):
                out.append(h)
            return
        for v in x.values():
            _hashes(v, out, depth + 1)
    elif isinstance(x, list):
        for v in x:
            _hashes(v, out, depth + 1)


def first_chunk_gaps(t: TraceFile) -> FirstChunkGaps | None:
    """The first-chunk-never-stored digest of a storage-level trace (None for other levels)."""
    if t.header.level != "storage":
        return None
    lookups: list[tuple[int, tuple[bytes, ...]]] = []
    reserves: list[tuple[bytes, ...]] = []
    written: set[bytes] = set()
    read: set[bytes] = set()
    n = 0
    for rec in t.records(unwrap_args=False):
        n += 1
        if n > MAX_GAP_RECORDS:
            n -= 1
            break
        q = rec.qualname
        if not q.endswith((_LOOKUP, _RESERVE, _READ)):
            continue
        keys: list[bytes] = []
        _hashes(rec.args, keys)
        if q.endswith(_LOOKUP):
            lookups.append((rec.offset, tuple(keys)))
        elif q.endswith(_RESERVE):
            reserves.append(tuple(keys))
            written.update(keys)
        else:
            read.update(keys)
    tails = set(reserves)
    gaps = [(off, keys) for off, keys in lookups if len(keys) >= 2 and keys[0] not in written
            and keys[1:] in tails]
    prompts = {keys for _, keys in gaps}
    return FirstChunkGaps(
        lookups=len(lookups), writes=len(reserves), gap_lookups=len(gaps),
        gap_lookups_read=sum(1 for _, keys in gaps if keys[0] in read) if prompts else 0,
        first_offset=gaps[0][0] if gaps else None, records_read=n)


def read_trace(path: str | os.PathLike[str]) -> Evidence:
    """A `.lct` file as evidence; a damaged trace is partial, a non-trace malformed."""
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
        with TraceFile(p) as t:
            stats = trace_stats(t)
            gaps = first_chunk_gaps(t)
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
                    facts=TraceFacts(summary, stats.findings, gaps), problems=problems)


def _sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


