"""Events-level (`--trace-level events`) analytics: coordinator cache events over time.

Each `events.batch` record carries one CacheEventBatch (event_type store/access/delete/config,
tier l1/l2, backend, entries with a JSON key); `events.lifecycle` marks start/stop of an
instance. This module folds them, in file order, into: entries and bytes per
(event_type, tier, backend) and over time (the shared timeline), L1 -> L2 flow (keys stored on
L1 then on L2, with the delay), lifetimes from store to delete per tier, and restarts.

Keys are fingerprinted like ObjectKeys (`_trace_keys`), from the key's `chunk_hash_hex`
(hex decoded), model, kv_rank, group and salt. Per-key maps are bounded like the storage
analytics: exact up to `max_keys` keys, then a uniform hash sample of keys (per-key numbers
scaled, with their standard errors). On the native backend `events.batch` records are decoded
in C (`native/lct_events.c`) where their args read unambiguously, and with msgspec otherwise;
the per-key part of the fold runs in C (`native/lct_evfold.c`), and runs of C-decoded rows
are folded as groups (`_run`) with the result row-by-row folding gives. The Python loops of
`_fold` are the pure-Python backend, the twin and the oracle: results are identical.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from inferguard._native import Backend
from inferguard._native._lct import NativeEventsDecoder, NativeEventsFold
from inferguard.lct import _engine as ts
from inferguard.lct import _evrows
from inferguard.lct._keys import K_MODEL, K_NOSALT, K_SALT, PyNames, context, fingerprints
from inferguard.lct._scan import Chunk
from inferguard.lct._summary import Count as Count

MAX_COMBOS = 64
MAX_LIFETIMES = 1 << 18  # durations kept in all (then every other one is dropped)
MAX_NAMES = 1024  # instances, incarnations per instance and tiers tracked (then "(other)")


class _Key(msgspec.Struct):
    chunk_hash_hex: Any = None
    model_name: Any = None
    kv_rank: Any = 0
    object_group_id: Any = 0
    cache_salt: Any = None


class _Entry(msgspec.Struct):
    key: Any = None
    size_bytes: Any = 0


class _Batch(msgspec.Struct):
    instance_id: Any = None
    incarnation: Any = None
    event_type: Any = None
    tier: Any = None
    backend: Any = None
    entries: list[_Entry] = msgspec.field(default_factory=list)
    shared: Any = False


class _Lifecycle(msgspec.Struct):
    phase: Any = None
    instance_id: Any = None
    incarnation: Any = None


class _Rec(msgspec.Struct):
    args: msgspec.Raw


_DEC_REC = msgspec.msgpack.Decoder(_Rec).decode
_DEC_BATCH = msgspec.msgpack.Decoder(_Batch).decode
_DEC_LIFE = msgspec.msgpack.Decoder(_Lifecycle).decode


class EventKindStats(msgspec.Struct, frozen=True):
    """Entries of one (event_type, tier, backend) combination."""

    event_type: str
    tier: str
    backend: str
    batches: int
    entries: int
    bytes: int
    first_t_mono: float | None
    last_t_mono: float | None


class Durations(msgspec.Struct, frozen=True):
    """A duration distribution in seconds (quantiles exact while `exact`)."""

    count: Count
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    exact: bool = True


class TierFlow(msgspec.Struct, frozen=True):
    """Keys stored on L1 and later on L2 (the L1 -> L2 write-through / offload flow)."""

    l1_keys_stored: Count
    l2_keys_stored: Count
    l1_then_l2_keys: Count
    l2_without_l1_keys: Count
    l1_to_l2_delay_s: Durations


class TierLifetimes(msgspec.Struct, frozen=True):
    tier: str
    stored: int
    deleted: int
    alive_at_end: Count
    lifetime_s: Durations


class EventInstance(msgspec.Struct, frozen=True):
    instance_id: str
    incarnations: list[int]
    restarts: int
    starts: int
    stops: int
    restart_offsets: list[int]
    restart_t_mono: list[float]


class EventStats(msgspec.Struct, frozen=True):
    """The events level: per kind, flow between tiers, lifetimes, instances and restarts."""

    batches: int
    entries: int
    undecodable_records: int
    malformed_keys: int
    kinds: list[EventKindStats]
    flow: TierFlow
    lifetimes: list[TierLifetimes]
    deletes_of_unstored: Count
    instances: list[EventInstance]
    exact: bool
    sample_rate: float


def _s(x: Any, default: str = "?") -> str:
    return x if isinstance(x, str) else default


def _i(x: Any) -> int | None:
    return x if type(x) is int else None


class EventsEngine:
    """Fold events records (file order) into EventStats and timeline columns."""

    def __init__(self, timeline: ts.Timeline, max_keys: int = ts.DEFAULT_MAX_KEYS,
                 backend: Backend = "python") -> None:
        self.main = timeline
        self._native = NativeEventsDecoder() if backend == "native" else None
        # the per-key maps in C on the native backend (the Python loops below: its twin)
        self._cfold = NativeEventsFold(max_keys) if backend == "native" else None
        self._tid: dict[str, int] = {"l1": 0, "l2": 1}  # tier ids of the C fold
        self._spans = _evrows.Spans()
        self.max_keys = max_keys
        self.level = 0
        self.models = PyNames(K_MODEL)
        self.salts = PyNames(K_SALT)
        self.combos: dict[tuple[str, str, str], int] = {}
        self.kind_batches: list[int] = []
        self.kind_entries: list[int] = []
        self.kind_bytes: list[int] = []
        self.kind_first: list[float] = []
        self.kind_last: list[float] = []
        self.tl = ts.Timeline(timeline.base, timeline.max_buckets, MAX_COMBOS + 1)
        self.batches = 0
        self.entries = 0
        self.bad_records = 0
        self.bad_keys = 0
        # per-key state: first store time per tier (l1, l2); l1-then-l2 flags
        self.stored: dict[str, dict[int, float]] = {"l1": {}, "l2": {}}
        self.ever_l1: set[int] = set()
        self.ever_l2: set[int] = set()
        self.flow_both = 0
        self.flow_l2_only = 0
        self.delay: list[float] = []
        self.life: dict[str, list[float]] = {}
        self.stores: dict[str, int] = {}
        self.deletes: dict[str, int] = {}
        self.deletes_unstored = 0
        self.decimated = False
        self.kept = 0
        self.inst: dict[str, dict[str, Any]] = {}
        self._ctx: dict[tuple[Any, ...], int] = {}
        self._cells: list[tuple[int, int, int]] = []

    # -- sampling ----------------------------------------------------------------------

    def _mask(self) -> int:
        return (1 << self.level) - 1

    def _room(self) -> None:
        """Keep the per-key maps under max_keys by raising the sample level."""
        def size() -> int:
            return sum(map(len, self.stored.values())) + len(self.ever_l1) + len(self.ever_l2)
        while size() > 4 * self.max_keys:
            self.level += 1
            m = self._mask()
            for tier in self.stored:
                self.stored[tier] = {k: v for k, v in self.stored[tier].items() if k & m == 0}
            self.ever_l1 = {k for k in self.ever_l1 if k & m == 0}
            self.ever_l2 = {k for k in self.ever_l2 if k & m == 0}

    # -- records -------------------------------------------------------------------------

    def decode(self, chunk: Chunk, op_names: list[str]) -> _evrows.EventRows | None:
        """The chunk's events records, decoded in C on the native backend (shared with
        the summary's events block)."""
        return _evrows.decode(self._native, chunk, op_names)

    def add(self, chunk: Chunk, op_names: list[str], tb: npt.NDArray[np.int64],
            ev: _evrows.EventRows | None = None) -> None:
        if ev is None:
            ev = self.decode(chunk, op_names)
        if ev is None:
            return
        want = {i: n for i, n in enumerate(op_names) if n in _evrows.EVENT_OPS}
        self._cells = []
        self._cell_arrays: list[tuple[npt.NDArray[np.int64], ...]] = []
        if ev.rows is not None:
            self._add_native(chunk, ev, want, tb)
        else:
            for i in ev.idx.tolist():
                self._one(chunk, i, want, tb)
        if self._cells:
            self._cell_arrays.append(tuple(np.array(x, np.int64)
                                           for x in zip(*self._cells, strict=True)))
        if self._cell_arrays:
            b, c, n = (np.concatenate(x) for x in zip(*self._cell_arrays, strict=True))
            self.tl.add_cells(b, c, n)

    def _add_native(self, chunk: Chunk, ev: _evrows.EventRows, want: dict[int, str],
                    tb: npt.NDArray[np.int64]) -> None:
        """Fold the rows C decoded, in file order: runs of rows with name ids grouped
        (`_run`), the others one by one (a row C did not take: msgspec, right there)."""
        col = _evrows.columnar(ev.rows) | ~ev.batch  # lifecycle records join the runs
        cuts = (np.flatnonzero(col[1:] != col[:-1]) + 1).tolist()
        zeros = np.concatenate([[0], np.cumsum(ev.fps == 0)])  # malformed keys before i
        for a, b in itertools.pairwise([0, *cuts, len(col)]):
            if not (col[a] and self._run(chunk, ev, a, b, tb, zeros)):
                self._rows(chunk, ev, a, b, want, tb)

    def _rows(self, chunk: Chunk, ev: _evrows.EventRows, a: int, b: int,
              want: dict[int, str], tb: npt.NDArray[np.int64]) -> None:
        """Rows a..b of `ev` one at a time."""
        buf = chunk.window.buf
        span = self._spans.get
        fps = ev.fps
        sel = ev.idx[a:b]
        idx = sel.tolist()
        offs = chunk.offset[sel].tolist()
        tms = chunk.t_mono[sel].tolist()
        tbs = tb[sel].tolist()
        for pos, r in enumerate(ev.rows[a:b].tolist()):
            if r[0] != 1:
                self._one(chunk, idx[pos], want, tb)  # msgspec, in file order
                continue
            fps_r = fps[r[17]:r[17] + r[15]]
            self.bad_keys += r[15] - int(np.count_nonzero(fps_r))  # 0: a malformed key
            self._fold(span(buf, r[2], r[3]) if r[1] == 0 else "?",
                       span(buf, r[5], r[6]) if r[4] == 0 else "?",
                       span(buf, r[8], r[9]) if r[7] == 0 else "-",
                       span(buf, r[11], r[12]) if r[10] == 0 else "?",
                       r[14] if r[13] else None, offs[pos], tms[pos], tbs[pos], r[15], r[16],
                       fps_r)

    def _run(self, chunk: Chunk, ev: _evrows.EventRows, a: int, b: int,
             tb: npt.NDArray[np.int64], zeros: npt.NDArray[np.int64]) -> bool:
        """`_fold` of rows a..b (decoded in C, every str field with an id) as one group,
        with the same result as row by row: first-seen orders (combos, tiers, instances,
        incarnations) follow the first appearances, sums are exact, the per-key fold runs
        in C in row order, durations are kept (and decimated) in row order. False (nothing
        done) when a name bound could be reached inside the run (then "(other)" depends on
        the order)."""
        assert self._cfold is not None
        isb = ev.batch[a:b]
        bpos = np.flatnonzero(isb)
        rows, names = ev.rows[a:b][bpos], ev.names
        sel = ev.idx[a:b][bpos]
        ec, tc, bc, ic = (_evrows.codes(rows, f) for f in range(4))

        def name(code: int, default: str) -> str:
            return names[code] if code >= 0 else default

        # lifecycle records (msgspec; None: undecodable), applied in order further down
        lpos = np.flatnonzero(~isb)
        lifes: list[_Lifecycle | None] = []
        for i in ev.idx[a:b][lpos].tolist():
            try:
                lifes.append(_DEC_LIFE(_DEC_REC(chunk.window.body(
                    int(chunk.offset[i]), int(chunk.length[i]))).args))
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                lifes.append(None)
        tiers = {name(c, "?") for c in np.unique(tc).tolist()}
        has_inc = rows[:, 13] == 1
        insts = {name(c, "?") for c in np.unique(ic[has_inc]).tolist()}
        insts |= {_s(lc.instance_id) for lc in lifes if lc is not None}
        if (len(self.stored) + len(tiers - self.stored.keys()) > MAX_NAMES
                or len(self.inst) + len(insts - self.inst.keys()) > MAX_NAMES):
            return False
        # instances and incarnations, in row order: every lifecycle record, and the first
        # appearance of each (instance, incarnation) of a batch (the later ones change
        # nothing)
        acts: list[tuple[int, int]] = [(int(p), -1 - k) for k, p in enumerate(lpos.tolist())]
        pick = np.flatnonzero(has_inc)
        if len(pick):
            _, first, _ = _evrows.first_seen(np.stack([ic[pick], rows[pick, 14]], axis=1))
            acts += [(int(bpos[j]), j) for j in pick[first].tolist()]
        run_idx = ev.idx[a:b]
        for p, j in sorted(acts):
            off, tt = int(chunk.offset[run_idx[p]]), float(chunk.t_mono[run_idx[p]])
            if j < 0:
                lc = lifes[-1 - j]
                if lc is None:
                    self.bad_records += 1
                else:
                    self._lifecycle(lc, off, tt)
            else:
                self._seen_incarnation(name(int(ic[j]), "?"), int(rows[j, 14]), off, tt)
        if not len(rows):
            return True
        t = chunk.t_mono[sel]
        n = rows[:, 15]
        ops = np.zeros(len(rows), np.int32)
        for c in np.unique(ec).tolist():
            e = name(c, "?")
            if e in ("store", "delete"):
                ops[ec == c] = self._cfold.STORE if e == "store" else self._cfold.DELETE
        fold = np.flatnonzero(ops)
        self.batches += len(rows)
        self.entries += _evrows.isum(n)
        self.bad_keys += int((zeros[rows[:, 17] + n] - zeros[rows[:, 17]]).sum())
        # kinds: combos in first-appearance order, per-kind sums, first / last times
        trip, first, inv = _evrows.first_seen(np.stack([ec, tc, bc], axis=1))
        combo = np.array([self._combo((name(e, "?"), self._tier(name(tr, "?")),
                                       name(bk, "-")), float(t[f]))
                          for (e, tr, bk), f in zip(trip.tolist(), first.tolist(),
                                                    strict=True)], np.int64)
        c_row = combo[inv]
        fin = np.isfinite(t)
        for c in np.unique(c_row).tolist():
            if c >= MAX_COMBOS:
                continue
            mine = c_row == c
            self.kind_batches[c] += int(np.count_nonzero(mine))
            self.kind_entries[c] += _evrows.isum(n[mine])
            self.kind_bytes[c] += _evrows.isum(rows[mine, 16])
            tf_ = t[mine & fin]
            if len(tf_):
                if (tf_ == 0).any():  # min/max of 0.0 and -0.0: keep Python's tie rule
                    for x in tf_.tolist():
                        self._first_last(c, x)
                else:
                    self._first_last(c, float(tf_.min()))
                    self._first_last(c, float(tf_.max()))
        tbs = tb[sel]
        cell = tbs != ts.NO_BUCKET
        if cell.any():
            self._cell_arrays.append((tbs[cell], c_row[cell], n[cell]))
        if not fold.size:
            return True
        # the per-key fold, in row order, in C
        ftc = tc[fold]
        ftiers, _, finv = _evrows.first_seen(ftc[:, None])
        tid_of: dict[int, int] = {}
        for c in ftiers[:, 0].tolist():
            tier = name(c, "?")
            self.stored.setdefault(tier, {})
            tid_of[c] = self._tid.setdefault(tier, len(self._tid))
        tid = np.array([tid_of[c] for c in ftiers[:, 0].tolist()], np.int32)[finv]
        fop = ops[fold]
        fn = n[fold]
        for c in ftiers[:, 0].tolist():
            tier = name(c, "?")
            for op, counter in ((self._cfold.STORE, self.stores),
                                (self._cfold.DELETE, self.deletes)):
                mine = (ftc == c) & (fop == op)
                if mine.any():
                    counter[tier] = counter.get(tier, 0) + _evrows.isum(fn[mine])
        dtiers, _, _ = _evrows.first_seen(ftc[fop == self._cfold.DELETE][:, None])
        for c in dtiers[:, 0].tolist():
            self.life.setdefault(name(c, "?"), [])
        vals, nv = self._cfold.rows(fop, tid, t[fold], rows[fold, 17], n[fold], ev.fps)
        if len(vals):
            owner = np.repeat(np.arange(len(fold)), nv)
            # each value's list: 0 the delays, 1 + k the lifetimes of the k-th tier code
            # codes that name the same tier (absent and "?") share one list, one index
            slot: dict[str, int] = {}
            code_slot = np.array([slot.setdefault(name(c, "?"), len(slot))
                                  for c in ftiers[:, 0].tolist()], np.int64)
            dest = np.where(fop[owner] == self._cfold.STORE, 0, 1 + code_slot[finv][owner])
            lists = [self.delay, *(self.life.get(tier, []) for tier in slot)]
            self._keep_grouped(vals, dest, lists)
        return True

    def _keep_grouped(self, vals: npt.NDArray[np.float64], dest: npt.NDArray[np.int64],
                      lists: list[list[float]]) -> None:
        """`_keep(lists[dest[i]], vals[i])` for every i in order, a segment at a time (each
        segment ends where `_keep` would decimate)."""
        i = 0
        while i < len(vals):
            j = min(len(vals), i + max(1, MAX_LIFETIMES + 1 - self.kept))
            seg, sd = vals[i:j], dest[i:j]
            for d, lst in enumerate(lists):  # few lists: no sort of the values
                mine = sd == d
                if mine.any():
                    lst.extend(seg[mine].tolist())
            self.kept += j - i
            i = j
            if self.kept > MAX_LIFETIMES:
                for lst in (self.delay, *self.life.values()):
                    del lst[::2]
                self.kept = len(self.delay) + sum(map(len, self.life.values()))
                self.decimated = True

    def _first_last(self, c: int, t: float) -> None:
        """A finite time into kind c's first / last (as `_fold` does it)."""
        self.kind_first[c] = t if not math.isfinite(self.kind_first[c]) else min(
            self.kind_first[c], t)
        self.kind_last[c] = t if not math.isfinite(self.kind_last[c]) else max(
            self.kind_last[c], t)

    def _one(self, chunk: Chunk, i: int, want: dict[int, str], tb: npt.NDArray[np.int64]
             ) -> None:
        """One record through msgspec (the Python road)."""
        off = int(chunk.offset[i])
        t = float(chunk.t_mono[i])
        try:
            args = _DEC_REC(chunk.window.body(off, int(chunk.length[i]))).args
            if want[int(chunk.op[i])] == "events.lifecycle":
                self._lifecycle(_DEC_LIFE(args), off, t)
            else:
                self._batch(_DEC_BATCH(args), off, t, int(tb[i]))
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            self.bad_records += 1

    def _instance(self, name: str) -> dict[str, Any]:
        if name not in self.inst and len(self.inst) >= MAX_NAMES:
            name = "(other)"
        return self.inst.setdefault(name, {"inc": [], "starts": 0, "stops": 0, "offs": [],
                                           "ts": []})

    def _tier(self, tier: str) -> str:
        if tier not in self.stored and len(self.stored) >= MAX_NAMES:
            return "(other)"
        return tier

    def _seen_incarnation(self, name: str, inc: int | None, off: int, t: float) -> None:
        if inc is None:
            return
        d = self._instance(name)
        if inc not in d["inc"] and len(d["inc"]) < MAX_NAMES:
            if d["inc"]:  # a new incarnation after the first one: a restart
                d["offs"].append(off)
                d["ts"].append(t)
            d["inc"].append(inc)

    def _lifecycle(self, a: _Lifecycle, off: int, t: float) -> None:
        name = _s(a.instance_id)
        d = self._instance(name)
        phase = _s(a.phase)
        if phase == "start":
            d["starts"] += 1
        elif phase == "stop":
            d["stops"] += 1
        self._seen_incarnation(name, _i(a.incarnation), off, t)

    def _combo(self, key: tuple[str, str, str], t: float) -> int:
        c = self.combos.get(key)
        if c is None:
            c = len(self.combos) if len(self.combos) < MAX_COMBOS else MAX_COMBOS
            if c < MAX_COMBOS:
                self.combos[key] = c
                self.kind_batches.append(0)
                self.kind_entries.append(0)
                self.kind_bytes.append(0)
                self.kind_first.append(t)
                self.kind_last.append(t)
        return c

    def _fps(self, entries: list[_Entry]) -> tuple[list[int], list[int]]:
        """Fingerprints (0: malformed key) and sizes of a batch's entries."""
        hashes: list[bytes] = []
        ctx: list[int] = []
        sizes: list[int] = []
        valid: list[bool] = []
        for e in entries:
            sizes.append(e.size_bytes if type(e.size_bytes) is int else 0)
            k = e.key
            try:
                if not isinstance(k, dict):
                    raise ValueError
                h = bytes.fromhex(k["chunk_hash_hex"])
                model = k["model_name"]
                rank, group = k.get("kv_rank", 0), k.get("object_group_id", 0)
                salt = k.get("cache_salt")
                if (not isinstance(model, str) or type(rank) is not int
                        or type(group) is not int or not -(1 << 63) <= rank < (1 << 63)
                        or not -(1 << 63) <= group < (1 << 63)):
                    raise ValueError
                if not isinstance(salt, str):
                    salt = None  # like the ObjectKey contract: a non-str salt means none
                ck = (model, rank, group, salt)
                c = self._ctx.get(ck)
                if c is None:
                    _, mh = self.models.intern(model)
                    sh = K_NOSALT if salt is None else self.salts.intern(salt)[1]
                    if len(self._ctx) > 4096:
                        self._ctx.clear()
                    c = self._ctx[ck] = context(mh, rank, group, sh)
                hashes.append(h)
                ctx.append(c)
                valid.append(True)
            except (ValueError, KeyError, TypeError):
                hashes.append(b"")
                ctx.append(0)
                valid.append(False)
                self.bad_keys += 1
        fp = fingerprints(hashes, np.array(ctx, np.uint64)).tolist() if hashes else []
        return [f if v else 0 for f, v in zip(fp, valid, strict=True)], sizes

    def _batch(self, b: _Batch, off: int, t: float, tb: int) -> None:
        fps, sizes = self._fps(b.entries)
        self._fold(_s(b.event_type), _s(b.tier), _s(b.backend, "-"), _s(b.instance_id),
                   _i(b.incarnation), off, t, tb, len(b.entries), sum(sizes), fps)

    def _fold(self, etype: str, tier: str, backend: str, name: str, inc: int | None,
              off: int, t: float, tb: int, n: int, size: int,
              fps: list[int] | npt.NDArray[np.uint64]) -> None:
        """One decoded batch (either road) into the aggregates."""
        self.batches += 1
        tier = self._tier(tier)
        self._seen_incarnation(name, inc, off, t)
        self.entries += n
        c = self._combo((etype, tier, backend), t)
        if c < MAX_COMBOS:
            self.kind_batches[c] += 1
            self.kind_entries[c] += n
            self.kind_bytes[c] += size
            if math.isfinite(t):
                self.kind_first[c] = t if not math.isfinite(self.kind_first[c]) else min(
                    self.kind_first[c], t)
                self.kind_last[c] = t if not math.isfinite(self.kind_last[c]) else max(
                    self.kind_last[c], t)
        if tb != ts.NO_BUCKET:
            self._cells.append((tb, c, n))
        if self._cfold is not None:
            self._fold_c(etype, tier, t, n, fps)
            return
        m = self._mask()
        if etype == "store":
            self.stores[tier] = self.stores.get(tier, 0) + n
            tier_map = self.stored.setdefault(tier, {})
            for fp in fps:
                if not fp or fp & m:
                    continue
                if fp not in tier_map:
                    tier_map[fp] = t
                if tier == "l1":
                    self.ever_l1.add(fp)
                elif tier == "l2" and fp not in self.ever_l2:
                    self.ever_l2.add(fp)
                    first_l1 = self.stored["l1"].get(fp)
                    if fp in self.ever_l1:
                        self.flow_both += 1
                        if first_l1 is not None and math.isfinite(t - first_l1):
                            self._keep(self.delay, t - first_l1)
                    else:
                        self.flow_l2_only += 1
            self._room()
        elif etype == "delete":
            self.deletes[tier] = self.deletes.get(tier, 0) + n
            tier_map = self.stored.setdefault(tier, {})
            lives = self.life.setdefault(tier, [])
            for fp in fps:
                if not fp or fp & m:
                    continue
                t0 = tier_map.pop(fp, None)
                if t0 is None:
                    self.deletes_unstored += 1
                elif math.isfinite(t - t0):
                    self._keep(lives, t - t0)

    def _fold_c(self, etype: str, tier: str, t: float, n: int, fps: Any) -> None:
        """The per-key part of `_fold` in C (same state, same durations in the same order)."""
        assert self._cfold is not None
        if etype not in ("store", "delete"):
            return
        self.stored.setdefault(tier, {})  # the tier registry (the maps themselves are in C)
        tid = self._tid.setdefault(tier, len(self._tid))
        arr = fps if isinstance(fps, np.ndarray) else np.array(fps, np.uint64)
        if etype == "store":
            self.stores[tier] = self.stores.get(tier, 0) + n
            self._keep_many(self.delay, self._cfold.batch(self._cfold.STORE, tid, t, arr))
        else:
            self.deletes[tier] = self.deletes.get(tier, 0) + n
            lives = self.life.setdefault(tier, [])
            self._keep_many(lives, self._cfold.batch(self._cfold.DELETE, tid, t, arr))

    def _keep_many(self, values: list[float], vals: list[float]) -> None:
        """`_keep` of each value in turn (decimating at exactly the same points)."""
        i = 0
        while i < len(vals):
            part = vals[i:i + max(1, MAX_LIFETIMES + 1 - self.kept)]
            values.extend(part)
            self.kept += len(part)
            i += len(part)
            if self.kept > MAX_LIFETIMES:
                for lst in (self.delay, *self.life.values()):
                    del lst[::2]
                self.kept = len(self.delay) + sum(map(len, self.life.values()))
                self.decimated = True

    def _keep(self, values: list[float], v: float) -> None:
        values.append(v)
        self.kept += 1
        if self.kept > MAX_LIFETIMES:  # deterministic decimation: keep every other value
            for lst in (self.delay, *self.life.values()):
                del lst[::2]
            self.kept = len(self.delay) + sum(map(len, self.life.values()))
            self.decimated = True

    # -- results -------------------------------------------------------------------------

    def _count(self, x: int) -> Count:
        if self.level == 0:
            return Count(x)
        p = 1.0 / (1 << self.level)
        return Count(round(x / p), False, math.sqrt(max(x, 1) * (1 - p)) / p, "key_sample")

    def _durations(self, values: list[float]) -> Durations:
        if not values:
            return Durations(self._count(0), None, None, None, None, not self.decimated)
        a = np.array(values, np.float64)
        q = np.quantile(a, [0.5, 0.9, 0.99])
        return Durations(self._count(len(a)) if not self.decimated else Count(
            len(a), False, 0.0, "decimated"), float(q[0]), float(q[1]), float(q[2]),
            float(a.max()), self.level == 0 and not self.decimated)

    def result(self) -> EventStats:
        if self._cfold is not None:
            self.level, l1, l2, both, l2_only, unstored = self._cfold.counts()
            self.flow_both, self.flow_l2_only, self.deletes_unstored = both, l2_only, unstored
            alive = {tier: self._cfold.alive(i) for tier, i in self._tid.items()}
        else:
            l1, l2 = len(self.ever_l1), len(self.ever_l2)
            alive = {tier: len(m) for tier, m in self.stored.items()}
        kinds = [EventKindStats(e, tier, b, self.kind_batches[c], self.kind_entries[c],
                                self.kind_bytes[c], _opt(self.kind_first[c]),
                                _opt(self.kind_last[c]))
                 for (e, tier, b), c in sorted(self.combos.items())]
        lifetimes = [TierLifetimes(tier, self.stores.get(tier, 0), self.deletes.get(tier, 0),
                                   self._count(alive.get(tier, 0)),
                                   self._durations(self.life.get(tier, [])))
                     for tier in sorted(set(self.stores) | set(self.deletes))]
        flow = TierFlow(self._count(l1), self._count(l2),
                        self._count(self.flow_both), self._count(self.flow_l2_only),
                        self._durations(self.delay))
        insts = [EventInstance(name, sorted(d["inc"]), max(0, len(d["inc"]) - 1), d["starts"],
                               d["stops"], d["offs"][:20], d["ts"][:20])
                 for name, d in sorted(self.inst.items())]
        return EventStats(self.batches, self.entries, self.bad_records, self.bad_keys, kinds,
                          flow, lifetimes, self._count(self.deletes_unstored), insts,
                          self.level == 0, 1.0 / (1 << self.level))

    def timeline_columns(self, nb: int, main: ts.Timeline) -> dict[str, npt.NDArray[np.int64]]:
        """Entries per bucket per "<event_type>_<tier>_<backend>", on the main buckets."""
        out: dict[str, npt.NDArray[np.int64]] = {}
        tl = self.tl
        if not len(tl.data) or nb == 0:
            return out
        extra = main.shift - tl.shift
        idx = (np.arange(tl.lo, tl.lo + len(tl.data)) >> extra) - main.lo
        names = {c: f"{e}_{t}_{b}" for (e, t, b), c in self.combos.items()}
        if len(self.combos) >= MAX_COMBOS:
            names[MAX_COMBOS] = "other"
        for c, name in sorted(names.items()):
            col = np.zeros(nb, np.int64)
            np.add.at(col, idx, tl.data[:, c])
            out[name] = col
        return out


def _opt(x: float) -> float | None:
    return x if math.isfinite(x) else None
