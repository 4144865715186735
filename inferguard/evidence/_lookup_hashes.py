"""Lookup-hash evidence (`lookup_hashes_*.jsonl`), privacy-bounded.

Each line upstream writes is one lookup: timestamp, request_id, model_name, chunk_size,
seq_len, dtypes, shapes and the raw chunk hashes. Raw hashes never leave this module: they
are folded, under a random per-read salt, into counts (distinct chunks, repeated chunks,
lookups whose first chunk was seen before). What is kept is counts, chunk-shape summaries
and per-model aggregates.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import msgspec

from inferguard import _lazy
from inferguard.evidence._lru import LruResult, replay_lru
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, read_source, status_from

MAX_DISTINCT = 5_000_000   # distinct chunk digests counted exactly; beyond, counting stops
MAX_PROBLEMS = 100
MAX_FILE_BYTES = 64 << 20  # one rotated lookup-hash file (upstream rotates far smaller)
FILE_NAME = _lazy.pattern(r"^lookup_hashes_(\d{8}_\d{6})_(\d{6})\.jsonl$")
# Achievable hit rate: LRU capacities (in chunks) as fractions of the distinct chunks seen,
# when the caller names none; an unbounded cache is always replayed too.
DEFAULT_LRU_FRACTIONS = (0.1, 0.25, 0.5)


class ModelLookups(msgspec.Struct, frozen=True):
    model_name: str
    lookups: int
    requests: int
    chunks: int
    tokens: int


class LookupHashFacts(msgspec.Struct, frozen=True, tag="lookup_hash", omit_defaults=True):
    """Aggregates over lookup lines; no raw hash, request id or digest is kept."""

    files: int = 0
    lookups: int = 0
    requests: int = 0
    models: list[ModelLookups] = msgspec.field(default_factory=list)
    chunk_sizes: dict[str, int] = msgspec.field(default_factory=dict)
    dtypes: dict[str, int] = msgspec.field(default_factory=dict)
    shapes: dict[str, int] = msgspec.field(default_factory=dict)
    seq_len_total: int = 0
    seq_len_max: int = 0
    chunks_total: int = 0
    chunks_distinct: int | None = None
    chunks_repeated: int | None = None
    lookups_with_seen_prefix: int = 0
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    rotation_counters: list[int] = msgspec.field(default_factory=list)
    missing_rotation_counters: list[int] = msgspec.field(default_factory=list)
    # Upstream numbers files from 0 in an empty directory and, after a restart, from the
    # number of files present (never max + 1), so across runs the counters cover 0..max and
    # every counter absent from 0..max is a file that was written and is gone (deleted by
    # --lookup-hash-log-max-files rotation, which logs nothing, or removed).
    rotated_away_counters: int = 0       # the leading gap: counters 0..k-1 all absent
    files_lost_at_least: int = 0         # counters absent from 0..max (leading + inner)
    reused_counters: list[int] = msgspec.field(default_factory=list)  # renumbered after restart
    counts_at_least: bool = False        # files were lost: lookups/chunks are lower bounds
    # The lookups replayed through LRU caches (evidence/_lru.py): the token hit rate each
    # capacity, and an unbounded cache (capacity None, last), would have reached.
    achievable: list[LruResult] = msgspec.field(default_factory=list)


class _Acc:
    def __init__(self) -> None:
        import array  # here, not at import: judging other evidence does not need it
        import json

        self._dumps = json.dumps  # bound once: add() runs for every line
        self.salt = os.urandom(16)
        self.seen: set[bytes] = set()
        self.overflow = False
        self.repeated = 0
        self.seen_prefix = 0
        self.lookups = 0
        self.requests: set[bytes] = set()
        self.models: dict[str, list[Any]] = {}
        self.chunk_sizes: dict[str, int] = {}
        self.dtypes: dict[str, int] = {}
        self.shapes: dict[str, int] = {}
        self.seq_total = self.seq_max = self.chunks = 0
        self.t_min: float | None = None
        self.t_max: float | None = None
        # The replay sequence: dense ids per (model, chunk) and, per lookup, its arrival
        # time, id span, chunk size and length. Ids are equality only: no hash survives.
        self.dense: dict[bytes, int] = {}
        self.ids = array.array("q")
        self.replay_off = False  # more distinct chunks than MAX_DISTINCT: no replay
        self.replay: list[tuple[float, int, int, int, int]] = []

    def digest(self, value: str) -> bytes:
        return hashlib.blake2b(value.encode("utf-8", "replace"), digest_size=12,
                               key=self.salt).digest()

    def add(self, d: dict[str, Any]) -> str | None:
        hashes = d.get("chunk_hashes")
        if not isinstance(hashes, list):
            return "no chunk_hashes list"
        model = d.get("model_name")
        model = model if isinstance(model, str) else "?"
        req = d.get("request_id")
        self.lookups += 1
        rdig = self.digest(str(req))
        self.requests.add(rdig)
        seq = d.get("seq_len")
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        self.seq_total += seq
        self.seq_max = max(self.seq_max, seq)
        self.chunks += len(hashes)
        m = self.models.setdefault(model, [0, set(), 0, 0])
        m[0] += 1
        m[1].add(rdig)
        m[2] += len(hashes)
        m[3] += seq
        cs = d.get("chunk_size")
        self.chunk_sizes[str(cs)] = self.chunk_sizes.get(str(cs), 0) + 1
        for dt in d.get("dtypes") or []:
            self.dtypes[str(dt)] = self.dtypes.get(str(dt), 0) + 1
        shapes = d.get("shapes")
        key = self._dumps(shapes, separators=(",", ":"))[:200]
        self.shapes[key] = self.shapes.get(key, 0) + 1
        ts = d.get("timestamp")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            self.t_min = ts if self.t_min is None else min(self.t_min, ts)
            self.t_max = ts if self.t_max is None else max(self.t_max, ts)
        first = len(self.ids)
        mdig = self.digest(model)
        replay = not self.replay_off
        for i, h in enumerate(hashes):
            dig = self.digest(str(h))
            if replay:
                self.ids.append(self.dense.setdefault(mdig + dig, len(self.dense)))
            if dig in self.seen:
                self.repeated += 1
                if i == 0:
                    self.seen_prefix += 1
            elif not self.overflow:
                if len(self.seen) >= MAX_DISTINCT:
                    self.overflow = True
                else:
                    self.seen.add(dig)
        if replay and len(self.dense) > MAX_DISTINCT:
            self.replay_off, replay = True, False
            self.dense.clear()
            del self.ids[:]
            self.replay.clear()
        if replay:
            self.replay.append((
                ts if isinstance(ts, (int, float)) and not isinstance(ts, bool) else 0.0,
                first, len(self.ids),
                cs if isinstance(cs, int) and not isinstance(cs, bool) else 0, seq))
        return None


    def achievable(self, capacities: list[int] | None) -> list[LruResult]:
        """Replay the lookups (timestamp order, as upstream's simulator sorts them)."""
        if not self.replay:
            return []
        import numpy as np  # on first use: reading the hashes needs none

        ids = np.frombuffer(self.ids, np.int64) if len(self.ids) else np.zeros(0, np.int64)
        ts = np.asarray([r[0] for r in self.replay], np.float64)
        order = np.argsort(ts, kind="stable")
        spans = [self.replay[i] for i in order.tolist()]
        begin = np.asarray([a for _, a, _, _, _ in spans], np.int64)
        lengths = np.asarray([b - a for _, a, b, _, _ in spans], np.int64)
        offsets = np.zeros(len(spans) + 1, np.int64)
        offsets[1:] = np.cumsum(lengths)
        # Gather each lookup's ids in arrival order (one vectorised index, no slice list).
        flat = ids[np.repeat(begin - offsets[:-1], lengths)
                   + np.arange(int(offsets[-1]), dtype=np.int64)]
        if capacities is None:
            capacities = sorted({max(1, int(len(self.dense) * f))
                                 for f in DEFAULT_LRU_FRACTIONS})
        return replay_lru(flat, offsets, np.asarray([c for *_, c, _ in spans], np.int64),
                          np.asarray([n for *_, n in spans], np.int64), capacities)


def read_lookup_hashes(paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
                       lru_capacities: list[int] | None = None) -> Evidence:
    """Read one file, a list of files, or a directory of `lookup_hashes_*.jsonl`.
    `lru_capacities` (chunks) are the LRU sizes the achievable hit rate is replayed at
    (default: fractions of the distinct chunks seen, `DEFAULT_LRU_FRACTIONS`)."""
    import json
    from pathlib import Path

    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.glob("lookup_hashes_*.jsonl")) if p.is_dir() else [p]
    else:
        files = sorted(Path(x) for x in paths)
    acc = _Acc()
    problems: list[Problem] = []
    sha = hashlib.sha256()
    size = 0
    counters: list[int] = []
    named: list[tuple[str, int]] = []
    read_any = False
    for f in files:
        m = FILE_NAME.match(f.name)
        if m:
            counters.append(int(m.group(2)))
            named.append((m.group(1), int(m.group(2))))
        data, _src, prob = read_source(f, max_bytes=MAX_FILE_BYTES)
        if data is None:
            assert prob is not None
            problems.append(Problem(f"cannot read {f}: {prob.message}", where=str(f)))
            continue
        sha.update(f.name.encode() + b"\0" + data)
        size += len(data)
        for n, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except (ValueError, RecursionError):
                d = None
            err = "not a JSON object" if not isinstance(d, dict) else acc.add(d)
            if err is None:
                read_any = True
            elif len(problems) < MAX_PROBLEMS:
                problems.append(Problem(f"{f.name}: {err}", line=n, where=str(f)))
    reused = _reused_counters(named)
    counters.sort()
    missing = ([c for c in range(counters[0], counters[-1] + 1) if c not in set(counters)]
               if counters else [])
    leading = counters[0] if counters else 0
    lost = leading + len(missing)
    facts = LookupHashFacts(
        files=len(files), lookups=acc.lookups, requests=len(acc.requests),
        models=[ModelLookups(k, v[0], len(v[1]), v[2], v[3])
                for k, v in sorted(acc.models.items())],
        chunk_sizes=acc.chunk_sizes, dtypes=acc.dtypes, shapes=acc.shapes,
        seq_len_total=acc.seq_total, seq_len_max=acc.seq_max, chunks_total=acc.chunks,
        chunks_distinct=None if acc.overflow else len(acc.seen),
        chunks_repeated=None if acc.overflow else acc.repeated,
        lookups_with_seen_prefix=acc.seen_prefix,
        first_timestamp=acc.t_min, last_timestamp=acc.t_max, rotation_counters=counters,
        missing_rotation_counters=missing, rotated_away_counters=leading,
        files_lost_at_least=lost, reused_counters=reused, counts_at_least=lost > 0,
        achievable=acc.achievable(lru_capacities))
    if acc.replay_off:
        problems.append(Problem(f"more than {MAX_DISTINCT} distinct chunks: no achievable "
                                "hit-rate replay"))
    if acc.overflow:
        problems.append(Problem(f"more than {MAX_DISTINCT} distinct chunks: distinct and "
                                "repeated counts omitted"))
    source = EvidenceSource(path=os.fspath(files[0].parent if len(files) > 1 else
                                           (files[0] if files else "")),
                            sha256=sha.hexdigest(), size=size)
    return Evidence(kind="lookup_hash", source=source,
                    status=status_from(problems, readable=read_any), facts=facts,
                    problems=problems)


def _reused_counters(named: list[tuple[str, int]]) -> list[int]:
    """Counters a restart numbered again, as the names prove it: within one run each new
    file has a later-or-equal open time (UTC, in the name) and the next counter, so a file
    whose counter is not above the counter of the file opened before it was numbered by a
    later run starting at a counter already used (upstream starts at the number of files it
    finds). Same-second names sort by counter, so a restart within a second is not seen:
    names can prove reuse, never its absence."""
    out: list[int] = []
    prev: int | None = None
    for _, c in sorted(named):
        if prev is not None and c <= prev:
            out.append(c)
        prev = c
    return sorted(set(out))
