"""Glue to native/prom.c: the Prometheus / OpenMetrics tokeniser as one typed function.

The only module that touches the cffi objects of the prom_* API; `tokenize` implements
the `Tokenizer` protocol, like `inferguard.prom._tokens.tokenize_python`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from inferguard._native import core
from inferguard._native._protocols import TokenStream

_ROW_COLUMNS = (("line", np.int64), ("kind", np.uint8), ("name", np.int32),
                ("lab_first", np.int64), ("lab_count", np.int64), ("value", np.float64),
                ("ts", np.float64), ("aux_off", np.int64), ("aux_len", np.int64),
                ("err_col", np.int64), ("err", np.uint8))
_CTYPE = {"q": "int64_t", "l": "int64_t", "B": "uint8_t", "i": "int32_t", "d": "double"}


def tokenize(data: bytes, om: bool, chunk_rows: int | None = None,
             chunk_labels: int | None = None) -> TokenStream:
    """Tokenise with prom.c. The first call is sized from the input (rows: its newlines;
    labels: one per 5 bytes at most) so it normally does everything; `chunk_rows` and
    `chunk_labels` cap the capacities, which tests use to exercise the resume path."""
    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    st = ffi.gc(lib.prom_state_new(), lib.prom_state_free)
    if st == ffi.NULL:
        raise MemoryError("prom_state_new failed")
    # Rows: an estimate (lines of real expositions are rarely under 24 bytes); a full
    # call resumes with room sized from the average line length seen so far.
    cap_rows = len(data) // 24 + 64 if chunk_rows is None else max(1, chunk_rows)
    cap_labs = (min(len(data) // 5 + 1, 64 * cap_rows + 1024) if chunk_labels is None
                else max(1, chunk_labels))
    rows_done = 0
    pos = ffi.new("size_t *", 0)
    line = ffi.new("int64_t *", 1)
    flags = lib.PROM_OPENMETRICS if om else 0
    parts: list[dict[str, npt.NDArray[Any]]] = []
    lab_parts: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = []
    labs_before = 0
    with ffi.from_buffer(data) as buf:
        while True:
            cols = {k: np.empty(cap_rows, t) for k, t in _ROW_COLUMNS}
            rows = ffi.new("prom_rows *")
            for key, arr in cols.items():
                setattr(rows, key, ffi.cast(_CTYPE[arr.dtype.char] + " *", arr.ctypes.data))
            rows.capacity = cap_rows
            lnames = np.empty(cap_labs, np.int32)
            lvalues = np.empty(cap_labs, np.int32)
            labs = ffi.new("prom_labels *")
            labs.name = ffi.cast("int32_t *", lnames.ctypes.data)
            labs.value = ffi.cast("int32_t *", lvalues.ctypes.data)
            labs.capacity = cap_labs
            rc = lib.prom_scan(buf, len(data), pos, line, flags, st, rows, labs)
            if rc < 0:
                raise MemoryError("prom_scan: out of memory")
            n, m = int(rows.count), int(labs.count)
            if n == 0 and rc == lib.PROM_STOP_FULL:
                cap_labs *= 2  # one line holds more labels than fit: retry it
                continue
            part = {k: v[:n] for k, v in cols.items()}
            if labs_before:
                part["lab_first"] = part["lab_first"] + labs_before
            parts.append(part)
            lab_parts.append((lnames[:m], lvalues[:m]))
            labs_before += m
            rows_done += n
            if rc == lib.PROM_STOP_END:
                break
            if chunk_rows is None:
                left = len(data) - int(pos[0])
                cap_rows = int(left * rows_done / max(int(pos[0]), 1) * 1.25) + 64
                if chunk_labels is None:
                    cap_labs = min(left // 5 + 1, 64 * cap_rows + 1024)
    if len(parts) == 1:
        cat, (lab_name, lab_value) = parts[0], lab_parts[0]
    else:
        cat = {k: np.concatenate([p[k] for p in parts]) for k, _ in _ROW_COLUMNS}
        lab_name = np.concatenate([p[0] for p in lab_parts])
        lab_value = np.concatenate([p[1] for p in lab_parts])
    names, first_row = _export(ffi, lib, st, lib.PROM_NAMES, first_rows=True)
    strs, _ = _export(ffi, lib, st, lib.PROM_STRS)
    aux_off = cat["aux_off"]
    aux_len = cat["aux_len"]

    def aux(row: int) -> tuple[bytes, int]:
        off = int(aux_off[row])
        return data[off:off + int(aux_len[row])], off - _line_start(data, off) + 1

    return TokenStream(
        om, cat["line"], cat["kind"], cat["name"], cat["lab_first"], cat["lab_count"],
        cat["value"], cat["ts"], aux_len, cat["err_col"], cat["err"], lab_name, lab_value,
        names, first_row, strs, aux)


def _line_start(data: bytes, off: int) -> int:
    """Offset of the start of the line holding `off` (searching back in growing steps)."""
    step = 256
    while True:
        lo = max(0, off - step)
        i = data.rfind(b"\n", lo, off)
        if i >= 0:
            return i + 1
        if lo == 0:
            return 0
        step *= 16


def _export(ffi: Any, lib: Any, st: Any, which: int,
            first_rows: bool = False) -> tuple[list[bytes], npt.NDArray[np.int64]]:
    """Interner `which` of the state as a list of bytes (by id), and the first-row column."""
    count = int(lib.prom_state_count(st, which))
    size = int(lib.prom_state_bytes(st, which))
    raw = bytearray(size)
    off = np.empty(count, np.int64)
    ln = np.empty(count, np.int64)
    lib.prom_state_export(
        st, which, ffi.from_buffer(raw) if size else ffi.NULL,
        ffi.cast("int64_t *", off.ctypes.data), ffi.cast("int64_t *", ln.ctypes.data))
    blob = bytes(raw)
    out = [blob[o:o + n] for o, n in zip(off.tolist(), ln.tolist(), strict=True)]
    fr = np.empty(count, np.int64)
    if first_rows and count:
        lib.prom_state_first_rows(st, ffi.cast("int64_t *", fr.ctypes.data))
    return out, fr


def distinct_rows(head: npt.NDArray[np.int64], first: npt.NDArray[np.int64],
                  count: npt.NDArray[np.int64], items: npt.NDArray[np.int64],
                  sort_items: bool) -> npt.NDArray[np.bool_]:
    """True at the first row of each distinct (head[i], items[first[i]:first[i]+count[i]])
    (with `sort_items`, the items compared as a sorted multiset), by distinct.c."""
    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    cols = [np.ascontiguousarray(a, np.int64) for a in (head, first, count, items)]
    n = len(cols[0])
    if not len(cols[1]) == len(cols[2]) == n:
        raise ValueError("distinct_rows: head, first and count differ in length")
    out = np.zeros(n, np.uint8)
    ptr = [ffi.cast("int64_t *", a.ctypes.data) for a in cols]
    rc = lib.ig_distinct_rows(ptr[0], ptr[1], ptr[2], n, ptr[3], len(cols[3]),
                              1 if sort_items else 0, ffi.cast("uint8_t *", out.ctypes.data))
    if rc == -2:
        raise MemoryError("ig_distinct_rows: out of memory")
    if rc != 0:
        raise ValueError("distinct_rows: a row's item range lies outside `items`")
    return out.view(np.bool_)


class FsumOverflow(ArithmeticError):
    """A partial sum of `fsum` left the float range (where math.fsum raises)."""


def fsum(values: npt.NDArray[np.float64]) -> float | None:
    """math.fsum of finite `values` by fsum.c; raises FsumOverflow where a partial sum
    overflows (math.fsum's OverflowError: the caller rescales); None where the kernel
    refuses (a non-finite value, or more partials than its bound): the caller's twin then."""
    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    v = np.ascontiguousarray(values, np.float64)
    out = ffi.new("double *")
    rc = lib.ig_fsum(ffi.cast("double *", v.ctypes.data), len(v), out)
    if rc == 1:
        raise FsumOverflow("fsum: a partial sum overflows")
    return float(out[0]) if rc == 0 else None
