"""Glue to native/lct.c, lct_tally.c, lct_keys.c, lct_fold.c and lct_scrub.c: frame scan and
its summary tally, ObjectKey rows, key table, the per-key fold, the read-context matching
and the scrub plan.

The only module that touches the cffi objects of the lct_* API. Each class implements a
protocol of `_protocols` (numpy arrays in, typed rows out) that the pure-Python twins in
`inferguard.lct` implement too; `lib` and `ffi` are `Any` here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

from inferguard._native import core
from inferguard._native._protocols import (
    FrameRows,
    KeyRows,
    ScannedFrames,
    TalliedFrames,
    TallyResult,
)


def _api() -> tuple[Any, Any]:
    mod = core()
    return mod.ffi, mod.lib


def _names(ffi: Any, lib: Any, interner: Any) -> list[str]:
    out = []
    size = ffi.new("size_t *")
    for i in range(lib.lct_interner_size(interner)):
        p = lib.lct_interner_name(interner, i, size)
        out.append(bytes(ffi.buffer(p, size[0])).decode("utf-8"))
    return out


class NativeFrameScanner:
    """`lct_scan` with its own qualname interner (a `FrameScanner`)."""

    def __init__(self) -> None:
        self._ffi, self._lib = _api()
        ptr = self._lib.lct_interner_new()
        if ptr == self._ffi.NULL:
            raise MemoryError("lct_interner_new failed")
        self._interner = self._ffi.gc(ptr, self._lib.lct_interner_free)
        self._tally_cols: Any = None  # scan_tally's columns, made on first use
        self._tally_bufs: list[Any] = []

    def names(self) -> list[str]:
        return _names(self._ffi, self._lib, self._interner)

    def size(self) -> int:
        return int(self._lib.lct_interner_size(self._interner))

    def intern(self, name: bytes) -> int:
        got = int(self._lib.lct_interner_intern(self._interner, name, len(name)))
        if got < -1:
            raise MemoryError("lct_interner_intern: out of memory")
        return got

    def scan(self, buf: Any, pos: int, base: int, capacity: int, end: int | None = None
             ) -> tuple[int, int, FrameRows | None]:
        import numpy as np

        ffi = self._ffi
        o, ln = np.empty(capacity, np.int64), np.empty(capacity, np.uint32)
        tm, tw = np.empty(capacity, np.float64), np.empty(capacity, np.float64)
        op = np.empty(capacity, np.int32)
        nk, st = np.empty(capacity, np.int32), np.empty(capacity, np.uint8)
        cols = ffi.new("lct_columns *")
        cols.offset = ffi.cast("int64_t *", o.ctypes.data)
        cols.length = ffi.cast("uint32_t *", ln.ctypes.data)
        cols.t_mono = ffi.cast("double *", tm.ctypes.data)
        cols.t_wall = ffi.cast("double *", tw.ctypes.data)
        cols.op = ffi.cast("int32_t *", op.ctypes.data)
        cols.nkeys = ffi.cast("int32_t *", nk.ctypes.data)
        cols.status = ffi.cast("uint8_t *", st.ctypes.data)
        cols.capacity = capacity
        stop, pos, n = self._scan_into(cols, buf, pos, base, end)
        if n == 0:
            return stop, pos, None
        return stop, pos, FrameRows(o[:n], ln[:n], tm[:n], tw[:n], op[:n], nk[:n],
                                             st[:n])

    def _scan_into(self, cols: Any, buf: Any, pos: int, base: int, end: int | None
                   ) -> tuple[int, int, int]:
        """One `lct_scan` into `cols` (emptied first): (stop reason, new pos, rows)."""
        cols.count = 0
        cpos = self._ffi.new("size_t *", pos)
        with self._ffi.from_buffer(buf) as cbuf:
            stop = int(self._lib.lct_scan(cbuf, len(buf) if end is None else end, cpos, base,
                                          self._interner, cols))
        if stop < 0:
            raise MemoryError("lct_scan: out of memory")
        return stop, int(cpos[0]), int(cols.count)

    def scan_tally(self, buf: Any, pos: int, base: int, capacity: int, end: int | None,
                   tally: NativeTally) -> tuple[int, int, TalliedFrames | None]:
        """`scan`, its rows folded into `tally` in C instead of returned (no numpy: the
        summary road); the same stop reasons."""
        ffi, lib = self._ffi, self._lib
        cols = self._tally_cols
        if cols is None or cols.capacity != capacity:
            self._tally_bufs = [ffi.new(f"{t}[]", capacity) for t in (
                "int64_t", "uint32_t", "double", "double", "int32_t", "int32_t", "uint8_t")]
            cols = self._tally_cols = ffi.new("lct_columns *")
            (cols.offset, cols.length, cols.t_mono, cols.t_wall, cols.op, cols.nkeys,
             cols.status) = self._tally_bufs
            cols.capacity = capacity
        stop, pos, n = self._scan_into(cols, buf, pos, base, end)
        if n == 0:
            return stop, pos, None
        bad = int(lib.lct_tally_add(tally._t, cols))
        if bad < 0:
            raise ValueError("lct_tally_add: a row's op id is past the name table")
        o, ln, st, bad_row = cols.offset, cols.length, cols.status, lib.LCT_ROW_MALFORMED
        malformed = [] if bad == 0 else [
            (int(o[i]), int(ln[i])) for i in range(n) if st[i] == bad_row]
        return stop, pos, TalliedFrames(malformed, (int(o[n - 1]), int(ln[n - 1])))

    def scan_lists(self, buf: bytes, pos: int, base: int, capacity: int,
                   rows: Any) -> tuple[int, int]:
        """`scan` into the Python lists of a `_frame.Rows` (no numpy: small traces, fast
        start-up); same rows, same stop reasons."""
        ffi = self._ffi
        o, ln = ffi.new("int64_t[]", capacity), ffi.new("uint32_t[]", capacity)
        tm, tw = ffi.new("double[]", capacity), ffi.new("double[]", capacity)
        op, nk = ffi.new("int32_t[]", capacity), ffi.new("int32_t[]", capacity)
        st = ffi.new("uint8_t[]", capacity)
        cols = ffi.new("lct_columns *")
        cols.offset, cols.length, cols.t_mono, cols.t_wall = o, ln, tm, tw
        cols.op, cols.nkeys, cols.status = op, nk, st
        cols.capacity = capacity
        stop, pos, n = self._scan_into(cols, buf, pos, base, None)
        for dst, src in ((rows.offset, o), (rows.length, ln), (rows.t_mono, tm),
                         (rows.t_wall, tw), (rows.op, op), (rows.nkeys, nk), (rows.status, st)):
            dst += ffi.unpack(src, n)
        return stop, pos


class NativeTally:
    """`lct_tally`: the summary fold of a scan's rows (numpy twin: `_file._Aggregate`)."""

    def __init__(self) -> None:
        self._ffi, self._lib = _api()
        ptr = self._lib.lct_tally_new()
        if ptr == self._ffi.NULL:
            raise MemoryError("lct_tally_new failed")
        self._t = self._ffi.gc(ptr, self._lib.lct_tally_free)

    def merge(self, other: NativeTally, mapping: list[int]) -> None:
        """Fold `other` (the rows after this tally's) in; its op i is this tally's
        mapping[i] (-1: the name did not fit, the rows count as OP_TABLE_FULL rows)."""
        m = self._ffi.new("int32_t[]", mapping or [0])
        if self._lib.lct_tally_merge(self._t, other._t, m, len(mapping)) != 0:
            raise ValueError("lct_tally_merge: op mapping past the name table")

    def read(self) -> TallyResult:
        ffi, lib = self._ffi, self._lib
        ops, st = int(lib.LCT_MAX_OPS), 256
        tot = ffi.new("lct_tally_totals *")
        cols = [ffi.new("int64_t[]", ops) for _ in range(3)]
        scols = [ffi.new("int64_t[]", st) for _ in range(3)]
        lib.lct_tally_read(self._t, tot, *cols, *scols)
        sc, sk, sm = (ffi.unpack(c, st) for c in scols)
        counts, keys, keys_max = (ffi.unpack(c, ops) for c in cols)
        return TallyResult(
            int(tot.frames), int(tot.malformed), int(tot.records), int(tot.nan_ts),
            int(tot.neg_mono), int(tot.decreases), float(tot.mono_min),
            float(tot.mono_max), float(tot.mono_first), float(tot.mono_last),
            float(tot.wall_min), float(tot.wall_max),
            counts, keys, keys_max, {i: (sc[i], sk[i], sm[i]) for i in range(st) if sc[i]})


def _slice(k: KeyRows, a: int, b: int) -> KeyRows:
    return KeyRows(k.row[a:b], k.fp[a:b], k.model[a:b], k.salt[a:b], k.kv_rank[a:b],
                   k.group[a:b], k.status[a:b])


class NativeKeyExtractor:
    """`lct_extract_keys` with its model and salt interners (a `KeyExtractor`); pieces
    hold at most `piece_rows` rows, like the Python twin's."""

    def __init__(self, piece_rows: int) -> None:
        self._ffi, self._lib = _api()
        self._piece_rows = piece_rows
        ptr = self._lib.lct_keyx_new()
        if ptr == self._ffi.NULL:
            raise MemoryError("lct_keyx_new failed")
        self._x = self._ffi.gc(ptr, self._lib.lct_keyx_free)

    def names(self) -> tuple[list[str], list[str]]:
        ffi, lib = self._ffi, self._lib
        return (_names(ffi, lib, lib.lct_keyx_names(self._x, 0)),
                _names(ffi, lib, lib.lct_keyx_names(self._x, 1)))

    def extract(self, chunk: ScannedFrames) -> Iterator[KeyRows]:
        import numpy as np

        ffi, lib = self._ffi, self._lib
        n = len(chunk.offset)
        offset = np.ascontiguousarray(chunk.offset)
        length = np.ascontiguousarray(chunk.length)
        status = np.ascontiguousarray(chunk.status)
        win = chunk.window
        cur = ffi.new("lct_key_cursor *")
        with ffi.from_buffer(win.buf) as cbuf:
            while True:
                cap = self._piece_rows
                k = KeyRows(np.empty(cap, np.int32), np.empty(cap, np.uint64),
                            np.empty(cap, np.int32), np.empty(cap, np.int32),
                            np.empty(cap, np.int64), np.empty(cap, np.int64),
                            np.empty(cap, np.uint8))
                out = ffi.new("lct_keys *")
                out.row = ffi.cast("int32_t *", k.row.ctypes.data)
                out.fp = ffi.cast("uint64_t *", k.fp.ctypes.data)
                out.model = ffi.cast("int32_t *", k.model.ctypes.data)
                out.salt = ffi.cast("int32_t *", k.salt.ctypes.data)
                out.kv_rank = ffi.cast("int64_t *", k.kv_rank.ctypes.data)
                out.group = ffi.cast("int64_t *", k.group.ctypes.data)
                out.status = ffi.cast("uint8_t *", k.status.ctypes.data)
                out.capacity = cap
                out.count = 0
                rc = lib.lct_extract_keys(
                    cbuf, len(win.buf), win.base,
                    ffi.cast("int64_t *", offset.ctypes.data),
                    ffi.cast("uint32_t *", length.ctypes.data),
                    ffi.cast("uint8_t *", status.ctypes.data), n, cur, self._x, out)
                if rc == -1:
                    raise MemoryError("lct_extract_keys: out of memory")
                if rc == -2:
                    raise RuntimeError("lct_extract_keys: a row is not inside its window")
                got = int(out.count)
                if got:
                    yield _slice(k, 0, got) if got < cap else k
                if rc == lib.LCT_STOP_END:
                    return


class NativeKeyTable:
    """`lct_keytab` (a `KeyTable`): the same ids as the Python twin, in numpy memory."""

    def __init__(self, capacity: int) -> None:
        import numpy as np

        self._ffi, self._lib = _api()
        self._fps = np.empty(0, np.uint64)
        self._slots = np.empty(0, np.int32)
        self._t: Any = self._ffi.new("lct_keytab *")
        self.rebuild(np.empty(0, np.uint64), capacity)

    @property
    def count(self) -> int:
        return int(self._t.count)

    @property
    def capacity(self) -> int:
        return int(self._t.max_keys)

    def rebuild(self, fps: npt.NDArray[np.uint64], capacity: int) -> None:
        """Start over with these fingerprints (ids 0..n-1 in this order); the arrays are
        reused when the capacity is unchanged."""
        import numpy as np

        ffi = self._ffi
        bits = max(1, (2 * max(1, capacity) - 1).bit_length())
        if len(self._fps) != max(1, capacity) or len(self._slots) != 1 << bits:
            self._fps = np.empty(max(1, capacity), np.uint64)
            self._slots = np.empty(1 << bits, np.int32)
        self._slots.fill(-1)
        t = self._t
        t.fps = ffi.cast("uint64_t *", self._fps.ctypes.data)
        t.slots = ffi.cast("int32_t *", self._slots.ctypes.data)
        t.bits = bits
        t.max_keys = capacity
        t.count = 0
        if len(fps):
            _, full = self.intern(np.ascontiguousarray(fps, np.uint64),
                                  np.ones(len(fps), np.bool_))
            assert full == 0 and self.count == len(fps)

    def intern(self, fp: npt.NDArray[np.uint64], use: npt.NDArray[np.bool_]
               ) -> tuple[npt.NDArray[np.int32], int]:
        import numpy as np

        ffi, lib = self._ffi, self._lib
        fp = np.ascontiguousarray(fp, np.uint64)
        u8 = np.ascontiguousarray(use, np.uint8)
        out = np.empty(len(fp), np.int32)
        full = lib.lct_keytab_intern(self._t, ffi.cast("uint64_t *", fp.ctypes.data),
                                     ffi.cast("uint8_t *", u8.ctypes.data), len(fp),
                                     ffi.cast("int32_t *", out.ctypes.data))
        if full == (1 << 64) - 1 or full < 0:
            raise RuntimeError("lct_keytab_intern: inconsistent table")
        return out, int(full)

    def fingerprints(self) -> npt.NDArray[np.uint64]:
        return self._fps[:self.count].copy()


class NativeEventsDecoder:
    """`lct_events_decode`: events.batch rows decoded in C where their args read
    unambiguously (row[0] == 1); the rest are left to the msgspec path."""

    COLS = 25

    def __init__(self, fp_capacity: int = 1 << 20) -> None:
        self._ffi, self._lib = _api()
        assert int(self._lib.LCT_EV_COLS) == self.COLS
        self._cap = fp_capacity
        ptr = self._lib.lct_interner_new()
        if ptr == self._ffi.NULL:
            raise MemoryError("lct_interner_new failed")
        self._names = self._ffi.gc(ptr, self._lib.lct_interner_free)
        self._name_list: list[str] = []

    def names(self) -> list[str]:
        """The name fields' strings by id (columns 21-24), first-seen order."""
        ffi, lib = self._ffi, self._lib
        size = ffi.new("size_t *")
        for i in range(len(self._name_list), lib.lct_interner_size(self._names)):
            p = lib.lct_interner_name(self._names, i, size)
            self._name_list.append(bytes(ffi.buffer(p, size[0])).decode("utf-8"))
        return self._name_list

    def decode(self, buf: Any, base: int, offset: npt.NDArray[np.int64],
               length: npt.NDArray[np.uint32], fingerprints: bool = True
               ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]]:
        """Pieces of (rows, fingerprints) as numpy arrays, in row order; each row's column
        17 indexes the piece's fingerprints. `fingerprints=False`: none (keys are not hex
        decoded; the summary's columns only)."""
        import numpy as np

        ffi, lib = self._ffi, self._lib
        off = np.ascontiguousarray(offset, np.int64)
        ln = np.ascontiguousarray(length, np.uint32)
        n = len(off)
        fp_n = ffi.new("size_t *")
        first = 0
        with ffi.from_buffer(buf) as cbuf:
            while first < n:
                rows = np.empty((n - first, self.COLS), np.int64)
                fp = np.empty(self._cap if fingerprints else 0, np.uint64)
                nxt = int(lib.lct_events_decode(
                    cbuf, len(buf), base, ffi.cast("int64_t *", off.ctypes.data),
                    ffi.cast("uint32_t *", ln.ctypes.data), n, first,
                    ffi.cast("int64_t *", rows.ctypes.data),
                    ffi.cast("uint64_t *", fp.ctypes.data) if fingerprints else ffi.NULL,
                    self._cap, fp_n, self._names))
                yield rows[:nxt - first], fp[:int(fp_n[0])]
                first = nxt

    def decode_all(self, buf: Any, base: int, offset: npt.NDArray[np.int64],
                   length: npt.NDArray[np.uint32], fingerprints: bool = True
                   ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """Every row at once; column 17 indexes the one fingerprint array returned."""
        import numpy as np

        rows, fps, at = [], [], 0
        for r, f in self.decode(buf, base, offset, length, fingerprints):
            r[:, 17] += at
            rows.append(r)
            fps.append(f)
            at += len(f)
        if not rows:
            return np.empty((0, self.COLS), np.int64), np.empty(0, np.uint64)
        if len(rows) == 1:
            return rows[0], fps[0]
        return np.concatenate(rows), np.concatenate(fps)


class NativeEventsFold:
    """`lct_evfold`: the per-key part of the events fold (twin: the loops of
    `EventsEngine._fold`): first store times per (tier, key), keys ever on L1 / L2, the
    sample level, flow and delete counters."""

    STORE, DELETE = 1, 2

    def __init__(self, max_keys: int) -> None:
        self._ffi, self._lib = _api()
        assert (int(self._lib.LCT_EV_STORE), int(self._lib.LCT_EV_DELETE)) == (1, 2)
        ptr = self._lib.lct_evfold_new(max(0, min(max_keys, (1 << 62))))
        if ptr == self._ffi.NULL:
            raise MemoryError("lct_evfold_new failed")
        self._f = self._ffi.gc(ptr, self._lib.lct_evfold_free)
        self._cap = 0
        self._buf: Any = None
        self._out = self._ffi.new("int64_t[6]")

    def batch(self, op: int, tier: int, t: float, fps: npt.NDArray[np.uint64]) -> list[float]:
        """Fold one batch's fingerprints; the durations it yields, in entry order."""
        import numpy as np

        ffi = self._ffi
        n = len(fps)
        if n > self._cap or self._buf is None:
            self._cap = max(n, 2 * self._cap, 64)
            self._buf = ffi.new("double[]", self._cap)
        fps = np.ascontiguousarray(fps, np.uint64)
        got = int(self._lib.lct_evfold_batch(self._f, op, tier, t,
                                             ffi.cast("uint64_t *", fps.ctypes.data), n,
                                             self._buf))
        if got == -1:
            raise MemoryError("lct_evfold_batch: out of memory")
        if got < 0:
            raise ValueError("lct_evfold_batch: bad tier id")
        return ffi.unpack(self._buf, got) if got else []

    def rows(self, op: npt.NDArray[np.int32], tier: npt.NDArray[np.int32],
             t: npt.NDArray[np.float64], start: npt.NDArray[np.int64],
             count: npt.NDArray[np.int64], fps: npt.NDArray[np.uint64]
             ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """`batch` for many rows in order: all their durations, and how many per row."""
        import numpy as np

        ffi = self._ffi
        op, tier = np.ascontiguousarray(op, np.int32), np.ascontiguousarray(tier, np.int32)
        t = np.ascontiguousarray(t, np.float64)
        start = np.ascontiguousarray(start, np.int64)
        count = np.ascontiguousarray(count, np.int64)
        fps = np.ascontiguousarray(fps, np.uint64)
        cap = int(count.sum()) if len(count) else 0
        vals = np.empty(max(cap, 1), np.float64)
        nv = np.zeros(len(op), np.int64)
        got = int(self._lib.lct_evfold_rows(
            self._f, len(op), ffi.cast("int32_t *", op.ctypes.data),
            ffi.cast("int32_t *", tier.ctypes.data), ffi.cast("double *", t.ctypes.data),
            ffi.cast("int64_t *", start.ctypes.data), ffi.cast("int64_t *", count.ctypes.data),
            ffi.cast("uint64_t *", fps.ctypes.data), len(fps),
            ffi.cast("double *", vals.ctypes.data), cap, ffi.cast("int64_t *", nv.ctypes.data)))
        if got == -1:
            raise MemoryError("lct_evfold_rows: out of memory")
        if got < 0:
            raise ValueError("lct_evfold_rows: a row outside its fingerprints")
        return vals[:got], nv

    def counts(self) -> tuple[int, int, int, int, int, int]:
        """level, keys ever on L1, on L2, L1-then-L2, L2-without-L1, deletes of unstored."""
        self._lib.lct_evfold_counts(self._f, self._out)
        o = self._out
        return int(o[0]), int(o[1]), int(o[2]), int(o[3]), int(o[4]), int(o[5])

    def alive(self, tier: int) -> int:
        return int(self._lib.lct_evfold_alive(self._f, tier))


def _ptr(ffi: Any, ctype: str, a: Any) -> Any:
    """A C pointer into a C-contiguous numpy array (checked: a copy would be lost)."""
    if not a.flags.c_contiguous:
        raise ValueError("lct_fold: array not contiguous")
    return ffi.cast(ctype, a.ctypes.data)


class NativeKeyFold:
    """`lct_fold_keys` over per-key state the caller owns (`_engine.Keys.state`, one
    `lct_keyrow` per key, and the class and first-bucket columns; a `KeyFolder`); the examples
    (first offsets per kind and survival class) live here. Twin: `_engine.Keys.fold` and
    `Engine._piece`'s numpy steps."""

    KINDS, CLASSES, EXAMPLES = 7, 66, 20

    def __init__(self, state: Any, cls: Any, first_bucket: Any) -> None:
        import numpy as np

        self._ffi, self._lib = _api()
        ffi, lib = self._ffi, self._lib
        assert (int(lib.LCT_FOLD_KINDS), int(lib.LCT_FOLD_CLASSES),
                int(lib.LCT_FOLD_EXAMPLES)) == (self.KINDS, self.CLASSES, self.EXAMPLES)
        max_keys = len(state)
        layout = state.dtype.fields or {}
        want = {f: ffi.offsetof("lct_keyrow", f) for f in
                ("pend_lookup", "pend_reserve", "cnt", "flags", "survival")}
        if (state.dtype.itemsize != ffi.sizeof("lct_keyrow") or not state.flags.c_contiguous
                or any(f not in layout or layout[f][1] != off for f, off in want.items())
                or layout["cnt"][0].shape != (int(lib.LCT_FOLD_COUNTERS),)):
            raise ValueError("lct_fold: key rows not laid out as lct_keyrow")
        for a, dt in ((cls, np.int32), (first_bucket, np.int64)):
            if a.dtype != dt or len(a) != max_keys:
                raise ValueError("lct_fold: per-key array of the wrong type or size")
        self._arrays = (state, cls, first_bucket)
        self.ex_off = np.zeros((self.KINDS, self.CLASSES, self.EXAMPLES), np.int64)
        self.ex_n = np.zeros((self.KINDS, self.CLASSES), np.uint8)
        st = ffi.new("lct_keystate *")
        st.rows = _ptr(ffi, "lct_keyrow *", state)
        st.cls = _ptr(ffi, "int32_t *", cls)
        st.first_bucket = _ptr(ffi, "int64_t *", first_bucket)
        st.ex_off = _ptr(ffi, "int64_t *", self.ex_off)
        st.ex_n = _ptr(ffi, "uint8_t *", self.ex_n)
        st.max_keys = max_keys
        self._st = st
        self._piece = ffi.new("lct_fold_piece *")

    def fold(self, k: KeyRows, ids: npt.NDArray[np.int32], cls: npt.NDArray[np.int32],
             before: int, count: int, level: int, rrole: npt.NDArray[np.uint8],
             offset: npt.NDArray[np.int64], tb: npt.NDArray[np.int64],
             keysets: npt.NDArray[np.uint64] | None, class_roles: npt.NDArray[np.int64],
             hll: npt.NDArray[np.uint8] | None) -> None:
        """Fold one piece (see lct_fold_piece in inferguard_api.h)."""
        import numpy as np

        ffi, lib = self._ffi, self._lib
        n, nrec = len(k.row), len(rrole)
        row = np.ascontiguousarray(k.row, np.int32)
        fp = np.ascontiguousarray(k.fp, np.uint64)
        status = np.ascontiguousarray(k.status, np.uint8)
        ids = np.ascontiguousarray(ids, np.int32)
        cls = np.ascontiguousarray(cls, np.int32)
        rrole = np.ascontiguousarray(rrole, np.uint8)
        offset = np.ascontiguousarray(offset, np.int64)
        tb = np.ascontiguousarray(tb, np.int64)
        if not (len(fp) == len(status) == len(ids) == len(cls) == n
                and len(offset) == len(tb) == nrec and class_roles.dtype == np.int64
                and class_roles.ndim == 2 and class_roles.shape[1] == 8
                and (keysets is None or (keysets.dtype == np.uint64 and len(keysets) == nrec))
                and (hll is None or (hll.dtype == np.uint8 and hll.shape == (5, 1 << 14)))):
            raise ValueError("lct_fold: piece arrays of the wrong type or size")
        st, p = self._st, self._piece
        st.hll = ffi.NULL if hll is None else _ptr(ffi, "uint8_t *", hll)
        st.class_roles = _ptr(ffi, "int64_t *", class_roles)
        st.nclasses = len(class_roles)
        st.count = count
        st.level = level
        p.n, p.nrec, p.before = n, nrec, before
        p.row = _ptr(ffi, "int32_t *", row)
        p.fp = _ptr(ffi, "uint64_t *", fp)
        p.status = _ptr(ffi, "uint8_t *", status)
        p.ids = _ptr(ffi, "int32_t *", ids)
        p.cls = _ptr(ffi, "int32_t *", cls)
        p.rrole = _ptr(ffi, "uint8_t *", rrole)
        p.offset = _ptr(ffi, "int64_t *", offset)
        p.tb = _ptr(ffi, "int64_t *", tb)
        p.keysets = ffi.NULL if keysets is None else _ptr(ffi, "uint64_t *", keysets)
        rc = int(lib.lct_fold_keys(st, p))
        if rc:
            raise RuntimeError(f"lct_fold_keys: inconsistent piece ({rc})")

    def hll_add(self, reg: npt.NDArray[np.uint8], fp: npt.NDArray[np.uint64]) -> None:
        """`HyperLogLog.add` in C (same registers)."""
        import numpy as np

        if reg.dtype != np.uint8 or reg.shape != (1 << 14,):
            raise ValueError("lct_hll_add: registers of the wrong type or size")
        f = np.ascontiguousarray(fp, np.uint64)
        self._lib.lct_hll_add(_ptr(self._ffi, "uint8_t *", reg),
                              _ptr(self._ffi, "uint64_t *", f), len(f))

    def examples(self) -> list[list[npt.NDArray[np.int64]]]:
        """Per kind, per survival class: the first offsets (sorted, distinct)."""
        return [[self.ex_off[i, t, :int(self.ex_n[i, t])] for t in range(self.CLASSES)]
                for i in range(self.KINDS)]


class NativeContextMatcher:
    """`lct_ctx` (a `ContextMatcher`): exits close the newest open enter of the same key
    multiset. Twin: `_engine.PythonContextMatcher`."""

    def __init__(self) -> None:
        self._ffi, self._lib = _api()
        ptr = self._lib.lct_ctx_new()
        if ptr == self._ffi.NULL:
            raise MemoryError("lct_ctx_new failed")
        self._c = self._ffi.gc(ptr, self._lib.lct_ctx_free)
        self._counts = self._ffi.new("int64_t[3]")

    def _count(self, i: int) -> int:
        self._lib.lct_ctx_counts(self._c, self._counts)
        return int(self._counts[i])

    @property
    def n_open(self) -> int:
        return self._count(0)

    @property
    def untracked(self) -> int:
        return self._count(1)

    @property
    def exit_alone(self) -> int:
        return self._count(2)

    def match(self, keysets: npt.NDArray[np.uint64], is_enter: npt.NDArray[np.bool_],
              off: npt.NDArray[np.int64], t: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        import numpy as np

        ffi = self._ffi
        n = len(keysets)
        ks = np.ascontiguousarray(keysets, np.uint64)
        ent = np.ascontiguousarray(is_enter, np.uint8)
        o = np.ascontiguousarray(off, np.int64)
        tm = np.ascontiguousarray(t, np.float64)
        if not (len(ent) == len(o) == len(tm) == n):
            raise ValueError("lct_ctx_add: arrays of different lengths")
        alone = np.empty(max(n, 1), np.int64)
        got = int(self._lib.lct_ctx_add(self._c, n, _ptr(ffi, "uint64_t *", ks),
                                        _ptr(ffi, "uint8_t *", ent),
                                        _ptr(ffi, "int64_t *", o),
                                        _ptr(ffi, "double *", tm),
                                        _ptr(ffi, "int64_t *", alone)))
        return alone[:got]

    def open_contexts(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        import numpy as np

        ffi = self._ffi
        n = self.n_open
        o, t = np.empty(max(n, 1), np.int64), np.empty(max(n, 1), np.float64)
        got = int(self._lib.lct_ctx_open(self._c, _ptr(ffi, "int64_t *", o),
                                         _ptr(ffi, "double *", t), n))
        return o[:got], t[:got]


class NativeScrubPlanner:
    """`lct_scrub_scan`: which frames of a window the scrub copies with a few same-length
    spans overwritten (fast), and where those spans are; the rest (slow) go to the Python
    walk. `lct_fptab` writes the fingerprints (keyed BLAKE2b, as `_Keyed`), remembering
    them. The rule: native/lct_scrub.c, inferguard/lct/_scrub.py."""

    def __init__(self, key: bytes, max_entries: int, item_capacity: int = 1 << 16,
                 slow_capacity: int = 1 << 14) -> None:
        self._ffi, self._lib = _api()
        ffi, lib = self._ffi, self._lib
        self._off = ffi.new("int64_t[]", item_capacity)
        self._len = ffi.new("uint32_t[]", item_capacity)
        self._kind = ffi.new("uint8_t[]", item_capacity)
        self._slow = ffi.new("int64_t[]", slow_capacity)
        plan = ffi.new("lct_scrub_plan *")
        plan.item_off, plan.item_len, plan.item_kind = self._off, self._len, self._kind
        plan.item_cap = item_capacity
        plan.slow_off, plan.slow_cap = self._slow, slow_capacity
        self._plan = plan
        self._pos = ffi.new("size_t *")
        if len(key) > 64:
            raise ValueError("a fingerprint key is at most 64 bytes")
        tab = lib.lct_fptab_new(key, len(key), max_entries)
        if tab == ffi.NULL:
            raise MemoryError("lct_fptab_new failed")
        self._tab = ffi.gc(tab, lib.lct_fptab_free)

    def plan(self, buf: Any, pos: int, end: int | None = None
             ) -> tuple[int, int, int, int, int, list[int]]:
        """Plan the complete frames of buf[pos:end]: (LCT_STOP_* reason, new pos, fast
        frames, fingerprints and token ids the walk would count in them, slow frame
        offsets into buf); the items stay here for `patch`. LCT_STOP_FULL: call again
        from the new pos."""
        ffi, lib, plan = self._ffi, self._lib, self._plan
        plan.nitems = plan.nslow = plan.nfast = plan.nhashes = plan.ntokens = 0
        self._pos[0] = pos
        with ffi.from_buffer(buf) as cbuf:
            stop = int(lib.lct_scrub_scan(cbuf, len(buf) if end is None else end, self._pos,
                                          plan))
        return (stop, int(self._pos[0]), int(plan.nfast), int(plan.nhashes),
                int(plan.ntokens), ffi.unpack(self._slow, int(plan.nslow)))

    def patch(self, buf: Any) -> None:
        """Overwrite the last plan's items in `buf` (writable), scrubbed."""
        ffi, lib = self._ffi, self._lib
        with ffi.from_buffer(buf, require_writable=True) as cb:
            got = int(lib.lct_fptab_patch(self._tab, cb, len(buf), cb, len(buf), self._off,
                                          self._len, self._kind, int(self._plan.nitems)))
        if got == -2:
            raise MemoryError("lct_fptab_patch: out of memory")
        if got < 0:
            raise ValueError("lct_fptab_patch: an item outside the window")

    def fingerprint(self, raw: bytes) -> bytes:
        """The fingerprint of `raw` as the C side computes it (for the tests)."""
        out = self._ffi.new("uint8_t[]", max(len(raw), 1))
        self._lib.lct_fptab_fingerprint(self._tab, raw, len(raw), out)
        return bytes(self._ffi.buffer(out, len(raw)))

    def remembered(self) -> int:
        """How many fingerprints the table holds."""
        return int(self._lib.lct_fptab_count(self._tab))

    def frame(self, body: bytes) -> tuple[list[tuple[int, int, int]], int, int] | None:
        """One frame body: None when it is slow, else its items (offset in body, length,
        LCT_SCRUB_* kind) and the fingerprints and token ids the walk would count."""
        ffi, lib = self._ffi, self._lib
        h, t = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        n = int(lib.lct_scrub_frame(body, len(body), ffi.NULL, ffi.NULL, ffi.NULL, 0, h, t))
        if n < 0:
            return None
        m = max(n, 1)
        off, ln, kd = ffi.new("int64_t[]", m), ffi.new("uint32_t[]", m), ffi.new("uint8_t[]", m)
        lib.lct_scrub_frame(body, len(body), off, ln, kd, n, h, t)
        return (list(zip(ffi.unpack(off, n), ffi.unpack(ln, n), ffi.unpack(kd, n),
                         strict=True)), int(h[0]), int(t[0]))
