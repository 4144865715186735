"""One .lct frame body -> one row: the per-frame contract, in pure Python.

The contract (the C kernel in native/lct.c implements the same, byte for byte):

* the body is exactly one msgpack value, well-formed to any depth, with no trailing bytes;
* it is a map whose keys are all strings; duplicate keys: the last one wins;
* `type`, if present, is the string "record";
* `t_mono` and `t_wall` are ints or floats (not bools), read as float64;
* `qualname` is a string of strict UTF-8; `args` is any value, and must be a map;
* the number of object keys is the count of ObjectKey codec wrappers in the args bytes, in
  the form msgspec writes them (`{"__t__": "ObjectKey", "v": ...}` as fixmap/fixstr).

`scan_python` is the pure-Python kernel: msgspec decodes a typed record with `args` left
raw, which enforces exactly the rules above. `scan_batch` is its twin for runs of clean
records (the analytics' scan): one copy and one msgspec call per run, the records' args
kept back to back for key extraction; it gives up (and `scan_python` takes the run) on
the first frame it cannot prove clean. `decode_body` is a dependency-free, iterative
reference of the same rules; it is used when msgspec hits its recursion limit, to explain
why a frame was rejected, and by the tests as an oracle.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import Any, NamedTuple

import msgspec

ROW_OK = 0
ROW_MALFORMED = 1
ROW_OP_TABLE_FULL = 2
ROW_QUALNAME_LONG = 3

STOP_END = 0
STOP_NEED_MORE = 1
STOP_FULL = 2
STOP_MALFORMED = 3

MAX_OPS = 4096
MAX_QUALNAME = 1024

OBJECT_KEY_WRAPPER = b"\x82\xa5__t__\xa9ObjectKey\xa1v"
_MAP_HEADS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
_BE32 = struct.Struct(">I")


class _WireRecord(msgspec.Struct, tag="record", gc=False):  # no cycles: untracked
    t_mono: float
    t_wall: float
    qualname: str
    args: msgspec.Raw


_DECODE_RECORD = msgspec.msgpack.Decoder(_WireRecord).decode


class DecodedBody(NamedTuple):
    """What one frame body holds, per the contract; `reason`/`at` explain a rejection."""

    status: int
    t_mono: float
    t_wall: float
    qualname: str | None
    nkeys: int
    reason: str
    at: int


class _Malformed(Exception):
    def __init__(self, reason: str, at: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at


class _Reader:
    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | bytearray) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)

    def need(self, n: int, what: str) -> None:
        if self.end - self.pos < n:
            raise _Malformed(f"truncated {what}: needs {n} bytes, {self.end - self.pos} left",
                             self.pos)

    def be(self, n: int, what: str) -> int:
        self.need(n, what)
        v = int.from_bytes(self.buf[self.pos:self.pos + n], "big")
        self.pos += n
        return v

    def skip_value(self) -> None:
        pending = 1
        while pending:
            if self.pos >= self.end:
                raise _Malformed("truncated msgpack value", self.pos)
            op = self.buf[self.pos]
            at = self.pos
            self.pos += 1
            pending -= 1
            n = 0
            if op <= 0x7F or op >= 0xE0 or op in (0xC0, 0xC2, 0xC3):
                pass
            elif op <= 0x8F:
                pending += 2 * (op & 0x0F)
            elif op <= 0x9F:
                pending += op & 0x0F
            elif op <= 0xBF:
                n = op & 0x1F
            elif op in (0xCC, 0xD0):
                n = 1
            elif op in (0xCD, 0xD1, 0xD4):
                n = 2
            elif op == 0xD5:
                n = 3
            elif op in (0xCE, 0xD2, 0xCA):
                n = 4
            elif op == 0xD6:
                n = 5
            elif op in (0xCF, 0xD3, 0xCB):
                n = 8
            elif op == 0xD7:
                n = 9
            elif op == 0xD8:
                n = 17
            elif op in (0xC4, 0xD9):
                n = self.be(1, "length")
            elif op in (0xC5, 0xDA):
                n = self.be(2, "length")
            elif op in (0xC6, 0xDB):
                n = self.be(4, "length")
            elif op == 0xC7:
                n = self.be(1, "length") + 1
            elif op == 0xC8:
                n = self.be(2, "length") + 1
            elif op == 0xC9:
                n = self.be(4, "length") + 1
            elif op == 0xDC:
                pending += self.be(2, "array length")
            elif op == 0xDD:
                pending += self.be(4, "array length")
            elif op == 0xDE:
                pending += 2 * self.be(2, "map length")
            elif op == 0xDF:
                pending += 2 * self.be(4, "map length")
            else:
                raise _Malformed("invalid msgpack opcode 0xc1", at)
            if n:
                self.need(n, "payload")
                self.pos += n
            if pending > self.end - self.pos:
                raise _Malformed(
                    f"declares {pending} more values but only {self.end - self.pos} bytes remain",
                    at)

    def read_str(self, what: str) -> bytes:
        if self.pos >= self.end:
            raise _Malformed(f"truncated: expected {what}", self.pos)
        op = self.buf[self.pos]
        at = self.pos
        if 0xA0 <= op <= 0xBF:
            self.pos += 1
            n = op & 0x1F
        elif op in (0xD9, 0xDA, 0xDB):
            self.pos += 1
            n = self.be({0xD9: 1, 0xDA: 2, 0xDB: 4}[op], "string length")
        else:
            raise _Malformed(f"expected {what} (a msgpack str), found opcode 0x{op:02x}", at)
        self.need(n, what)
        s = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return s

    def read_number(self, what: str) -> float:
        if self.pos >= self.end:
            raise _Malformed(f"truncated: expected {what}", self.pos)
        op = self.buf[self.pos]
        at = self.pos
        self.pos += 1
        if op <= 0x7F:
            return float(op)
        if op >= 0xE0:
            return float(op - 0x100)
        fmt = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
               0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}.get(op)
        if fmt is None:
            self.pos = at
            raise _Malformed(f"expected {what} (int or float), found opcode 0x{op:02x}", at)
        size = struct.calcsize(fmt)
        self.need(size, what)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return float(v)


def decode_body(body: bytes) -> DecodedBody:
    """Apply the frame contract to one body without msgspec (iterative, any depth)."""
    r = _Reader(bytes(body))
    nan = math.nan
    try:
        if r.end == 0:
            raise _Malformed("empty frame body", 0)
        op = r.buf[0]
        r.pos = 1
        if 0x80 <= op <= 0x8F:
            entries = op & 0x0F
        elif op == 0xDE:
            entries = r.be(2, "map length")
        elif op == 0xDF:
            entries = r.be(4, "map length")
        else:
            raise _Malformed(f"expected a msgpack map, found opcode 0x{op:02x}", 0)
        t_mono: float | None = None
        t_wall: float | None = None
        qual: bytes | None = None
        args: tuple[int, int] | None = None
        for _ in range(entries):
            key = r.read_str("a string key")
            if key == b"type":
                at = r.pos
                if r.read_str("the tag value") != b"record":
                    raise _Malformed('"type" is not "record"', at)
            elif key == b"t_mono":
                t_mono = r.read_number("t_mono")
            elif key == b"t_wall":
                t_wall = r.read_number("t_wall")
            elif key == b"qualname":
                at = r.pos
                qual = r.read_str("qualname")
                try:
                    qual.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Malformed(f"qualname is not valid UTF-8 ({exc.reason})", at) from None
            elif key == b"args":
                start = r.pos
                r.skip_value()
                args = (start, r.pos)
            else:
                r.skip_value()
        if r.pos != r.end:
            raise _Malformed(f"{r.end - r.pos} trailing bytes after the record map", r.pos)
        missing = [n for n, v in (("t_mono", t_mono), ("t_wall", t_wall), ("qualname", qual),
                                  ("args", args)) if v is None]
        if missing:
            raise _Malformed("missing required field(s): " + ", ".join(missing), 0)
        assert args is not None and qual is not None
        assert t_mono is not None and t_wall is not None
        if r.buf[args[0]] not in _MAP_HEADS:
            raise _Malformed(f"args is not a map (opcode 0x{r.buf[args[0]]:02x})", args[0])
    except _Malformed as exc:
        return DecodedBody(ROW_MALFORMED, nan, nan, None, 0, exc.reason, exc.at)
    nkeys = r.buf[args[0]:args[1]].count(OBJECT_KEY_WRAPPER)
    status = ROW_QUALNAME_LONG if len(qual) > MAX_QUALNAME else ROW_OK
    return DecodedBody(status, t_mono, t_wall, qual.decode("utf-8"), nkeys, "", -1)


class PyInterner:
    """Qualname -> op id in first-seen order, capped like the C interner."""

    __slots__ = ("ids", "names")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []


class Rows:
    """Column lists one kernel call produced (converted to numpy by the caller)."""

    __slots__ = ("length", "nkeys", "offset", "op", "status", "t_mono", "t_wall")

    def __init__(self) -> None:
        self.offset: list[int] = []
        self.length: list[int] = []
        self.t_mono: list[float] = []
        self.t_wall: list[float] = []
        self.op: list[int] = []
        self.nkeys: list[int] = []
        self.status: list[int] = []


def _next_frame_is_record(buf: bytes | memoryview, n: int, pos: int) -> bool:
    """The C kernel's rule after a malformed frame (see next_frame_is_record in lct.c)."""
    if pos == n:
        return True
    if n - pos < 4:
        return False
    (flen,) = _BE32.unpack_from(buf, pos)
    if n - pos - 4 < flen:
        return False
    return decode_body(bytes(buf[pos + 4:pos + 4 + flen])).status != ROW_MALFORMED


def scan_python(buf: bytes | memoryview, pos: int, base: int, interner: PyInterner,
                capacity: int, rows: Rows) -> tuple[int, int]:
    """Pure-Python kernel with the C kernel's contract; returns (stop reason, new pos)."""
    n = len(buf)
    unpack = _BE32.unpack_from
    decode = _DECODE_RECORD
    ids = interner.ids
    names = interner.names
    wrapper = OBJECT_KEY_WRAPPER
    offset_a, length_a = rows.offset.append, rows.length.append
    mono_a, wall_a = rows.t_mono.append, rows.t_wall.append
    op_a, nkeys_a, status_a = rows.op.append, rows.nkeys.append, rows.status.append
    count = 0
    stop = STOP_END
    nan = math.nan
    while count < capacity:
        if pos >= n:
            stop = STOP_END
            break
        if n - pos < 4:
            stop = STOP_NEED_MORE
            break
        (flen,) = unpack(buf, pos)
        if n - pos - 4 < flen:
            stop = STOP_NEED_MORE
            break
        body = buf[pos + 4:pos + 4 + flen]
        offset_a(base + pos)
        length_a(flen)
        count += 1
        pos += 4 + flen
        status = ROW_OK
        try:
            rec = decode(body)
            args = bytes(rec.args)
            if args[0] not in _MAP_HEADS:
                raise ValueError("args is not a map")
            qualname = rec.qualname
            t_mono, t_wall, nk = rec.t_mono, rec.t_wall, args.count(wrapper)
        except RecursionError:
            d = decode_body(bytes(body))
            status, qualname, t_mono, t_wall, nk = (d.status, d.qualname or "", d.t_mono,
                                                    d.t_wall, d.nkeys)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            status = ROW_MALFORMED
        if status == ROW_MALFORMED:
            mono_a(nan)
            wall_a(nan)
            op_a(-1)
            nkeys_a(0)
            status_a(ROW_MALFORMED)
            if not _next_frame_is_record(buf, n, pos):
                stop = STOP_MALFORMED
                break
            stop = STOP_FULL
            continue
        mono_a(t_mono)
        wall_a(t_wall)
        nkeys_a(nk)
        op = -1
        if status == ROW_OK and len(qualname) > MAX_QUALNAME // 4 and (
                len(qualname.encode("utf-8")) > MAX_QUALNAME):
            status = ROW_QUALNAME_LONG
        if status == ROW_OK:
            op = ids.get(qualname, -1)
            if op < 0:
                if len(names) >= MAX_OPS:
                    status = ROW_OP_TABLE_FULL
                else:
                    op = ids[qualname] = len(names)
                    names.append(qualname)
        op_a(op)
        status_a(status)
        stop = STOP_FULL
    if stop == STOP_FULL and pos >= n:
        stop = STOP_END
    return stop, pos


# -- the batch kernel: one msgspec call per few MiB of frames ------------------------------

_DECODE_BATCH = msgspec.msgpack.Decoder(list[_WireRecord | None]).decode
_DECODE_RAWS = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode
ARGS_PAD = 256  # zero bytes after the args blob, so fixed-width gathers stay in bounds


class ArgsBlob:
    """The `args` bytes of one batch scan's records, back to back (then ARGS_PAD zeros):
    row i's args are data[start[i]:end[i]]; `pos`/`row`: every ObjectKey wrapper inside some
    record's args (what `nkeys` counts), in file order, and its row. Key extraction reads
    these instead of decoding every record a second time."""

    __slots__ = ("data", "end", "pos", "released", "row", "start")

    def __init__(self, data: bytes | bytearray, start: Any, end: Any, pos: Any, row: Any
                 ) -> None:
        self.data = data
        self.start, self.end, self.pos, self.row = start, end, pos, row
        self.released = False

    def release(self) -> None:
        """Drop the bytes once the keys are read (a chunk may outlive its extraction: the
        caller's loop variable, the scan's own), so only one copy is alive at a time."""
        self.data = b""
        self.released = True


@functools.cache
def _map_head_table() -> Any:
    """A 256-entry bool table: which first bytes open a msgpack map (built on first use)."""
    import numpy as np

    t = np.zeros(256, np.bool_)
    t[sorted(_MAP_HEADS)] = True
    return t


_W = OBJECT_KEY_WRAPPER
_WRAP_WORDS = (int.from_bytes(_W[0:8], "little"), int.from_bytes(_W[8:16], "little"),
               int.from_bytes(_W[16:19], "little"))


def word_rows(data: bytes | bytearray, width: int) -> Any:
    """A read-only (n, width) view of little-endian words: row x holds the words at byte
    x, x + 8, ...: `rows[idx]` gathers `width` words per index with one index each."""
    import numpy as np

    return np.ndarray((len(data) - 8 * width + 1, width), "<u8", buffer=data, strides=(1, 8))


def find_wrappers(data: bytes | bytearray) -> Any:
    """Start of every OBJECT_KEY_WRAPPER occurrence in data (which ends in at least 16
    zero bytes), ascending: its first byte anywhere, then its 19 bytes as three words.
    The wrapper cannot overlap itself, so these are also its non-overlapping
    occurrences (what `count` and `split` see)."""
    import numpy as np

    w0, w1, w2 = (np.uint64(w) for w in _WRAP_WORDS)
    arr = np.frombuffer(data, np.uint8, len(data) - 16)
    step = 1 << 20  # in blocks, so the comparison's temporary stays in cache
    cand = np.concatenate([np.flatnonzero(arr[i:i + step] == _W[0]) + i
                           for i in range(0, len(arr), step)] or [np.zeros(0, np.intp)])
    cand = cand[rows_at(data, cand) == w0]
    w = word_rows(data, 3)[cand]
    return cand[(w[:, 1] == w1) & ((w[:, 2] & np.uint64(0xFFFFFF)) == w2)]


def scan_batch(buf: Any, pos: int, base: int, interner: PyInterner, capacity: int
               ) -> tuple[int, int, tuple[Any, Any, Any, Any, Any, Any, Any] | None,
                          ArgsBlob | None] | None:
    """`scan_python`'s contract for a run of clean records, decoded a batch at a time:
    (stop, new pos, column arrays or None, args blob). Returns None, having changed
    nothing, when any frame of the run is not a clean record (malformed, not one value,
    args not a map, too deep for msgspec): the caller then runs `scan_python`, which
    handles those frames one by one."""
    import numpy as np

    n = len(buf)
    unpack = _BE32.unpack_from
    starts: list[int] = []
    add = starts.append
    p = pos
    while p + 4 <= n and capacity > 0:
        e = p + 4 + unpack(buf, p)[0]
        if e > n:
            break
        add(p)
        p = e
        if len(starts) >= capacity:
            break
    count = len(starts)
    stop = STOP_FULL if count >= capacity else STOP_NEED_MORE
    if p >= n:
        stop = STOP_END
    if not count:
        return stop, p, None, None
    lens = np.diff(np.array([*starts, p], np.int64)) - 4
    # One copy of the frames, each 4-byte length prefix overwritten with four nils, read
    # as one array of 5 x count values: a single msgspec call for the whole run.
    with memoryview(buf) as mv:
        # one copy; the 5 bytes before pos (ours, in the copy) become the array header
        blob = bytearray(mv[pos - 5:p]) if pos >= 5 else bytearray(5) + mv[pos:p]
    blob += bytes(ARGS_PAD)  # (each road writes its own msgpack array header first)
    rel = np.array(starts, np.int64) + (5 - pos)
    data: bytes | bytearray = blob
    fast = _canonical_batch(blob, rel, lens, count)
    if fast is not None:
        t_mono, t_wall, quals, inverse, a_start = fast
        a_end = rel + 4 + lens
    else:
        typed = _typed_batch(blob, rel, lens, count)
        if typed is None:
            return None
        t_mono, t_wall, each, data, a_start, a_end = typed
        del blob
        quals = list(dict.fromkeys(each))
        where = {q: i for i, q in enumerate(quals)}
        inverse = np.fromiter(map(where.__getitem__, each), np.intp, count)
        del each
    arr = np.frombuffer(data, np.uint8)
    if not _map_head_table()[arr[a_start]].all():
        return None
    del arr
    wpos = find_wrappers(data)  # the zero padding holds no wrapper
    wrow = np.minimum(np.searchsorted(a_end, wpos, "right"), count - 1)
    inside = (wpos >= a_start[wrow]) & (wpos + len(OBJECT_KEY_WRAPPER) <= a_end[wrow])
    if not inside.all():
        wpos, wrow = wpos[inside], wrow[inside]
    nkeys = np.bincount(wrow, minlength=count).astype(np.int32)
    # The batch's distinct qualnames, in first-seen order: interned in that order, each
    # takes the id (or the status) its first row would take one row at a time.
    ids = interner.ids
    names = interner.names
    ops_u: list[int] = []
    status_u: list[int] = []
    for q in quals:
        op = ids.get(q)
        st = ROW_OK
        if op is None:
            if len(q) > MAX_QUALNAME // 4 and len(q.encode("utf-8")) > MAX_QUALNAME:
                op, st = -1, ROW_QUALNAME_LONG
            elif len(names) >= MAX_OPS:
                op, st = -1, ROW_OP_TABLE_FULL
            else:
                op = ids[q] = len(names)
                names.append(q)
        ops_u.append(op)
        status_u.append(st)
    ops = np.array(ops_u, np.int32)[inverse]
    status = np.array(status_u, np.uint8)[inverse]
    cols = (np.array(starts, np.int64) + base, lens.astype(np.uint32), t_mono, t_wall,
            ops, nkeys, status)
    return stop, p, cols, ArgsBlob(data, a_start, a_end, wpos, wrow.astype(np.int32))


def _typed_batch(blob: bytearray, rel: Any, lens: Any, count: int
                 ) -> tuple[Any, Any, list[str], bytes | bytearray, Any, Any] | None:
    """Every record of the batch decoded by msgspec (the road for bodies that are not in
    upstream's exact layout): (t_mono, t_wall, each row's qualname, the args bytes, their
    starts and ends in them), or None when some frame is not a clean record."""
    import numpy as np

    # The frames, each 4-byte length prefix overwritten with four nils, read as one array
    # of 5 x count values: a single msgspec call for the whole run.
    blob[0] = 0xDD
    blob[1:5] = (5 * count).to_bytes(4, "big")
    head = np.frombuffer(blob, np.uint8)
    for k in range(4):
        head[rel + k] = 0xC0
    frames = memoryview(blob)[:len(blob) - ARGS_PAD]
    try:
        recs = _DECODE_BATCH(frames)[4::5]
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if None in recs:
        return None
    alens = np.fromiter(map(len, map(_attr("args"), recs)), np.int64, count)
    t_mono = np.fromiter(map(_attr("t_mono"), recs), np.float64, count)
    t_wall = np.fromiter(map(_attr("t_wall"), recs), np.float64, count)
    quals = list(map(_attr("qualname"), recs))
    a_start = _canonical_args(blob, rel + 4, lens, alens, quals)
    if a_start is not None:
        # Every body has upstream's layout, args last: the decode above read each body
        # as exactly its own bytes, and the args are blob[a_start:a_end].
        return t_mono, t_wall, quals, blob, a_start, rel + 4 + lens
    try:
        # The same frames as 2 x count values, each prefix now a 2-byte bin: every
        # body must be read as exactly one value of its own length.
        head[rel] = 0xC4
        head[rel + 1] = 2
        del head
        blob[1:5] = (2 * count).to_bytes(4, "big")
        sizes = list(map(len, _DECODE_RAWS(frames)))[1::2]
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if sizes != lens.tolist():
        return None
    data = b"".join([*map(_attr("args"), recs), bytes(ARGS_PAD)])
    a_end = np.cumsum(alens)
    return t_mono, t_wall, quals, data, a_end - alens, a_end


def _qualname_hash(words: Any, qlen: Any) -> Any:
    """The key contract's word hash (`_mix`) of each row's masked qualname words, seeded
    with its length: equal qualnames hash alike; the caller checks the rest word by word."""
    import numpy as np

    from inferguard.lct._mix import GOLDEN, MASK64, fmix64, fold

    h = (qlen.astype(np.uint64) * np.uint64(GOLDEN)) & np.uint64(MASK64)
    for j in range(words.shape[1]):
        h = fold(h, words[:, j])
    return fmix64(h)


def _canonical_batch(blob: bytearray, rel: Any, lens: Any, count: int
                     ) -> tuple[Any, Any, list[str], Any, Any] | None:
    """The batch read from upstream's exact record layout (`_REC_HEAD` ... `_REC_ARGS`,
    args last, the qualname a str of at most 255 bytes), with one msgspec pass that only
    checks each body is one value of its frame's length: (t_mono, t_wall, the distinct
    qualnames in first-seen order, each row's index into them, the args' starts), or None
    when any body is not so (the caller then decodes every record). The same values as
    that decode: the floats are the 0xcb doubles' bytes, each distinct qualname is decoded
    as UTF-8 (an invalid one: None), the args bounds follow from the layout."""
    import numpy as np

    from inferguard.lct._mix import MASK64

    body = rel + 4
    m8 = np.uint64((1 << 40) - 1)
    hb = _upstream_head(blob, body, lens, _QUAL_AT + 7)
    if hb is None:
        return None
    hsize = _str_heads()[hb]
    if not ((hsize == 1) | (hsize == 2)).all():  # fixstr or str8
        return None
    byte = np.frombuffer(blob, np.uint8)
    at = body + _QUAL_AT
    qlen = np.where(hsize == 1, hb & 0x1F, byte[at + 1]).astype(np.int64)
    qs = at + hsize
    key = qs + qlen
    ok = key + 6 <= body + lens  # "args" and at least one byte of its value
    if not ok.all():
        return None
    ok = (rows_at(blob, key) & m8) == _word(_REC_ARGS)
    if not ok.all():
        return None
    # Which rows share a qualname: its words (bytes past its end masked off) hashed, then
    # checked word by word against the first row of each hash.
    nw = max(1, -(-int(qlen.max()) // 8))
    qw = word_rows(blob, nw)[qs]
    nb = np.clip(qlen[:, None] - 8 * np.arange(nw, dtype=np.int64)[None, :], 0, 8)
    low = (np.uint64(1) << (8 * np.minimum(nb, 7)).astype(np.uint64)) - np.uint64(1)
    qw &= np.where(nb >= 8, np.uint64(MASK64), low)
    _, first, inverse = np.unique(_qualname_hash(qw, qlen), return_index=True,
                                  return_inverse=True)
    inverse = inverse.reshape(-1)
    if not ((qw == qw[first[inverse]]).all() and (qlen == qlen[first[inverse]]).all()):
        return None
    order = np.argsort(first)
    rank = np.empty(len(order), np.intp)
    rank[order] = np.arange(len(order))
    quals = []
    for s0, n0 in zip(qs[first[order]].tolist(), qlen[first[order]].tolist(), strict=True):
        try:
            quals.append(blob[s0:s0 + n0].decode("utf-8"))
        except UnicodeDecodeError:
            return None
    f8 = np.ndarray((len(blob) - 7,), ">f8", buffer=blob, strides=(1,))
    t_mono = f8[body + 21].astype(np.float64)
    t_wall = f8[body + 37].astype(np.float64)
    del f8, byte
    # Each body one msgpack value of exactly its frame's length: the frames read as
    # 2 x count values, each 4-byte prefix made a bin of its last 2 bytes.
    head = np.frombuffer(blob, np.uint8)
    head[rel] = 0xC4
    head[rel + 1] = 2
    del head
    blob[0] = 0xDD
    blob[1:5] = (2 * count).to_bytes(4, "big")
    try:
        raws = _DECODE_RAWS(memoryview(blob)[:len(blob) - ARGS_PAD])
        sizes = np.fromiter(map(len, raws[1::2]), np.int64, count)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    finally:
        raws = []
    if not (sizes == lens).all():
        return None
    return t_mono, t_wall, quals, rank[inverse], key + 5


def _upstream_head(blob: bytearray, body: Any, lens: Any, min_len: int) -> Any:
    """When every body (blob offsets, `lens` bytes, each at least `min_len`) starts with
    upstream's bytes up to the qualname (`_REC_HEAD`, t_mono, `_REC_WALL`, t_wall,
    `_REC_QUAL`): the first byte of each qualname's str header (int64); else None."""
    import numpy as np

    m8, m5 = np.uint64((1 << 40) - 1), np.uint64(0xFF)
    h = _REC_HEAD
    rows = word_rows(blob, 4)
    w, v = rows[body], rows[body + 29]  # words at 0, 8, 16 and at 29, 37, 45, 53
    ok = lens >= min_len
    ok &= (w[:, 0] == _word(h[:8])) & (w[:, 1] == _word(h[8:16]))
    ok &= (w[:, 2] & m8) == _word(h[16:21])
    ok &= v[:, 0] == _word(_REC_WALL)
    ok &= (v[:, 2] == _word(_REC_QUAL[:8])) & ((v[:, 3] & m5) == _REC_QUAL[8])
    if not ok.all():
        return None
    return ((v[:, 3] >> np.uint64(8)) & m5).astype(np.int64)


def rows_at(data: bytes | bytearray, idx: Any) -> Any:
    """The little-endian word at each byte offset of `idx` (data padded past its end)."""
    import numpy as np

    return np.ndarray((len(data) - 7,), "<u8", buffer=data, strides=(1,))[idx]


# Upstream's record layout (msgspec, struct field order): the bytes before t_mono's float,
# between the floats, and before the qualname str; then "args" and its value, last.
_REC_HEAD = b"\x85\xa4type\xa6record\xa6t_mono\xcb"
_REC_WALL = b"\xa6t_wall\xcb"
_REC_QUAL = b"\xa8qualname"
_REC_ARGS = b"\xa4args"
_QUAL_AT = len(_REC_HEAD) + 8 + len(_REC_WALL) + 8 + len(_REC_QUAL)
_QUAL_LEN: dict[str, int] = {}


def _word(b: bytes) -> int:
    return int.from_bytes(b, "little")


def _canonical_args(blob: bytearray, body: Any, lens: Any, alens: Any, quals: list[str]
                    ) -> Any:
    """Args start of every body (blob offsets) when each has upstream's exact layout with
    `args` last, else None. Given that the batch decode read body i from its first
    byte, these bytes make its length 21 + 8 + 8 + 8 + 9 + str header + qualname + 5 +
    args, which must be the frame's length: so it was read as exactly its own bytes."""
    import numpy as np

    m8 = np.uint64((1 << 40) - 1)
    op = _upstream_head(blob, body, lens, _QUAL_AT + 6)  # the qualname str's first byte
    if op is None:
        return None
    hsize = _str_heads()[op]
    qlen = _QUAL_LEN
    for q in set(quals) - qlen.keys():
        if len(qlen) > 4 * MAX_OPS:
            qlen.clear()
        qlen[q] = len(q.encode("utf-8"))
    key = body + _QUAL_AT + hsize + np.fromiter(map(qlen.__getitem__, quals), np.int64,
                                                len(quals))
    ok = (hsize > 0) & (key + 5 + alens == body + lens)
    if not ok.all():
        return None
    ok = (rows_at(blob, key) & m8) == _word(_REC_ARGS)
    return key + 5 if ok.all() else None


@functools.cache
def _str_heads() -> Any:
    """Bytes a msgpack str header takes, by its first byte (0: not a str)."""
    import numpy as np

    t = np.zeros(256, np.int64)
    t[0xA0:0xC0] = 1
    t[0xD9], t[0xDA], t[0xDB] = 2, 3, 5
    return t


def _attr(name: str) -> Any:
    import operator

    return operator.attrgetter(name)


