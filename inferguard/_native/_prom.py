"""Glue to native/prom.c: the Prometheus / OpenMetrics tokeniser as typed functions.

The only module that touches the cffi objects of the prom_* API; `tokenize` implements
the `Tokenizer` protocol, like `inferguard.prom._tokens.tokenize_python`. `tokenize_rows`
and `brief` are the metrics summary's road without numpy (imported here only inside the
functions that return numpy arrays).
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING, Any

from inferguard._native import core
from inferguard._native._protocols import RawFacts, TokenRows, TokenStream

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_ROWS_MAX_BYTES = 256 << 20
_UNUSED = ("ts", "err_col", "err")  # what the summary road never reads
# prom_rows columns: name, C type, numpy dtype
_ROW_COLUMNS = (("line", "int64_t", "int64"), ("kind", "uint8_t", "uint8"),
                ("name", "int32_t", "int32"), ("lab_first", "int64_t", "int64"),
                ("lab_count", "int64_t", "int64"), ("value", "double", "float64"),
                ("ts", "double", "float64"), ("aux_off", "int64_t", "int64"),
                ("aux_len", "int64_t", "int64"), ("err_col", "int64_t", "int64"),
                ("err", "uint8_t", "uint8"))


def tokenize(data: bytes, om: bool, chunk_rows: int | None = None,
             chunk_labels: int | None = None) -> TokenStream:
    """Tokenise with prom.c. The first call is sized from the input (rows: its newlines;
    labels: one per 5 bytes at most) so it normally does everything; `chunk_rows` and
    `chunk_labels` cap the capacities, which tests use to exercise the resume path."""
    import numpy as np

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
            cols = {k: np.empty(cap_rows, t) for k, _, t in _ROW_COLUMNS}
            rows = ffi.new("prom_rows *")
            for key, ctype, _ in _ROW_COLUMNS:
                setattr(rows, key, ffi.cast(ctype + " *", cols[key].ctypes.data))
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
        cat = {k: np.concatenate([p[k] for p in parts]) for k, _, _ in _ROW_COLUMNS}
        lab_name = np.concatenate([p[0] for p in lab_parts])
        lab_value = np.concatenate([p[1] for p in lab_parts])
    names, first_row = _export(ffi, lib, st, lib.PROM_NAMES, first_rows=True)
    strs, _ = _export(ffi, lib, st, lib.PROM_STRS)
    aux_len = cat["aux_len"]
    return TokenStream(
        om, cat["line"], cat["kind"], cat["name"], cat["lab_first"], cat["lab_count"],
        cat["value"], cat["ts"], aux_len, cat["err_col"], cat["err"], lab_name, lab_value,
        names, np.array(first_row, np.int64), strs, _aux_reader(data, cat["aux_off"], aux_len))


def _aux_reader(data: bytes | mmap.mmap, aux_off: Any, aux_len: Any) -> Any:
    """A row's auxiliary span and its 1-based column (offsets in any int-indexable column)."""

    def aux(row: int) -> tuple[bytes, int]:
        off = int(aux_off[row])
        return data[off:off + int(aux_len[row])], off - _line_start(data, off) + 1

    return aux


def tokenize_rows(data: bytes | mmap.mmap, om: bool) -> TokenRows | None:
    """Tokenise with prom.c into cffi columns, without numpy, in one prom_scan call with
    room for a line per 16 bytes and a label per 5 (columns are not cleared: only the
    pages written cost). None if that call did not reach the end (lines shorter than
    that on average) or the text is over 256 MiB: then the general road, `tokenize`."""
    if len(data) > _ROWS_MAX_BYTES:
        return None
    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    new = ffi.new_allocator(should_clear_after_alloc=False)
    st = ffi.gc(lib.prom_state_new(), lib.prom_state_free)
    if st == ffi.NULL:
        raise MemoryError("prom_state_new failed")
    cap_rows = len(data) // 16 + 64
    cap_labs = len(data) // 5 + 1
    rows = ffi.new("prom_rows *")  # ts, err_col, err stay NULL: not needed, not written
    cols = {key: new(ctype + "[]", cap_rows) for key, ctype, _ in _ROW_COLUMNS
            if key not in _UNUSED}
    for key, col in cols.items():
        setattr(rows, key, col)
    rows.capacity = cap_rows
    labs = ffi.new("prom_labels *")
    lab_name = new("int32_t[]", cap_labs)
    lab_value = new("int32_t[]", cap_labs)
    labs.name, labs.value, labs.capacity = lab_name, lab_value, cap_labs
    pos = ffi.new("size_t *", 0)
    line = ffi.new("int64_t *", 1)
    with ffi.from_buffer(data) as buf:
        rc = lib.prom_scan(buf, len(data), pos, line, lib.PROM_OPENMETRICS if om else 0, st,
                           rows, labs)
    if rc < 0:
        raise MemoryError("prom_scan: out of memory")
    if rc != lib.PROM_STOP_END:
        return None
    n = int(rows.count)
    names, first_row = _export(ffi, lib, st, lib.PROM_NAMES, first_rows=True)
    strs, _ = _export(ffi, lib, st, lib.PROM_STRS)
    return TokenRows(
        count=n, labels=int(labs.count), kinds=bytes(ffi.buffer(cols["kind"], n)),
        line=cols["line"], name=cols["name"], aux_len=cols["aux_len"], names=names,
        first_row=first_row, strs=strs, _aux=_aux_reader(data, cols["aux_off"], cols["aux_len"]),
        handle=(cols, lab_name, lab_value))


def brief(rows: TokenRows, fam_of: list[int], role_of: list[int], le_id: int,
          quantile_id: int, n_fams: int) -> tuple[
              list[int], list[int], list[int], list[int], int, int]:
    """prom_brief.c over every row of `rows` (0.0.4: no `# EOF` cut): per family (samples,
    zeros, series), the string ids used as bucket / quantile bounds, the kept samples and
    the bound-less ones."""
    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    cols, lab_name, lab_value = rows.handle
    n_strs = len(rows.strs)
    src = ffi.new("prom_brief_in *")
    src.kind, src.name, src.value = cols["kind"], cols["name"], cols["value"]
    src.lab_first, src.lab_count = cols["lab_first"], cols["lab_count"]
    src.n_rows = rows.count
    src.lab_name, src.lab_value, src.n_labels = lab_name, lab_value, rows.labels
    fam = ffi.new("int32_t[]", fam_of)
    role = ffi.new("uint8_t[]", role_of)
    src.fam_of, src.role_of, src.n_names = fam, role, len(fam_of)
    src.le_id, src.quantile_id, src.n_strs, src.n_fams = le_id, quantile_id, n_strs, n_fams
    dst = ffi.new("prom_brief_out *")
    samples, zeros, series = (ffi.new("int64_t[]", max(n_fams, 1)) for _ in range(3))
    used = ffi.new("uint8_t[]", max(n_strs, 1))
    dst.samples, dst.zeros, dst.series, dst.bound_used = samples, zeros, series, used
    rc = lib.prom_brief(src, dst)
    if rc == -2:
        raise MemoryError("prom_brief: out of memory")
    if rc != 0:
        raise ValueError("prom_brief: a name, family or label id out of range")
    bound_ids = _marked(bytes(ffi.buffer(used, n_strs)))
    return (list(samples[0:n_fams]), list(zeros[0:n_fams]), list(series[0:n_fams]),
            bound_ids, int(dst.kept), int(dst.unbound))


def facts(rows: TokenRows, fam_of: list[int], name_flags: bytes, fam_flags: bytes,
          canon: list[int] | None, ids: tuple[int, int], keep: int,
          sid: tuple[int, int, int]) -> RawFacts:
    """prom_facts.c over every row of `rows`: per family its kept samples, series, nonzero
    samples and exact total, its label triples, bucket sums (by `le` value id) and label
    totals. `ids` are the
    `le` and `quantile` string ids, `sid` the two service-instance families and the label
    (-1: none); flags are the PROM_FACT_* bits per name and per family."""
    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    cols, lab_name, lab_value = rows.handle
    n_strs, n_fams = len(rows.strs), len(fam_flags)
    src = ffi.new("prom_facts_in *")
    src.kind, src.name, src.value = cols["kind"], cols["name"], cols["value"]
    src.lab_first, src.lab_count, src.n_rows = cols["lab_first"], cols["lab_count"], rows.count
    src.lab_name, src.lab_value, src.n_labels = lab_name, lab_value, rows.labels
    keep_alive = [ffi.new("int32_t[]", fam_of), ffi.from_buffer(name_flags),
                  ffi.from_buffer(fam_flags)]
    src.fam_of, src.name_flags, src.n_names = keep_alive[0], keep_alive[1], len(fam_of)
    src.fam_flags, src.n_fams, src.n_strs = keep_alive[2], n_fams, n_strs
    if canon is not None:
        keep_alive.append(ffi.new("int32_t[]", canon))
        src.canon = keep_alive[-1]
    src.le_id, src.quantile_id, src.keep = ids[0], ids[1], keep
    src.sid_fam0, src.sid_fam1, src.sid_label = sid
    if canon is not None and len(canon) != n_strs:
        raise ValueError("prom_facts: the canonical ids differ in length from the strings")
    out = ffi.new("prom_facts_out *")
    rc = lib.prom_facts(src, out)
    if rc == -2:
        raise MemoryError("prom_facts: out of memory")
    if rc != 0:
        raise ValueError("prom_facts: a name, family or label id out of range")
    try:
        n_p, n_b, n_s = int(out.n_pairs), int(out.n_buckets), int(out.n_splits)
        return RawFacts(
            samples=list(out.samples[0:n_fams]), series=list(out.series[0:n_fams]),
            nonzero=list(out.nonzero[0:n_fams]), total=list(out.total[0:n_fams]),
            split=list(out.split[0:n_fams]),
            pairs=(list(out.pair_fam[0:n_p]), list(out.pair_name[0:n_p]),
                   list(out.pair_value[0:n_p])),
            buckets=(list(out.bucket_fam[0:n_b]), list(out.bucket_le[0:n_b]),
                     list(out.bucket_sum[0:n_b])),
            splits=(list(out.split_fam[0:n_s]), list(out.split_value[0:n_s]),
                    list(out.split_sum[0:n_s])),
            sid_ids=_marked(bytes(ffi.buffer(out.sid_used, n_strs))),
            declined=bool(out.declined))
    finally:
        lib.prom_facts_free(out)


def _marked(mask: bytes) -> list[int]:
    """The indexes a kernel's byte mask (one byte per string id) sets to 1, found by
    bytes.find (masks are long, set bytes few)."""
    out: list[int] = []
    at = mask.find(1)
    while at >= 0:
        out.append(at)
        at = mask.find(1, at + 1)
    return out


def _line_start(data: bytes | mmap.mmap, off: int) -> int:
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
            first_rows: bool = False) -> tuple[list[bytes], list[int]]:
    """Interner `which` of the state as a list of bytes (by id), and the first-row column
    (empty unless `first_rows`)."""
    count = int(lib.prom_state_count(st, which))
    size = int(lib.prom_state_bytes(st, which))
    raw = bytearray(size)
    off = ffi.new("int64_t[]", max(count, 1))
    ln = ffi.new("int64_t[]", max(count, 1))
    lib.prom_state_export(st, which, ffi.from_buffer(raw) if size else ffi.NULL, off, ln)
    blob = bytes(raw)
    out = [blob[o:o + n] for o, n in zip(off[0:count], ln[0:count], strict=True)]
    fr: list[int] = []
    if first_rows and count:
        got = ffi.new("int64_t[]", count)
        lib.prom_state_first_rows(st, got)
        fr = list(got)
    return out, fr


def distinct_rows(head: npt.NDArray[np.int64], first: npt.NDArray[np.int64],
                  count: npt.NDArray[np.int64], items: npt.NDArray[np.int64],
                  sort_items: bool) -> npt.NDArray[np.bool_]:
    """True at the first row of each distinct (head[i], items[first[i]:first[i]+count[i]])
    (with `sort_items`, the items compared as a sorted multiset), by distinct.c."""
    import numpy as np

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
    import numpy as np

    mod = core()
    ffi: Any = mod.ffi
    lib: Any = mod.lib
    v = np.ascontiguousarray(values, np.float64)
    out = ffi.new("double *")
    rc = lib.ig_fsum(ffi.cast("double *", v.ctypes.data), len(v), out)
    if rc == 1:
        raise FsumOverflow("fsum: a partial sum overflows")
    return float(out[0]) if rc == 0 else None
