"""Achievable hit rate: replay a lookup sequence (dense chunk ids, never hashes) through LRU
caches of several capacities at once, vectorised with numpy.

Semantics are those of upstream's cache simulator (lmcache 0.5.6
`tools/cache_simulator/simulator.py`, `simulate`): lookups in timestamp order; a lookup's
hit is the *prefix* of its chunks the cache holds when the lookup arrives (the first miss
ends it); then every chunk of the lookup is touched (a held chunk becomes most recent, a
missing one is inserted, evicting the least recent). Token hit rate =
sum(prefix chunks × chunk_size) / sum(seq_len): tail tokens of an incomplete chunk always
miss. One difference, said so: InferGuard keys chunks by (model, hash) as LMCache's object
keys do; upstream's simulator keys by hash alone.

How: a chunk is held by an LRU of capacity C iff fewer than C distinct other chunks were
touched between its previous touch q and the start s of its lookup. That count is
D = #{j < s : prev[j] <= q} - (q + 1) (a position j in (q, s) counts when its chunk's
previous touch is at or before q: its first touch inside the window), an offline dominance
count over a merge-sort tree (one `searchsorted` per level), needed only at the head of
each run of chunks previously touched together (inside a run, D drops by one per chunk).
Then one comparison per capacity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # numpy loads when a replay runs, not with the evidence types
    import numpy as np
    import numpy.typing as npt

    I64 = npt.NDArray[np.int64]


class LruResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """One capacity's replay: `capacity` chunks (None: unbounded), the hit tokens it would
    have served over `tokens` looked-up tokens, and the token hit rate (None: no tokens)."""

    capacity: int | None
    hit_tokens: int
    tokens: int
    hit_rate: float | None


def previous_touch(ids: I64) -> I64:
    """For each position, the position of the same id's previous occurrence (-1: none)."""
    import numpy as np

    n = len(ids)
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    prev = np.full(n, -1, np.int64)
    same = np.flatnonzero(sid[1:] == sid[:-1]) + 1
    prev[order[same]] = order[same - 1]
    return prev


def count_before(prev: I64, s: I64, q: I64) -> I64:
    """For each query i: #{j < s[i] : prev[j] <= q[i]}.

    A merge-sort tree over positions: level k holds `prev` sorted within aligned rows of
    2**k positions, built from level k-1 by a stable sort of rows made of two sorted runs
    (one merge each). The positions j < s split into at most one aligned row per level (the
    row left of s at every level where bit k of s is set); each is one `searchsorted`."""
    import numpy as np

    n = len(prev)
    out = np.zeros(len(s), np.int64)
    if n == 0 or len(s) == 0:
        return out
    levels = max(1, int(n - 1).bit_length())
    size = 1 << levels
    width = np.int64(size + 2)
    tree = np.full(size, size, np.int64)  # padding never counts: its prev exceeds any q
    tree[:n] = prev
    tree += 1
    # Needles in sorted order make `searchsorted` cache-friendly (numpy narrows each search
    # from the previous one). Queries come sorted by s: at fine levels (many small rows) that
    # already orders them by row. At coarse levels (at most 2**16 rows) they are taken in
    # order of q once, then per level stable-radix-sorted by a 16-bit row id: (row, q) order.
    by_q = np.argsort(q, kind="stable")
    s_q, q_q = s[by_q], q[by_q]
    out_q = np.zeros(len(s), np.int64)
    for k in range(levels + 1):
        if k:
            tree = np.sort(tree.reshape(-1, 1 << k), axis=1, kind="stable").reshape(-1)
        rows = size >> k
        coarse = rows <= 1 << 16
        ss, qq = (s_q, q_q) if coarse else (s, q)
        qm = np.flatnonzero((ss >> k) & 1)
        if len(qm) == 0:
            continue
        row = (ss[qm] >> k) - 1
        if coarse:
            order = np.argsort(row.astype(np.uint16), kind="stable")
            qm, row = qm[order], row[order]
        keys = (tree.reshape(rows, 1 << k)
                + (np.arange(rows, dtype=np.int64) * width)[:, None]).reshape(-1)
        got = np.searchsorted(keys, row * width + qq[qm] + 1, "right") - (row << k)
        if coarse:
            out_q[qm] += got
        else:
            out[qm] += got
    out[by_q] += out_q
    return out


def replay_lru(ids: I64, offsets: I64, chunk_size: I64, seq_len: I64,
               capacities: list[int]) -> list[LruResult]:
    """Replay lookups (lookup i holds ids[offsets[i]:offsets[i+1]], in arrival order)
    through LRU caches of each capacity (in chunks) and an unbounded one (last)."""
    import numpy as np

    n = len(ids)
    lookups = len(offsets) - 1
    tokens = int(seq_len.sum()) if lookups else 0
    lengths = np.diff(offsets)
    start = np.repeat(offsets[:-1], lengths)
    prev = previous_touch(ids)
    # A chunk repeated inside one lookup: its check looks at the touch before the lookup.
    q = prev.copy()
    inside = q >= start
    while inside.any():
        q[inside] = q[q[inside]]
        inside = q >= start
    distinct = np.full(n, np.iinfo(np.int64).max, np.int64)
    # A chunk whose previous touch directly follows the previous chunk's (same lookup) sees
    # the window one position shorter, minus exactly its own key: D_i = D_(i-1) - 1. Only
    # the first chunk of each such run needs the dominance count.
    follows = np.zeros(n, bool)
    if n > 1:
        follows[1:] = (q[1:] == q[:-1] + 1) & (q[:-1] >= 0) & (start[1:] == start[:-1])
    heads = np.flatnonzero((q >= 0) & ~follows)
    if len(heads):
        d_head = count_before(prev, start[heads], q[heads]) - (q[heads] + 1)
        run = np.cumsum((q >= 0) & ~follows) - 1
        members = np.flatnonzero(q >= 0)
        distinct[members] = d_head[run[members]] - (members - heads[run[members]])
    held_ever = q >= 0
    out = []
    for cap in [*capacities, None]:
        held = held_ever if cap is None else held_ever & (distinct < cap)
        hit = int((_prefix_lengths(held, offsets, lengths) * chunk_size).sum()) if n else 0
        out.append(LruResult(cap, hit, tokens, hit / tokens if tokens else None))
    return out


def _prefix_lengths(held: npt.NDArray[np.bool_], offsets: I64, lengths: I64) -> I64:
    """Per lookup: how many leading chunks are held (the first miss ends the prefix)."""
    import numpy as np

    n = len(held)
    pos = np.where(held, n, np.arange(n, dtype=np.int64))
    nonempty = lengths > 0
    first_miss = np.full(len(lengths), n, np.int64)
    if n:
        first_miss[nonempty] = np.minimum.reduceat(pos, offsets[:-1][nonempty])
    end = offsets[1:]
    return np.where(nonempty, np.minimum(first_miss, end) - offsets[:-1], 0)
