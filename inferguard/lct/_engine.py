"""Streaming analytics over a `.lct` scan: key lifecycles, breakdowns, time. Numbers only.

Rows come from the columnar scan (`_trace_scan`) and the key extractor (`_trace_keys`); both
backends feed this same code, so everything past the key rows is identical by construction.
Memory is bounded: per-key state lives in numpy arrays of at most `max_keys` entries. When a
trace has more distinct keys, keys are hash-sampled (a key is tracked while the low `level`
bits of its fingerprint are zero; each overflow raises the level and drops the keys that no
longer qualify, with their whole history), so every per-key number is an unbiased estimate
over a uniform sample of keys; distinct counts then come from HyperLogLog sketches.

Per-key state machines run in file order, one key at a time, inside each piece of key rows
(a stable sort by key id), carrying state across pieces, so results do not depend on where
chunks or pieces end. The public meaning and the result types live in `trace_stats.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from inferguard._native import Backend
from inferguard._native._protocols import ContextMatcher, KeyRows, KeyTable
from inferguard.lct import _frame as tf
from inferguard.lct._keys import KEY_OK, make_key_table
from inferguard.lct._limits import DEFAULT_MAX_KEYS as DEFAULT_MAX_KEYS
from inferguard.lct._mix import fmix64
from inferguard.lct._scan import Chunk

if TYPE_CHECKING:
    from inferguard._native._lct import NativeKeyFold

# -- roles ------------------------------------------------------------------------------------

ROLE_OTHER = 0
ROLE_RESERVE = 1
ROLE_WRITE = 2
ROLE_ABORT = 3
ROLE_LOOKUP = 4
ROLE_ENTER = 5
ROLE_EXIT = 6
ROLE_READ = 7
NROLES = 8
ROLE_METHODS = ("", "reserve_write", "finish_write", "abort_write", "submit_prefetch_task",
                "read_prefetched_results.__enter__", "read_prefetched_results.__exit__",
                "finish_read_prefetched")
_ROLE_BY_METHOD = {m: i for i, m in enumerate(ROLE_METHODS) if m}


def role_of(qualname: str) -> int:
    """The lifecycle role of a StorageManager qualname (ROLE_OTHER for anything else)."""
    _, sep, method = qualname.rpartition("StorageManager.")
    return _ROLE_BY_METHOD.get(method, ROLE_OTHER) if sep else ROLE_OTHER


# -- per-key counters ---------------------------------------------------------------------------

C_RESERVE, C_WRITE, C_LOOKUP, C_READ, C_ENTER = 0, 1, 2, 3, 4
C_READ_STORED, C_LOOKUP_STORED, C_RESERVE_STORED = 5, 6, 7
C_UNSERVED_STORED, C_UNSERVED_COLD = 8, 9
C_UNFINISHED_STORED, C_UNFINISHED_NEW = 10, 11
C_FINISH_NO_RESERVE, C_READ_NO_LOOKUP = 12, 13
NC = 14
# The hot per-key state, one 80-byte row per key: what the C fold touches on every key row
# (lct_keyrow in native/inferguard_api.h, offsets checked by the glue), so a key's row is
# one or two cache lines instead of one line per counter.
COMPACT_ROWS = 1 << 16  # rows moved at a time when the sampling level rises
KEYROW = np.dtype([("pend_lookup", "<i8"), ("pend_reserve", "<i8"), ("cnt", "<u4", (NC,)),
                   ("flags", "u1"), ("survival", "u1"), ("pad", "u1", (6,))])
# (role, written-before) pairs -> counter, for the one-bincount count of every row.
_ROLE_COUNTER = {ROLE_RESERVE: C_RESERVE, ROLE_WRITE: C_WRITE, ROLE_LOOKUP: C_LOOKUP,
                 ROLE_READ: C_READ, ROLE_ENTER: C_ENTER}
_STORED_COUNTER = {ROLE_READ: C_READ_STORED, ROLE_LOOKUP: C_LOOKUP_STORED,
                   ROLE_RESERVE: C_RESERVE_STORED}
F_PEND_LOOKUP_STORED = 1
F_PEND_RESERVE_STORED = 2
F_HAS_BUCKET = 4

EXAMPLES = 20
SORT_BITS = 20  # piece rows < 2**SORT_BITS (KEY_ROWS is 2**18)
NO_BUCKET = np.iinfo(np.int64).min


class Examples:
    """The first `n` distinct byte offsets seen (in offset order).

    Offsets of a sampled key set are kept by the key's survival class (the trailing zero
    bits of its fingerprint: a key stays tracked while the sampling level is at most that),
    the first `n` of each class, so once the level rises the examples are exactly the
    first `n` among the keys still tracked, wherever the pieces happened to end (the counts
    they illustrate are taken over those keys too). Offsets added without fingerprints
    belong to every level."""

    def __init__(self, n: int = EXAMPLES) -> None:
        self.n = n
        self.level = 0
        self._by_class: dict[int, npt.NDArray[np.int64]] = {}

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        parts = [a for t, a in self._by_class.items() if t >= self.level]
        if len(parts) == 1:
            return parts[0]
        return np.unique(np.concatenate(parts))[:self.n] if parts else np.empty(0, np.int64)

    def add(self, offsets: npt.NDArray[np.int64],
            cls: npt.NDArray[np.uint8] | None = None) -> None:
        """Offsets, with the survival class of each one's key (None: every level)."""
        if not len(offsets):
            return
        if cls is None:
            self._merge(_ALWAYS, offsets)
            return
        for t in np.unique(cls).tolist():
            if t >= self.level:
                self._merge(t, offsets[cls == t])

    def merge_class(self, t: int, offsets: npt.NDArray[np.int64]) -> None:
        """Offsets of keys of survival class t (the native fold's examples)."""
        if len(offsets) and t >= self.level:
            self._merge(t, offsets)

    def _merge(self, t: int, offsets: npt.NDArray[np.int64]) -> None:
        have = self._by_class.get(t)
        if have is None:
            self._by_class[t] = _first_distinct(offsets.astype(np.int64), self.n)
        elif len(have) < self.n or int(offsets.min()) < int(have[-1]):
            self._by_class[t] = _first_distinct(
                np.concatenate([have, offsets.astype(np.int64)]), self.n)


def _first_distinct(a: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    """`np.unique(a)[:n]` without sorting all of `a`: the values up to its n-th smallest
    (with repeats) hold the first n distinct ones unless repeats leave fewer than n."""
    if len(a) > 4 * n > 0:
        cand = a[a <= np.partition(a, n - 1)[n - 1]]
        got = np.unique(cand)
        if len(got) >= n:
            return got[:n]
    return np.unique(a)[:n]


_ALWAYS = 65  # the class of offsets that belong to every sampling level


def survival_class(fp: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Trailing zero bits of each fingerprint (64 for 0): the key is tracked while the
    sampling level (keep `fp & (2**level - 1) == 0`) is at most this."""
    low = fp & (~fp + np.uint64(1))  # the lowest set bit (0 for 0)
    out: npt.NDArray[np.uint8] = np.where(low == 0, 64, 63 - _clz64(low)).astype(np.uint8)
    return out


# -- HyperLogLog --------------------------------------------------------------------------------

HLL_P = 14
HLL_M = 1 << HLL_P
HLL_STDERR = 1.04 / math.sqrt(HLL_M)


class HyperLogLog:
    """Distinct-count sketch over 64-bit fingerprints (p = 14: 16 KiB, 0.81% standard error).

    The bucket is the top 14 bits; the rank is 1 + the leading zeros of the other 50."""

    def __init__(self, reg: npt.NDArray[np.uint8] | None = None) -> None:
        self.reg = np.zeros(HLL_M, np.uint8) if reg is None else reg

    def add(self, fp: npt.NDArray[np.uint64]) -> None:
        if not len(fp):
            return
        idx = (fp >> np.uint64(64 - HLL_P)).astype(np.intp)
        w = fp << np.uint64(HLL_P)
        rank = (_clz64(w) + 1).clip(max=64 - HLL_P + 1).astype(np.uint8)
        np.maximum.at(self.reg, idx, rank)

    def merge_keys(self, fp: npt.NDArray[np.uint64]) -> None:
        self.add(fp)

    def estimate(self) -> float:
        m = float(HLL_M)
        alpha = 0.7213 / (1 + 1.079 / m)
        e = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.reg.astype(np.int32))))
        zeros = int(np.count_nonzero(self.reg == 0))
        if e <= 2.5 * m and zeros:
            e = m * math.log(m / zeros)
        return e


def _clz64(w: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Leading zeros of each uint64 (64 for 0), exactly."""
    out = np.full(len(w), 64, np.int64)
    nz = w != 0
    x = w[nz]
    # float64 gives the top bit up to rounding; correct the rare round-up by one.
    _, e = np.frexp(x.astype(np.float64))
    top = np.minimum(e.astype(np.int64) - 1, 63)
    over = (x >> top.astype(np.uint64)) == 0
    top[over] -= 1
    out[nz] = 63 - top
    return out


# -- classes (model, salt, kv_rank, group) ----------------------------------------------------

MAX_CLASSES = 1 << 16
MAX_VALUES = (1 << 16) - 1  # distinct kv_rank / object_group_id values tracked


class Classes:
    """Dense ids for (model id, salt id, kv_rank, object_group_id); capped, then "other"."""

    def __init__(self) -> None:
        self.rank_ids: dict[int, int] = {}
        self.ranks: list[int] = []
        self.group_ids: dict[int, int] = {}
        self.groups: list[int] = []
        self.ids: dict[int, int] = {}
        self.tuples: list[tuple[int, int, int, int]] = []  # (model, salt, rank idx, group idx)
        self.other = False

    @staticmethod
    def _small(values: npt.NDArray[np.int64], ids: dict[int, int], out: list[int]
               ) -> npt.NDArray[np.int64]:
        u, _ = _unique_inverse(values)
        mapped = np.empty(len(u), np.int64)
        for j, v in enumerate(u.tolist()):
            i = ids.get(v)
            if i is None:
                if len(out) >= MAX_VALUES:
                    i = MAX_VALUES
                else:
                    i = ids[v] = len(out)
                    out.append(v)
            mapped[j] = i
        return mapped[np.searchsorted(u, values)]

    def assign(self, k: KeyRows, ok: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
        """Class id per row (-1 for malformed rows)."""
        out = np.full(len(k), -1, np.int32)
        sel = np.flatnonzero(ok)
        if not len(sel):
            return out
        m, s, kr, gr = k.model[sel], k.salt[sel], k.kv_rank[sel], k.group[sel]
        # Consecutive keys nearly always share all four: map only where one changes.
        chg = np.empty(len(sel), np.bool_)
        chg[0] = True
        chg[1:] = (m[1:] != m[:-1]) | (s[1:] != s[:-1]) | (kr[1:] != kr[:-1]) | (
            gr[1:] != gr[:-1])
        runs = np.flatnonzero(chg)
        r = self._small(kr[runs], self.rank_ids, self.ranks)
        g = self._small(gr[runs], self.group_ids, self.groups)
        code = ((((m[runs].astype(np.int64) + 2) << 14) | (s[runs].astype(np.int64) + 2))
                << 32) | (r << 16) | g
        u, inv = _unique_inverse(code)
        cls = np.empty(len(u), np.int32)
        for j, c in enumerate(u.tolist()):
            i = self.ids.get(c)
            if i is None:
                if len(self.tuples) >= MAX_CLASSES:
                    i = MAX_CLASSES
                    self.other = True
                else:
                    i = self.ids[c] = len(self.tuples)
                    self.tuples.append((((c >> 46) & 0x3FFF) - 2, ((c >> 32) & 0x3FFF) - 2,
                                        (c >> 16) & 0xFFFF, c & 0xFFFF))
            cls[j] = i
        out[sel] = np.repeat(cls[inv], np.diff(np.append(runs, len(sel))))
        return out

    @property
    def size(self) -> int:
        return len(self.tuples) + (1 if self.other else 0)


def _unique_inverse(a: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64],
                                                          npt.NDArray[np.intp]]:
    s = np.sort(a)
    keep = np.empty(len(s), np.bool_)
    if len(s):
        keep[0] = True
        np.not_equal(s[1:], s[:-1], out=keep[1:])
    u = s[keep]
    return u, np.searchsorted(u, a)


# -- per-key state ------------------------------------------------------------------------------


class Keys:
    """Per-key arrays (counters, pending lookup/reserve, class, first bucket) and the table.

    Every array is allocated once for `max_keys` with zeros: the pages are only committed as
    keys arrive, so memory follows the number of distinct keys, never more than the limit,
    with no copy when the table fills. Pending offsets are stored plus one (0: none)."""

    def __init__(self, backend: Backend, max_keys: int) -> None:
        if max_keys < 1 or max_keys > (1 << 30):
            raise ValueError("max_keys must be between 1 and 2**30")
        self.max_keys = max_keys
        self.table: KeyTable = make_key_table(backend, max_keys)
        self.level = 0
        self.state = np.zeros(max_keys, KEYROW)  # the fields below are views of it
        self.cnt: npt.NDArray[np.uint32] = self.state["cnt"]  # (max_keys, NC)
        self.pend_lookup: npt.NDArray[np.int64] = self.state["pend_lookup"]
        self.pend_reserve: npt.NDArray[np.int64] = self.state["pend_reserve"]
        self.flags: npt.NDArray[np.uint8] = self.state["flags"]
        self.survival: npt.NDArray[np.uint8] = self.state["survival"]  # survival_class
        self.cls = np.zeros(max_keys, np.int32)
        self.first_bucket = np.zeros(max_keys, np.int64)  # valid where F_HAS_BUCKET
        self.hll: list[HyperLogLog] | None = None  # all, written, looked up, read, reserved
        self.hll_reg: npt.NDArray[np.uint8] | None = None  # their registers, one array
        # The native backend folds pieces in C (lct_fold.c) over these same arrays; this
        # numpy code is its twin (and the python backend's fold).
        self.native: NativeKeyFold | None = None
        if backend == "native":
            from inferguard._native._lct import NativeKeyFold
            self.native = NativeKeyFold(self.state, self.cls, self.first_bucket)
        self.examples = {name: Examples() for name in (
            "unserved_stored", "unserved_cold", "unfinished_stored", "unfinished_new",
            "finish_no_reserve", "read_no_lookup", "read_unstored")}

    @property
    def count(self) -> int:
        return self.table.count

    def counters(self) -> npt.NDArray[np.uint32]:
        """(tracked keys, NC) view of the per-key counters."""
        view: npt.NDArray[np.uint32] = self.cnt[:self.count]
        return view

    def first_buckets(self) -> npt.NDArray[np.int64]:
        """The first timeline bucket (base width) of each tracked key that has one."""
        n = self.count
        fb: npt.NDArray[np.int64] = self.first_bucket[:n][(self.flags[:n] & F_HAS_BUCKET) != 0]
        return fb

    @property
    def sample_rate(self) -> float:
        return 1.0 / (1 << self.level)

    def _mask(self) -> np.uint64:
        return np.uint64((1 << self.level) - 1)

    def _raise_level(self) -> npt.NDArray[np.bool_]:
        """Track half as many keys: drop those whose next fingerprint bit is set."""
        n = self.count
        fps = self.table.fingerprints()
        if self.hll is None:  # exactness ends here: sketch every key seen so far
            self.hll_reg = np.zeros((5, HLL_M), np.uint8)
            self.hll = [HyperLogLog(self.hll_reg[i]) for i in range(5)]
            c = self.counters()
            for h, sel in zip(self.hll, (None, c[:, C_WRITE] > 0, c[:, C_LOOKUP] > 0,
                                         (c[:, C_READ] > 0) | (c[:, C_ENTER] > 0),
                                         c[:, C_RESERVE] > 0), strict=True):
                part = fps if sel is None else fps[sel]
                if self.native is not None:
                    self.native.hll_add(h.reg, part)
                else:
                    h.add(part)
        self.level += 1
        for ex in self.examples.values():
            ex.level = self.level
        keep: npt.NDArray[np.bool_] = (fps & self._mask()) == 0
        idx = np.flatnonzero(keep)
        k = len(idx)
        # Compact in place, a block of rows at a time (no copy of the whole state): the
        # kept ids are increasing (idx[j] >= j), so a block never reads a row that an
        # earlier block overwrote.
        step = COMPACT_ROWS
        rows = self.state.view(np.int64).reshape(self.max_keys, -1)  # plain rows: fast takes
        for a in (rows, self.cls, self.first_bucket):
            for i in range(0, k, step):
                j = idx[i:i + step]
                a[i:i + len(j)] = a.take(j, axis=0)
            a[k:n] = 0
        self.table.rebuild(fps[idx], self.max_keys)
        return keep

    def intern(self, k: KeyRows, ok: npt.NDArray[np.bool_], survival: bool = True
               ) -> tuple[npt.NDArray[np.int32], int]:
        """Ids per row (negative: not tracked) and how many keys existed before this piece
        (ids at or above it are new); sets the new keys' survival classes unless told not
        to (the native fold does it)."""
        before = self.count
        while True:
            use = ok & ((k.fp & self._mask()) == 0) if self.level else ok
            ids, full = self.table.intern(k.fp, use)
            if not full:
                if not survival:
                    return ids, before
                new = ids >= before
                if new.any():
                    self.survival[ids[new]] = survival_class(k.fp[new])
                return ids, before
            before = int(np.count_nonzero(self._raise_level()[:before]))

    def sketch(self, fp: npt.NDArray[np.uint64], role: npt.NDArray[np.uint8]) -> None:
        if self.hll is None:
            return
        self.hll[0].add(fp)
        self.hll[1].add(fp[role == ROLE_WRITE])
        self.hll[2].add(fp[role == ROLE_LOOKUP])
        self.hll[3].add(fp[(role == ROLE_READ) | (role == ROLE_ENTER)])
        self.hll[4].add(fp[role == ROLE_RESERVE])

    # -- the state machines ----------------------------------------------------------------

    def fold(self, ids: npt.NDArray[np.int64], role: npt.NDArray[np.uint8],
             off: npt.NDArray[np.int64]) -> None:
        """Apply rows (tracked keys only, file order) to the per-key state."""
        n = len(ids)
        if n == 0:
            return
        key = np.sort((ids << SORT_BITS) | np.arange(n, dtype=np.int64))
        perm = key & ((1 << SORT_BITS) - 1)
        sid = key >> SORT_BITS
        r = role[perm]
        o = off[perm]
        start = np.empty(n, np.bool_)
        start[0] = True
        np.not_equal(sid[1:], sid[:-1], out=start[1:])
        starts = np.flatnonzero(start)
        seg = np.cumsum(start) - 1
        u = sid[starts]
        cnt = self.cnt
        # Written (finish_write) strictly before each row, this piece or earlier.
        is_w = (r == ROLE_WRITE).astype(np.int64)
        cs = np.cumsum(is_w)
        before = cs - is_w - (cs[starts] - is_w[starts])[seg]
        wb = (before > 0) | (cnt[u, C_WRITE] > 0)[seg]
        # Every row counted once: per key, per (role, written-before).
        per = np.bincount(seg * (2 * NROLES) + r.astype(np.int64) * 2 + wb,
                          minlength=len(u) * 2 * NROLES).reshape(len(u), NROLES, 2)
        for ro, c in _ROLE_COUNTER.items():
            cnt[u, c] += per[:, ro, :].sum(axis=1).astype(np.uint32)
        for ro, c in _STORED_COUNTER.items():
            cnt[u, c] += per[:, ro, 1].astype(np.uint32)
        unstored_reads = (r == ROLE_READ) & ~wb
        if unstored_reads.any():
            self.examples["read_unstored"].add(o[unstored_reads],
                                               self.survival[sid[unstored_reads]])
        self._lookups(sid, r, o, wb)
        self._reserves(sid, r, o, wb)

    def _lookups(self, sid: npt.NDArray[np.int64], r: npt.NDArray[np.uint8],
                 o: npt.NDArray[np.int64], wb: npt.NDArray[np.bool_]) -> None:
        """A lookup is served by the next finish_read_prefetched of its key, unless another
        lookup of that key comes first; a read with no lookup before it counts apart."""
        e = np.flatnonzero((r == ROLE_LOOKUP) | (r == ROLE_READ))
        if not len(e):
            return
        se, re_, oe, we = sid[e], r[e], o[e], wb[e]
        nxt = np.zeros(len(e), np.bool_)
        np.equal(se[1:], se[:-1], out=nxt[:-1])
        prv = np.zeros(len(e), np.bool_)
        prv[1:] = nxt[:-1]
        is_l = re_ == ROLE_LOOKUP
        nxt_l = np.zeros(len(e), np.bool_)
        nxt_l[:-1] = is_l[1:]
        prv_l = np.zeros(len(e), np.bool_)
        prv_l[1:] = is_l[:-1]
        pend = self.pend_lookup[se] - 1
        pend_st = (self.flags[se] & F_PEND_LOOKUP_STORED) != 0
        carried = ~prv & (pend >= 0)
        now = is_l & nxt & nxt_l                 # superseded by the key's next lookup
        old = carried & is_l                     # the carried pending lookup, superseded
        self._bump(C_UNSERVED_STORED, se[now & we], oe[now & we], "unserved_stored")
        self._bump(C_UNSERVED_COLD, se[now & ~we], oe[now & ~we], "unserved_cold")
        self._bump(C_UNSERVED_STORED, se[old & pend_st], pend[old & pend_st], "unserved_stored")
        self._bump(C_UNSERVED_COLD, se[old & ~pend_st], pend[old & ~pend_st], "unserved_cold")
        serves = ~is_l & ((prv & prv_l) | carried)
        lone = ~is_l & ~serves
        self._bump(C_READ_NO_LOOKUP, se[lone], oe[lone], "read_no_lookup")
        last = ~nxt
        ks, kl = se[last], is_l[last]
        self.pend_lookup[ks] = np.where(kl, oe[last] + 1, 0)
        st = np.where(kl & we[last], F_PEND_LOOKUP_STORED, 0).astype(np.uint8)
        self.flags[ks] = (self.flags[ks] & ~np.uint8(F_PEND_LOOKUP_STORED)) | st

    def _reserves(self, sid: npt.NDArray[np.int64], r: npt.NDArray[np.uint8],
                  o: npt.NDArray[np.int64], wb: npt.NDArray[np.bool_]) -> None:
        """A reserve_write is finished by the key's next finish_write or abort_write, unless
        another reserve of that key comes first; a finish with no reserve counts apart."""
        e = np.flatnonzero((r == ROLE_RESERVE) | (r == ROLE_WRITE) | (r == ROLE_ABORT))
        if not len(e):
            return
        se, re_, oe, we = sid[e], r[e], o[e], wb[e]
        nxt = np.zeros(len(e), np.bool_)
        np.equal(se[1:], se[:-1], out=nxt[:-1])
        prv = np.zeros(len(e), np.bool_)
        prv[1:] = nxt[:-1]
        is_v = re_ == ROLE_RESERVE
        nxt_v = np.zeros(len(e), np.bool_)
        nxt_v[:-1] = is_v[1:]
        prv_v = np.zeros(len(e), np.bool_)
        prv_v[1:] = is_v[:-1]
        pend = self.pend_reserve[se] - 1
        pend_st = (self.flags[se] & F_PEND_RESERVE_STORED) != 0
        carried = ~prv & (pend >= 0)
        now = is_v & nxt & nxt_v
        old = carried & is_v
        self._bump(C_UNFINISHED_STORED, se[now & we], oe[now & we], "unfinished_stored")
        self._bump(C_UNFINISHED_NEW, se[now & ~we], oe[now & ~we], "unfinished_new")
        self._bump(C_UNFINISHED_STORED, se[old & pend_st], pend[old & pend_st],
                   "unfinished_stored")
        self._bump(C_UNFINISHED_NEW, se[old & ~pend_st], pend[old & ~pend_st], "unfinished_new")
        lone = (re_ == ROLE_WRITE) & ~((prv & prv_v) | carried)
        self._bump(C_FINISH_NO_RESERVE, se[lone], oe[lone], "finish_no_reserve")
        last = ~nxt
        ks, kv = se[last], is_v[last]
        self.pend_reserve[ks] = np.where(kv, oe[last] + 1, 0)
        st = np.where(kv & we[last], F_PEND_RESERVE_STORED, 0).astype(np.uint8)
        self.flags[ks] = (self.flags[ks] & ~np.uint8(F_PEND_RESERVE_STORED)) | st

    def _bump(self, c: int, ids: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64],
              example: str, distinct: bool = False) -> None:
        if len(ids):
            if distinct:  # each key once (the end of trace): a plain += needs no ufunc.at
                col = self.cnt[:, c]
                col[ids] += np.uint32(1)
            else:
                np.add.at(self.cnt[:, c], ids, np.uint32(1))  # same dtype: the fast path
            self.examples[example].add(offsets, self.survival[ids])

    def finish(self) -> None:
        """End of trace: pending lookups were never read, pending reserves never finished."""
        if self.native is not None:  # the C fold's examples, same kinds in the same order
            for kept, by_class in zip(self.examples.values(), self.native.examples(),
                                      strict=True):
                for t, offs in enumerate(by_class):
                    kept.merge_class(t, offs)
        n = self.count
        pl = self.pend_lookup[:n] - 1
        st = (self.flags[:n] & F_PEND_LOOKUP_STORED) != 0
        ids = np.arange(n, dtype=np.int64)
        for mask, c, ex in ((pl >= 0) & st, C_UNSERVED_STORED, "unserved_stored"), (
                (pl >= 0) & ~st, C_UNSERVED_COLD, "unserved_cold"):
            self._bump(c, ids[mask], pl[mask], ex, distinct=True)
        pr = self.pend_reserve[:n] - 1
        st = (self.flags[:n] & F_PEND_RESERVE_STORED) != 0
        for mask, c, ex in ((pr >= 0) & st, C_UNFINISHED_STORED, "unfinished_stored"), (
                (pr >= 0) & ~st, C_UNFINISHED_NEW, "unfinished_new"):
            self._bump(c, ids[mask], pr[mask], ex, distinct=True)
        self.pend_lookup[:n] = 0
        self.pend_reserve[:n] = 0


# -- time ------------------------------------------------------------------------------------

TL_RECORDS, TL_BYTES, TL_KEY_ROWS = 0, 1, 2
TL_ROLE0 = 3  # + role: records per role
TL_COLS = TL_ROLE0 + NROLES
MAX_BUCKETS = 1 << 17
_MAX_INDEX = float(1 << 52)


class Timeline:
    """Fixed-width buckets from the first record's time; coarsened by doubling if needed.

    The bucket of time t is floor((t - origin) / bucket_s) >> shift, with origin the first
    finite t_mono in file order floored to a multiple of bucket_s, so coarsening is exact."""

    def __init__(self, bucket_s: float, max_buckets: int = MAX_BUCKETS,
                 ncols: int = TL_COLS) -> None:
        if not (bucket_s > 0 and math.isfinite(bucket_s)):
            raise ValueError("bucket_s must be a positive number of seconds")
        self.ncols = ncols
        self.base = bucket_s
        self.max_buckets = max_buckets
        self.origin: float | None = None
        self.shift = 0
        self.lo = 0
        self.data = np.zeros((0, ncols), np.int64)
        self.out_of_range = 0

    def base_index(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Bucket index at the base width (NO_BUCKET where t is not usable)."""
        out = np.full(len(t), NO_BUCKET, np.int64)
        fin = np.isfinite(t)
        if self.origin is None:
            if not fin.any():
                return out
            t0 = float(t[np.argmax(fin)])
            self.origin = math.floor(t0 / self.base) * self.base
        x = (t[fin] - self.origin) / self.base
        good = np.abs(x) < _MAX_INDEX
        self.out_of_range += int(np.count_nonzero(~good))
        idx = np.full(len(x), NO_BUCKET, np.int64)
        idx[good] = np.floor(x[good]).astype(np.int64)
        out[fin] = idx
        return out

    def add(self, base_idx: npt.NDArray[np.int64], cols: list[tuple[int, Any]]) -> None:
        """Add weights per row: cols = [(column, weights or 1)]."""
        ok = base_idx != NO_BUCKET
        if not ok.any():
            return
        b = base_idx[ok] >> self.shift
        lo, hi = int(b.min()), int(b.max())
        if len(self.data):
            lo, hi = min(lo, self.lo), max(hi, self.lo + len(self.data) - 1)
        while hi - lo + 1 > self.max_buckets:
            self._coarsen()
            b = base_idx[ok] >> self.shift
            lo, hi = int(b.min()), int(b.max())
            if len(self.data):
                lo, hi = min(lo, self.lo), max(hi, self.lo + len(self.data) - 1)
        if not len(self.data):
            self.data = np.zeros((hi - lo + 1, self.ncols), np.int64)
            self.lo = lo
        elif lo < self.lo or hi >= self.lo + len(self.data):
            grown = np.zeros((hi - lo + 1, self.ncols), np.int64)
            grown[self.lo - lo:self.lo - lo + len(self.data)] = self.data
            self.data, self.lo = grown, lo
        rel = b - self.lo
        size = len(self.data)
        for col, w in cols:
            wt = None if isinstance(w, int) else np.asarray(w)[ok]
            self.data[:, col] += np.bincount(rel, weights=wt, minlength=size).astype(np.int64)

    def add_records(self, base_idx: npt.NDArray[np.int64], length: npt.NDArray[np.uint32],
                    role: npt.NDArray[np.uint8], nkeys: npt.NDArray[np.int32]) -> None:
        """Records, bytes (frame length + 4), records per role and key rows per bucket
        (one sizing and one bucket index for the four columns)."""
        ok = base_idx != NO_BUCKET
        if not ok.any():
            return
        every = bool(ok.all())
        bi = base_idx if every else base_idx[ok]
        self.add(bi, [])  # sizes the buckets
        rel = (bi >> self.shift) - self.lo
        size = len(self.data)
        d = self.data
        d[:, TL_RECORDS] += np.bincount(rel, minlength=size)
        ln = length if every else length[ok]
        d[:, TL_BYTES] += np.bincount(rel, weights=ln.astype(np.float64) + 4,
                                      minlength=size).astype(np.int64)
        nk = nkeys if every else nkeys[ok]
        d[:, TL_KEY_ROWS] += np.bincount(rel, weights=nk.astype(np.float64),
                                         minlength=size).astype(np.int64)
        r = role if every else role[ok]
        d[:, TL_ROLE0:TL_ROLE0 + NROLES] += np.bincount(
            rel * NROLES + r, minlength=size * NROLES).reshape(size, NROLES)

    def add_codes(self, base_idx: npt.NDArray[np.int64], codes: npt.NDArray[np.int64],
                  weights: npt.NDArray[Any] | None = None) -> None:
        """Add 1 (or weights[i]) to (bucket of base_idx[i], column codes[i])."""
        ok = base_idx != NO_BUCKET
        if not ok.any():
            return
        self.add(base_idx[ok], [])  # sizes the buckets
        rel = (base_idx[ok] >> self.shift) - self.lo
        size = len(self.data)
        flat = np.bincount(rel * self.ncols + codes[ok],
                           weights=None if weights is None else weights[ok],
                           minlength=size * self.ncols)
        self.data += flat.reshape(size, self.ncols).astype(np.int64)

    def add_cells(self, base_idx: npt.NDArray[np.int64], col: npt.NDArray[np.int64],
                  weights: npt.NDArray[np.int64]) -> None:
        """Add weights[i] to (bucket of base_idx[i], column col[i])."""
        if not len(base_idx):
            return
        self.add(base_idx, [])  # sizes the buckets
        rel = (base_idx >> self.shift) - self.lo
        np.add.at(self.data, (rel, col), weights)

    def _coarsen(self) -> None:
        self.shift += 1
        if not len(self.data):
            return
        old = np.arange(self.lo, self.lo + len(self.data)) >> 1
        lo = int(old[0])
        merged = np.zeros((int(old[-1]) - lo + 1, self.ncols), np.int64)
        np.add.at(merged, old - lo, self.data)
        self.data, self.lo = merged, lo

    @property
    def width(self) -> float:
        return self.base * (1 << self.shift)


class Gaps:
    """The largest idle gaps between consecutive records (file order), and a count."""

    def __init__(self, threshold_s: float, top: int = 10) -> None:
        self.threshold = threshold_s
        self.top = top
        self.last_t = math.nan
        self.last_off = -1
        self.gap = np.empty(0, np.float64)
        self.t0 = np.empty(0, np.float64)
        self.off = np.empty(0, np.int64)
        self.over = 0
        self.idle = 0.0

    def add(self, t: npt.NDArray[np.float64], off: npt.NDArray[np.int64]) -> None:
        fin = np.isfinite(t)
        t, off = t[fin], off[fin]
        if not len(t):
            return
        tt = np.concatenate([[self.last_t], t]) if math.isfinite(self.last_t) else t
        d = np.diff(tt)
        after = off if math.isfinite(self.last_t) else off[1:]
        before_t = tt[:-1]
        self.last_t, self.last_off = float(t[-1]), int(off[-1])
        big = d >= self.threshold
        self.over += int(np.count_nonzero(big))
        self.idle += float(d[big].sum())
        if not len(d):
            return
        if len(d) > self.top:  # only the largest can matter (ties at the cut are all kept)
            cut = np.partition(d, len(d) - self.top)[len(d) - self.top]
            keep = d >= cut
            d, before_t, after = d[keep], before_t[keep], after[keep]
        gap = np.concatenate([self.gap, d])
        t0 = np.concatenate([self.t0, before_t])
        o = np.concatenate([self.off, after])
        order = np.lexsort((o, -gap))[:self.top]
        self.gap, self.t0, self.off = gap[order], t0[order], o[order]


# -- enter / exit ----------------------------------------------------------------------------

MAX_OPEN_CONTEXTS = 1 << 16  # ~150 bytes each in Python objects
_K_SET = np.uint64(0x3C6EF372FE94F82B)


class Contexts:
    """read_prefetched_results contexts matched per record: an __exit__ closes the most
    recent open __enter__ with the same key multiset (as a `with` block would); the
    matching runs in C on the native backend (lct_fold.c), else in PythonContextMatcher."""

    def __init__(self, backend: Backend = "python") -> None:
        self.matcher: ContextMatcher
        if backend == "native":
            from inferguard._native._lct import NativeContextMatcher
            self.matcher = NativeContextMatcher()
        else:
            self.matcher = PythonContextMatcher()
        self.exit_examples = Examples()

    @property
    def untracked(self) -> int:
        return self.matcher.untracked

    @property
    def exit_alone(self) -> int:
        return self.matcher.exit_alone

    def add(self, keysets: npt.NDArray[np.uint64], is_enter: npt.NDArray[np.bool_],
            off: npt.NDArray[np.int64], t: npt.NDArray[np.float64]) -> None:
        alone = self.matcher.match(keysets, is_enter, off, t)
        if len(alone):
            self.exit_examples.add(alone)

    def leaked(self, n: int) -> tuple[int, list[tuple[int, float]]]:
        """How many contexts are still open, and the first `n` of them by (offset, t_mono)
        (up to 2**16 are open: sorted as columns, not as Python tuples)."""
        off, t = self.matcher.open_contexts()
        first = np.lexsort((t, off))[:n]
        return len(off), list(zip(off[first].tolist(), t[first].tolist(), strict=True))


class PythonContextMatcher:
    """The pure-Python `ContextMatcher` (twin of lct_ctx in native/lct_fold.c)."""

    def __init__(self) -> None:
        self.open: dict[int, list[tuple[int, float]]] = {}
        self.n_open = 0
        self.untracked = 0
        self.exit_alone = 0

    def match(self, keysets: npt.NDArray[np.uint64], is_enter: npt.NDArray[np.bool_],
              off: npt.NDArray[np.int64], t: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        opened = self.open
        alone: list[int] = []
        for ks, ent, o, tm in zip(keysets.tolist(), is_enter.tolist(), off.tolist(),
                                  t.tolist(), strict=True):
            if ent:
                if self.n_open >= MAX_OPEN_CONTEXTS:
                    self.untracked += 1
                    continue
                opened.setdefault(ks, []).append((o, tm))
                self.n_open += 1
            else:
                stack = opened.get(ks)
                if stack:
                    stack.pop()
                    self.n_open -= 1
                    if not stack:
                        del opened[ks]
                else:
                    self.exit_alone += 1
                    alone.append(o)
        return np.array(alone, np.int64)

    def open_contexts(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        pairs = [x for stack in self.open.values() for x in stack]
        return (np.array([o for o, _ in pairs], np.int64),
                np.array([t for _, t in pairs], np.float64))


# -- the engine ------------------------------------------------------------------------------


@dataclass
class OpRows:
    """Exact per-op key-row counts, grown as op ids appear (index: op id; specials apart)."""

    key_rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    malformed: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    first_t: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    last_t: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    first_off: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def grow(self, n: int) -> None:
        if n > len(self.key_rows):
            pad = n - len(self.key_rows)
            self.key_rows = np.concatenate([self.key_rows, np.zeros(pad, np.int64)])
            self.malformed = np.concatenate([self.malformed, np.zeros(pad, np.int64)])
            self.first_t = np.concatenate([self.first_t, np.full(pad, np.nan)])
            self.last_t = np.concatenate([self.last_t, np.full(pad, np.nan)])
            self.first_off = np.concatenate([self.first_off, np.full(pad, -1, np.int64)])


class Engine:
    """Feed chunks (with their key rows) in file order; read the fields at the end."""

    def __init__(self, backend: Backend, *, max_keys: int = DEFAULT_MAX_KEYS,
                 bucket_s: float = 1.0, idle_gap_s: float = 1.0) -> None:
        self.keys = Keys(backend, max_keys)
        self.classes = Classes()
        self.timeline = Timeline(bucket_s)
        self.gaps = Gaps(idle_gap_s)
        self.contexts = Contexts(backend)
        self.ops = OpRows()
        self.special_rows: dict[int, list[int]] = {}  # status -> [key rows, malformed]
        self.role_of_op = np.array([ROLE_OTHER], np.uint8)  # last entry: "no op id"
        self._names: list[str] = []
        self.key_rows = 0
        self.malformed_keys = 0
        self.class_roles = np.zeros((0, NROLES), np.int64)
        self.last_tb = np.zeros(0, np.int64)

    def _roles(self, names: list[str]) -> npt.NDArray[np.uint8]:
        if len(names) != len(self._names):
            self._names = list(names)
            self.role_of_op = np.array([role_of(n) for n in names] + [ROLE_OTHER], np.uint8)
        return self.role_of_op

    def add(self, chunk: Chunk, op_names: list[str], pieces: Iterable[KeyRows]) -> None:
        """One scan chunk (file order) and its key rows, in pieces."""
        roles = self._roles(op_names)
        rec = chunk.status != tf.ROW_MALFORMED
        op = chunk.op
        rrole = roles[np.where(op >= 0, op, len(roles) - 1)]
        rrole[~rec] = ROLE_OTHER
        tb = self.timeline.base_index(np.where(rec, chunk.t_mono, np.nan))
        self.last_tb = tb
        tl = self.timeline
        tl.add_records(tb, chunk.length, rrole, chunk.nkeys)
        self.gaps.add(chunk.t_mono[rec], chunk.offset[rec])
        self._op_times(chunk, rec)
        ctx_rows = np.flatnonzero(rec & ((rrole == ROLE_ENTER) | (rrole == ROLE_EXIT)))
        keysets = np.zeros(len(chunk.offset), np.uint64) if len(ctx_rows) else None
        for k in pieces:
            self._piece(chunk, k, rrole, tb, keysets)
        if keysets is not None:
            self.contexts.add(keysets[ctx_rows], rrole[ctx_rows] == ROLE_ENTER,
                              chunk.offset[ctx_rows], chunk.t_mono[ctx_rows])

    def _op_times(self, chunk: Chunk, rec: npt.NDArray[np.bool_]) -> None:
        """Per op: key rows (nkeys), first offset, first and last t_mono."""
        named = rec & (chunk.op >= 0)
        if not named.all():
            for st in (tf.ROW_OP_TABLE_FULL, tf.ROW_QUALNAME_LONG):
                m = rec & (chunk.status == st)
                if m.any():
                    self.special_rows.setdefault(st, [0, 0])[0] += int(chunk.nkeys[m].sum())
        if not named.any():
            return
        ids = chunk.op[named]
        size = int(ids.max()) + 1
        o = self.ops
        o.grow(size)
        o.key_rows[:size] += np.bincount(ids, weights=chunk.nkeys[named], minlength=size
                                         ).astype(np.int64)
        big = np.iinfo(np.int64).max
        fo = np.full(size, big, np.int64)
        np.minimum.at(fo, ids, chunk.offset[named])
        seen = fo != big
        o.first_off[:size] = np.where((o.first_off[:size] < 0) & seen, fo, o.first_off[:size])
        t = chunk.t_mono[named]
        fin = np.isfinite(t)
        if fin.any():
            first = np.full(size, np.inf)
            np.minimum.at(first, ids[fin], t[fin])
            last = np.full(size, -np.inf)
            np.maximum.at(last, ids[fin], t[fin])
            o.first_t[:size] = np.fmin(o.first_t[:size], np.where(np.isinf(first), np.nan, first))
            o.last_t[:size] = np.fmax(o.last_t[:size], np.where(np.isinf(last), np.nan, last))

    def _piece(self, chunk: Chunk, k: KeyRows, rrole: npt.NDArray[np.uint8],
               tb: npt.NDArray[np.int64], keysets: npt.NDArray[np.uint64] | None) -> None:
        n = len(k)
        if n == 0:
            return
        self.key_rows += n
        ok = k.status == KEY_OK
        nbad = n - int(np.count_nonzero(ok))
        self.malformed_keys += nbad
        row = k.row
        all_ok = nbad == 0
        if not all_ok:  # malformed key rows per op (key rows per op come from nkeys)
            bad_rows = row[~ok]
            bad_op = chunk.op[bad_rows]
            named = bad_op >= 0
            if named.any():
                size = int(bad_op[named].max()) + 1
                self.ops.grow(size)
                self.ops.malformed[:size] += np.bincount(bad_op[named], minlength=size)
            for s in chunk.status[bad_rows[~named]].tolist():
                self.special_rows.setdefault(int(s), [0, 0])[1] += 1
        # classes: exact rows per (class, role)
        cls = self.classes.assign(k, ok)
        size = self.classes.size
        if size > len(self.class_roles):
            self.class_roles = np.concatenate([self.class_roles, np.zeros(
                (size - len(self.class_roles), NROLES), np.int64)])
        keys = self.keys
        if keys.native is not None:  # the rest of this method, in C (lct_fold.c)
            ids, before = keys.intern(k, ok, survival=False)
            keys.native.fold(k, ids, cls, before, keys.count, keys.level, rrole,
                             chunk.offset, tb, keysets, self.class_roles, keys.hll_reg)
            return
        role = rrole[row]
        off = chunk.offset[row]
        kb = tb[row]
        if keysets is not None:
            cm = (role == ROLE_ENTER) | (role == ROLE_EXIT)
            if cm.any():
                np.add.at(keysets, row[cm], fmix64(k.fp[cm] ^ _K_SET))
        code = cls.astype(np.int64) * NROLES + role
        self.class_roles[:size] += np.bincount(code if all_ok else code[ok],
                                               minlength=size * NROLES).reshape(size, NROLES)
        # per-key state
        ids, before = keys.intern(k, ok)
        if keys.hll is not None:
            keys.sketch(k.fp[ok], role[ok])
        tracked = ids >= 0
        if bool(tracked.all()):
            tid = ids.astype(np.int64)
            trole, toff, rows_t = role, off, None
        else:
            tid = ids[tracked].astype(np.int64)
            if not len(tid):
                return
            trole, toff, rows_t = role[tracked], off[tracked], np.flatnonzero(tracked)
        if keys.count > before:
            new = tid >= before
            nid = tid[new]
            rows_new = np.flatnonzero(new) if rows_t is None else rows_t[new]
            first = np.full(keys.count - before, np.iinfo(np.int64).max)
            np.minimum.at(first, nid - before, rows_new)
            have = first != np.iinfo(np.int64).max
            ids_new = np.flatnonzero(have) + before
            keys.cls[ids_new] = cls[first[have]]
            b = kb[first[have]]
            keys.first_bucket[ids_new] = b
            keys.flags[ids_new] |= np.where(b != NO_BUCKET, F_HAS_BUCKET, 0).astype(np.uint8)
        # __exit__ and other ops change no per-key state: leave them out of the fold.
        useful = (trole != ROLE_EXIT) & (trole != ROLE_OTHER)
        if not useful.all():
            tid, trole, toff = tid[useful], trole[useful], toff[useful]
        keys.fold(tid, trole, toff)

    def finish(self) -> None:
        self.keys.finish()
