"""ObjectKey rows out of scanned `.lct` records: the key contract, in pure Python and C.

The contract (native/lct_keys.c implements the same, byte for byte; see
docs/trace-format.md, "Object keys for analytics"):

* Keys are read only from records the scan accepted (status != malformed), inside the bytes
  of the record's `args` value (the last `args` entry, as msgspec would keep it).
* An ObjectKey occurrence is each non-overlapping occurrence of the 19-byte codec wrapper
  `82 a5 "__t__" a9 "ObjectKey" a1 "v"` in those bytes: exactly the occurrences `nkeys`
  counts, so every record has `nkeys` key rows.
* The payload is the msgpack value that follows the wrapper, read inside the args bytes.
  It is a valid key when it is a map (fixmap, map16, map32) whose entries, taking the last
  occurrence of each field name (str keys compared as bytes; other keys skipped), give:
  `chunk_hash` a bin; `model_name` a str of strict UTF-8; `kv_rank` an int that fits int64;
  `object_group_id` absent (0) or such an int; `cache_salt` absent, nil or any non-str (no
  salt), or a str of strict UTF-8. Unknown fields are skipped but must be well-formed.
  Anything else (truncation, wrong types, a uint64 above 2**63-1) makes a malformed key row:
  fingerprint 0, model -1.
* Names (model, salt) are interned in first-seen order like qualnames (at most 4,096 names
  of at most 1,024 bytes); a name beyond that gets id -2 but still feeds the fingerprint.

The fingerprint (64 bits; raw chunk hashes never leave this module), on 64-bit unsigned
arithmetic with ints as two's complement: `fold(h, w) = rotl(h ^ (w * K_W1), 31) * K_W2`;
`H(b, seed)` starts from `seed ^ (len(b) * GOLDEN)`, folds each 8-byte little-endian word of
b (the last one zero-padded) and ends with MurmurHash3's fmix64. Then
`ctx = H(le64(H(model, K_MODEL)) + le64(kv_rank) + le64(object_group_id) + le64(salt_h),
K_CTX)` with `salt_h = H(salt, K_SALT)`, or `K_NOSALT` without a salt, and
`fp = H(chunk_hash, ctx)`, 0 mapped to 1 (0 means "no key"). Keys that share a context
(nearly all keys of a record) cost one short hash each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from inferguard._native import Backend
from inferguard._native._lct import NativeKeyExtractor as NativeKeyExtractor
from inferguard._native._lct import NativeKeyTable as NativeKeyTable
from inferguard._native._protocols import KeyExtractor, KeyRows, KeyTable, ScannedFrames
from inferguard.lct import _frame as tf
from inferguard.lct._mix import GOLDEN, K_W1, K_W2, MASK64, fmix64
from inferguard.lct._mix import fold as _fold

KEY_OK = 0
KEY_MALFORMED = 1
NAME_NONE = -1
NAME_UNINTERNED = -2
KEY_ROWS = 1 << 17  # rows per extraction call (pieces are the same on both backends)

K_MODEL = 0x13198A2E03707344
K_SALT = 0xA4093822299F31D0
K_NOSALT = 0x082EFA98EC4E6C89
K_CTX = 0x452821E638D01377
WRAPPER = tf.OBJECT_KEY_WRAPPER


# -- fingerprint ---------------------------------------------------------------------------


def _fmix_int(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    return k ^ (k >> 33)


def _fold_int(h: int, w: int) -> int:
    h ^= (w * K_W1) & MASK64
    h = ((h << 31) | (h >> 33)) & MASK64
    return (h * K_W2) & MASK64


def hash_bytes(b: bytes, seed: int) -> int:
    """H(b, seed) of the contract, on Python ints (used once per distinct name)."""
    n = len(b)
    h = (seed ^ (n * GOLDEN)) & MASK64
    for i in range(0, n, 8):
        h = _fold_int(h, int.from_bytes(b[i:i + 8], "little"))
    return _fmix_int(h)


def context(h_model: int, kv_rank: int, group: int, h_salt: int) -> int:
    """The key's context hash: H over four little-endian 64-bit words, seeded K_CTX."""
    raw = b"".join((x & MASK64).to_bytes(8, "little") for x in (h_model, kv_rank, group, h_salt))
    return hash_bytes(raw, K_CTX)


def hash_many(blobs: list[bytes], seeds: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """H(b, seed) for many byte strings (each with its own seed), vectorised by length."""
    out = np.empty(len(blobs), np.uint64)
    if not blobs:
        return out
    lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
    n0 = int(lengths[0])
    if n0 % 8 == 0 and bool((lengths == n0).all()):  # the common case: one length, whole words
        h = seeds ^ np.uint64((n0 * GOLDEN) & MASK64)
        if n0:
            w = np.frombuffer(b"".join(blobs), "<u8").reshape(len(blobs), n0 // 8)
            for j in range(n0 // 8):
                h = _fold(h, w[:, j])
        out[:] = fmix64(h)
        return out
    for n in np.unique(lengths).tolist():
        idx = np.flatnonzero(lengths == n)
        words = -(-n // 8)
        h = seeds[idx] ^ np.uint64((n * GOLDEN) & MASK64)
        if words:
            raw = np.frombuffer(b"".join(blobs[i] for i in idx.tolist()), np.uint8)
            mat = np.zeros((len(idx), words * 8), np.uint8)
            mat[:, :n] = raw.reshape(len(idx), n)
            w = mat.view("<u8")
            for j in range(words):
                h = _fold(h, w[:, j])
        out[idx] = fmix64(h)
    return out


def fingerprints(hashes: list[bytes], ctx: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """fp = H(chunk_hash, context), with 0 mapped to 1."""
    fp = hash_many(hashes, ctx)
    fp[fp == 0] = 1
    return fp


def key_fingerprint(chunk_hash: bytes, model_name: str, kv_rank: int, object_group_id: int = 0,
                    cache_salt: str | None = None) -> int:
    """The documented fingerprint of one key identity (for tests and callers)."""
    salt = K_NOSALT if cache_salt is None else hash_bytes(cache_salt.encode("utf-8"), K_SALT)
    ctx = context(hash_bytes(model_name.encode("utf-8"), K_MODEL), kv_rank, object_group_id,
                  salt)
    return int(fingerprints([chunk_hash], np.array([ctx], np.uint64))[0])


# -- the payload parser (pure Python) --------------------------------------------------------

_CANON_HEAD = b"\x84\xaachunk_hash\xc4"
_CANON_MODEL = b"\xaamodel_name"
_CANON_RANK = b"\xa7kv_rank"
_CANON_GROUP = b"\xafobject_group_id"
_INT_FORMS = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False),
              0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)}
_INT64_MAX = (1 << 63) - 1


Buf = bytes | bytearray  # a record's args, or a batch scan's blob of them


class _Bad(Exception):
    """The payload is not a valid key."""


def _take_str(buf: Buf, p: int, end: int) -> tuple[int, int, int] | None:
    """(start, length, next) of a str at p; None if not a str; _Bad if truncated."""
    if p >= end:
        raise _Bad
    op = buf[p]
    if 0xA0 <= op <= 0xBF:
        n, p = op & 0x1F, p + 1
    elif op in (0xD9, 0xDA, 0xDB):
        w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[op]
        if end - p < 1 + w:
            raise _Bad
        n, p = int.from_bytes(buf[p + 1:p + 1 + w], "big"), p + 1 + w
    else:
        return None
    if end - p < n:
        raise _Bad
    return p, n, p + n


def _take_bin(buf: Buf, p: int, end: int) -> tuple[int, int, int] | None:
    if p >= end:
        raise _Bad
    op = buf[p]
    if op not in (0xC4, 0xC5, 0xC6):
        return None
    w = {0xC4: 1, 0xC5: 2, 0xC6: 4}[op]
    if end - p < 1 + w:
        raise _Bad
    n, p = int.from_bytes(buf[p + 1:p + 1 + w], "big"), p + 1 + w
    if end - p < n:
        raise _Bad
    return p, n, p + n


def _take_int(buf: Buf, p: int, end: int) -> tuple[int, int] | None:
    """(value, next) of an int that fits int64; None otherwise (not consumed)."""
    if p >= end:
        raise _Bad
    op = buf[p]
    if op <= 0x7F:
        return op, p + 1
    if op >= 0xE0:
        return op - 256, p + 1
    form = _INT_FORMS.get(op)
    if form is None:
        return None
    n, signed = form
    if end - p - 1 < n:
        raise _Bad
    v = int.from_bytes(buf[p + 1:p + 1 + n], "big", signed=signed)
    if v > _INT64_MAX:
        return None
    return v, p + 1 + n


def _skip(buf: Buf, p: int, end: int) -> int:
    r = tf._Reader(buf)
    r.pos, r.end = p, end
    try:
        r.skip_value()
    except tf._Malformed:
        raise _Bad from None
    return r.pos


def _utf8(buf: Buf, start: int, n: int) -> str:
    try:
        return buf[start:start + n].decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad from None


ParsedKey = tuple[bytes | bytearray, str, int, int, str | None]


def _parse_canonical(buf: Buf, p: int, end: int) -> ParsedKey | None:
    """The layout upstream writes, read directly; None means "use the generic parser"."""
    if buf[p:p + 13] != _CANON_HEAD or p + 14 > end:
        return None
    hn = buf[p + 13]
    q = p + 14 + hn
    if buf[q:q + 11] != _CANON_MODEL or q + 12 > end:
        return None
    op = buf[q + 11]
    if not 0xA0 <= op <= 0xBF:
        return None
    mn = op & 0x1F
    m0 = q + 12
    q = m0 + mn
    if buf[q:q + 8] != _CANON_RANK:
        return None
    rank = _take_int(buf, q + 8, end)
    if rank is None:
        return None
    q = rank[1]
    if buf[q:q + 16] != _CANON_GROUP:
        return None
    group = _take_int(buf, q + 16, end)
    if group is None:
        return None
    try:
        model = buf[m0:m0 + mn].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return buf[p + 14:p + 14 + hn], model, rank[0], group[0], None


_CANON_HEAD32 = _CANON_HEAD + b"\x20"


def _int_size(op: int) -> int:
    return 1 + (_INT_FORMS[op][0] if op in _INT_FORMS else 0)


def _canonical_end(buf: Buf, key: ParsedKey) -> int:
    """Where the canonical payload `key` (parsed from buf[0:]) ends."""
    q = 14 + len(key[0]) + 11 + 1 + (buf[14 + len(key[0]) + 11] & 0x1F) + 8
    q += _int_size(buf[q])
    return q + 16 + _int_size(buf[q + 16])


def parse_key(buf: Buf, p: int, end: int) -> ParsedKey | None:
    """The key whose payload starts at buf[p] (inside buf[:end]); None if malformed."""
    if p >= end:
        return None
    try:
        canon = _parse_canonical(buf, p, end)
        if canon is not None:
            return canon
        return _parse_generic(buf, p, end)
    except _Bad:
        return None


def _parse_generic(buf: Buf, p: int, end: int) -> ParsedKey:
    op = buf[p]
    if 0x80 <= op <= 0x8F:
        entries, p = op & 0x0F, p + 1
    elif op in (0xDE, 0xDF):
        w = 2 if op == 0xDE else 4
        if end - p < 1 + w:
            raise _Bad
        entries, p = int.from_bytes(buf[p + 1:p + 1 + w], "big"), p + 1 + w
    else:
        raise _Bad
    if entries > (end - p) // 2:
        raise _Bad
    # Field name -> (state, value); state "ok", "bad" or "none" (salt only).
    fields: dict[bytes, tuple[str, Any]] = {}
    for _ in range(entries):
        k = _take_str(buf, p, end)
        if k is None:
            p = _skip(buf, _skip(buf, p, end), end)
            continue
        name = bytes(buf[k[0]:k[0] + k[1]])  # buf may be a bytearray (a batch scan's)
        p = k[2]
        got: tuple[Any, int] | None = None
        if name == b"chunk_hash":
            b = _take_bin(buf, p, end)
            got = None if b is None else ((b[0], b[1]), b[2])
        elif name in (b"model_name", b"cache_salt"):
            t = _take_str(buf, p, end)
            got = None if t is None else ((t[0], t[1]), t[2])
        elif name in (b"kv_rank", b"object_group_id"):
            got = _take_int(buf, p, end)
        else:
            p = _skip(buf, p, end)
            continue
        if got is not None:
            fields[name] = ("ok", got[0])
            p = got[1]
        else:
            p = _skip(buf, p, end)
            fields[name] = ("none" if name == b"cache_salt" else "bad", None)
    h, m, r = fields.get(b"chunk_hash"), fields.get(b"model_name"), fields.get(b"kv_rank")
    g, s = fields.get(b"object_group_id"), fields.get(b"cache_salt")
    if h is None or m is None or r is None or h[0] != "ok" or m[0] != "ok" or r[0] != "ok":
        raise _Bad
    if g is not None and g[0] != "ok":
        raise _Bad
    model = _utf8(buf, *m[1])
    salt = _utf8(buf, *s[1]) if s is not None and s[0] == "ok" else None
    return (buf[h[1][0]:h[1][0] + h[1][1]], model, r[1], 0 if g is None else g[1], salt)


class _Args(msgspec.Struct):
    args: msgspec.Raw


_DECODE_ARGS = msgspec.msgpack.Decoder(_Args).decode


def args_bytes(body: bytes) -> bytes | None:
    """The bytes of the record's last `args` value; None if the body has none."""
    try:
        return bytes(_DECODE_ARGS(body).args)
    except RecursionError:
        span = _args_span_iterative(body)
        return None if span is None else body[span[0]:span[1]]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _args_span_iterative(body: bytes) -> tuple[int, int] | None:
    r = tf._Reader(body)
    try:
        op = body[0]
        r.pos = 1
        if 0x80 <= op <= 0x8F:
            entries = op & 0x0F
        elif op == 0xDE:
            entries = r.be(2, "map length")
        elif op == 0xDF:
            entries = r.be(4, "map length")
        else:
            return None
        span = None
        for _ in range(entries):
            key = r.read_str("key")
            start = r.pos
            r.skip_value()
            if key == b"args":
                span = (start, r.pos)
        return span
    except (tf._Malformed, IndexError):
        return None


# -- extraction kernels -------------------------------------------------------------------


class PyNames:
    """Name -> id in first-seen order, capped like the C interner."""

    __slots__ = ("hashes", "ids", "names", "seed")

    def __init__(self, seed: int) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.hashes: list[int] = []
        self.seed = seed

    def intern(self, name: str) -> tuple[int, int]:
        i = self.ids.get(name)
        if i is not None:
            return i, self.hashes[i]
        raw = name.encode("utf-8")
        h = hash_bytes(raw, self.seed)
        if len(raw) > tf.MAX_QUALNAME or len(self.names) >= tf.MAX_OPS:
            return NAME_UNINTERNED, h
        i = self.ids[name] = len(self.names)
        self.names.append(name)
        self.hashes.append(h)
        return i, h


def _le_word(b: bytes) -> int:
    return int.from_bytes(b.ljust(8, b"\0"), "little")


# The canonical payload as little-endian words (see _parse_canonical): head = s[0:14] as
# its first 6 and last 8 bytes; the model tag and its str opcode = q[0:12], q = s + 46.
_HEAD_W0 = np.uint64(_le_word(_CANON_HEAD32[:6]))
_HEAD_W1 = np.uint64(_le_word(_CANON_HEAD32[6:14]))
_MODEL_W0 = np.uint64(_le_word(_CANON_MODEL[:8]))
_MODEL_W1 = np.uint64(_le_word(_CANON_MODEL[8:11]))
_LOW = [np.uint64((1 << (8 * n)) - 1) for n in range(8)]
_TAIL_WORDS = 11  # the longest canonical tail: 11 + 1 + 31 + 8 + 9 + 16 + 9 = 85 bytes
# Bytes a kv_rank / object_group_id int takes (opcode included) where _take_int reads one
# without a range check; 0: anything else (uint64 is range-checked, so it is left out).
_INT_BYTES = np.zeros(256, np.int64)
_INT_BYTES[:0x80] = 1
_INT_BYTES[0xE0:] = 1
for _op, (_n, _signed) in _INT_FORMS.items():
    if _op != 0xCF:
        _INT_BYTES[_op] = 1 + _n
_WORD8 = np.arange(_TAIL_WORDS, dtype=np.int64) * 8
_FF = np.uint64(0xFF)


def _canonical_runs(blob: tf.ArgsBlob, pos: npt.NDArray[np.int64],
                    row: npt.NDArray[np.int32]) -> tuple[npt.NDArray[Any], ...]:
    """For wrapper occurrences at `pos` (rows `row`) of a batch scan's args blob: payload
    start s, args end, tail start q = s + 46 and tail length, whether the payload has the
    canonical layout with a 32-byte hash inside the args (`vec`), which keys start a run
    of identical tails (`head`: each non-canonical key is a run of its own), and the
    hash as four little-endian words: one row gather per key, three small gathers more."""
    data = blob.data
    u = np.ndarray((len(data) - 7,), "<u8", buffer=data, strides=(1,))  # a word at any byte
    s = pos + len(WRAPPER)
    bound = blob.end[row]
    q = s + 46
    # One row gather per key (one index, its words from the same cache lines): the words
    # at s - 2 + 8j: the 14-byte head in words 0-1 (after the wrapper's last 2 bytes), the
    # 32-byte hash in words 2-5, the tail from q = s + 46 in words 6-16.
    w = tf.word_rows(data, 6 + _TAIL_WORDS)[s - 2]
    tail_w = w[:, 6:]
    vec = ((w[:, 0] >> np.uint64(16)) == _HEAD_W0) & (w[:, 1] == _HEAD_W1)
    vec &= tail_w[:, 0] == _MODEL_W0
    m1 = tail_w[:, 1]
    vec &= (m1 & _LOW[3]) == _MODEL_W1
    op = ((m1 >> np.uint64(24)) & _FF).astype(np.int64)
    vec &= (op & 0xE0) == 0xA0
    mn = op & 0x1F
    byte = np.frombuffer(data, np.uint8)
    rsz = _INT_BYTES[byte[q + 20 + mn]]
    gsz = _INT_BYTES[byte[q + 36 + mn + rsz]]
    tl = 36 + mn + rsz + gsz
    vec &= (rsz > 0) & (gsz > 0) & (q + tl <= bound)
    # Tails compared as the words at q, q + 8, ... up to the longest tail's last whole word
    # and the word ending at the tail's end (tl >= 36 > 8): together they cover every
    # tail byte (and, for a shorter tail, a few bytes after it, which can only start more
    # runs), so a key outside `head` has the tail bytes of the key before it.
    nw = -(-int(tl.max()) // 8) - 1 if len(tl) else 0
    last = u[q + tl - 8]
    head = ~vec
    if len(head) > 1:
        head[1:] |= ((tail_w[1:, :nw] != tail_w[:-1, :nw]).any(axis=1) | (last[1:] != last[:-1])
                     | (tl[1:] != tl[:-1]) | ~vec[:-1])
    head[0] = True
    return s, bound, q, tl, vec, head, w[:, 2:6]


def _fp32(hw: npt.NDArray[np.uint64], ctx: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """H(hash, ctx) for 32-byte hashes given as four words each, 0 mapped to 1."""
    h = ctx ^ np.uint64((32 * GOLDEN) & MASK64)
    for j in range(4):
        h = _fold(h, hw[:, j])
    fp = fmix64(h)
    fp[fp == 0] = 1
    return fp


class PythonKeyExtractor:
    """Pure-Python kernel: the contract above with msgspec for the record and bytes.find.

    Fast path (`_fast`): a record whose keys all share one canonical layout is read with
    slices; any other record goes through `parse_key`, key by key. Chunks of a batch
    scan carry their records' args bytes (`_frame.ArgsBlob`) and take `_extract_blob`."""

    use_blob = True  # tests turn the blob path off to compare it with the per-record one

    def __init__(self) -> None:
        self.models = PyNames(K_MODEL)
        self.salts = PyNames(K_SALT)
        self.ctx_cache: dict[tuple[int, int, int, int], int] = {}
        # Canonical tail bytes (model_name .. object_group_id) -> (model id, kv_rank,
        # group, context), or False when those bytes are not the canonical layout.
        self.tails: dict[bytes, tuple[int, int, int, int] | bool] = {}

    def names(self) -> tuple[list[str], list[str]]:
        return list(self.models.names), list(self.salts.names)

    def _ctx(self, mh: int, r: int, g: int, sh: int) -> int:
        ck = (mh, r, g, sh)
        c = self.ctx_cache.get(ck)
        if c is None:
            if len(self.ctx_cache) > 4096:
                self.ctx_cache.clear()
            c = self.ctx_cache[ck] = context(mh, r, g, sh)
        return c

    def _fast(self, args: bytes, nk: int) -> tuple[list[bytes], list[str], list[int],
                                                   list[int]] | None:
        """All keys of a record when they share one canonical layout (a 32-byte hash, then
        identical model/kv_rank/group bytes), else None. `split` finds the same
        non-overlapping wrapper occurrences as the contract."""
        keys = args.split(WRAPPER)[1:]
        if len(keys) != nk:
            return None
        first = keys[0]
        if first[:14] != _CANON_HEAD32:
            return None
        try:
            got = _parse_canonical(first, 0, len(first))
        except _Bad:  # truncated inside the layout: the per-key path reports it malformed
            return None
        if got is None:
            return None
        end = _canonical_end(first, got)
        tail = first[46:end]
        if {k[:14] for k in keys} != {_CANON_HEAD32} or {k[46:end] for k in keys} != {tail}:
            return None
        return [k[14:46] for k in keys], [got[1]] * nk, [got[2]] * nk, [got[3]] * nk

    def _canonical_tail(self, data: Buf, s: int, bound: int
                        ) -> tuple[int, int, int, int] | bool:
        try:
            got = _parse_canonical(data, s, bound)
        except _Bad:
            return False
        if got is None or len(got[0]) != 32:
            return False
        mid, mh = self.models.intern(got[1])
        return mid, got[2], got[3], self._ctx(mh, got[2], got[3], K_NOSALT)

    def _one(self, data: Buf, s: int, bound: int
             ) -> tuple[int, bytes | bytearray, int, int, int, int, int]:
        """One key by the exact parser: (status, hash, model, salt, rank, group, ctx)."""
        key = parse_key(data, s, bound)
        if key is None:
            return KEY_MALFORMED, b"", -1, NAME_NONE, 0, 0, 0
        h, m, r, g, salt = key
        mid, mh = self.models.intern(m)
        if salt is None:
            sid, sh = NAME_NONE, K_NOSALT
        else:
            sid, sh = self.salts.intern(salt)
        return KEY_OK, h, mid, sid, r, g, self._ctx(mh, r, g, sh)

    def _extract_blob(self, blob: tf.ArgsBlob) -> Iterator[KeyRows]:
        """Key rows from a batch scan's args blob: the canonical layout checked for every
        key at once in numpy, each run of keys with identical tail bytes parsed once (by
        `_parse_canonical`, cached by those bytes), every other key by `parse_key`, in
        file order (so names are interned in the order the per-key path interns them)."""
        data = blob.data
        cache = self.tails
        step = KEY_ROWS
        for j in range(0, len(blob.pos), step):
            pos, row = blob.pos[j:j + step], blob.row[j:j + step]
            k = len(pos)
            s, bound, q, tl, vec, head, hw = _canonical_runs(blob, pos, row)
            heads = np.flatnonzero(head).tolist()
            nh = len(heads)
            h_model, h_rank, h_group, h_ctx = [0] * nh, [0] * nh, [0] * nh, [0] * nh
            singles: list[int] = []
            single_keys: list[tuple[int, bytes | bytearray, int, int, int, int, int]] = []
            ends = [*heads[1:], k]
            for hi, h in enumerate(heads):
                if vec[h]:
                    qh = int(q[h])
                    tb = bytes(data[qh:qh + int(tl[h])])
                    hit = cache.get(tb)
                    if hit is None:
                        hit = self._canonical_tail(data, int(s[h]), int(bound[h]))
                        if len(cache) >= 4096:
                            cache.clear()
                        cache[tb] = hit
                    if hit is not False:
                        assert not isinstance(hit, bool)
                        h_model[hi], h_rank[hi], h_group[hi], h_ctx[hi] = hit
                        continue
                for r in range(h, ends[hi]):  # not canonical: key by key
                    singles.append(r)
                    single_keys.append(self._one(data, int(s[r]), int(bound[r])))
            run = np.cumsum(head) - 1
            model = np.array(h_model, np.int32)[run]
            rank = np.array(h_rank, np.int64)[run]
            group = np.array(h_group, np.int64)[run]
            fp = _fp32(hw, np.array(h_ctx, np.uint64)[run])
            salt = np.full(k, NAME_NONE, np.int32)
            status = np.zeros(k, np.uint8)
            if singles:
                idx = np.array(singles, np.intp)
                st, hs, mids, sids, rks, gps, ctxs = zip(*single_keys, strict=True)
                status[idx] = st
                model[idx] = mids
                salt[idx] = sids
                rank[idx] = rks
                group[idx] = gps
                fps = fingerprints(list(hs), np.array(ctxs, np.uint64))
                fps[status[idx] != KEY_OK] = 0
                fp[idx] = fps
            yield KeyRows(row, fp, model, salt, rank, group, status)

    def extract(self, chunk: ScannedFrames) -> Iterator[KeyRows]:
        blob = getattr(chunk, "args", None)
        if blob is not None and self.use_blob and not blob.released:
            try:
                yield from self._extract_blob(blob)
            finally:  # read once; a second extraction takes the per-record path
                blob.release()
            return
        rows: list[int] = []
        status: list[int] = []
        hashes: list[bytes] = []
        model: list[int] = []
        salt: list[int] = []
        ctx: list[int] = []
        rank: list[int] = []
        group: list[int] = []
        find = len(WRAPPER)
        win = chunk.window
        nkeys = chunk.nkeys
        cols = (rows, status, hashes, model, salt, ctx, rank, group)
        for i in np.flatnonzero((chunk.status != tf.ROW_MALFORMED) & (nkeys > 0)).tolist():
            if len(rows) >= KEY_ROWS:  # bounded memory: hand over full pieces as they fill
                yield self._piece(*(c[:KEY_ROWS] for c in cols))  # type: ignore[arg-type]
                for c in cols:
                    del c[:KEY_ROWS]
            args = args_bytes(win.body(int(chunk.offset[i]), int(chunk.length[i])))
            if args is None:
                continue
            nk = int(nkeys[i])
            fast = self._fast(args, nk)
            if fast is not None:
                hs, names, ranks, groups = fast
                rows.extend([i] * nk)
                status.extend([KEY_OK] * nk)
                hashes.extend(hs)
                if names.count(names[0]) == nk and ranks.count(ranks[0]) == nk and (
                        groups.count(groups[0]) == nk):
                    mid, mh = self.models.intern(names[0])
                    model.extend([mid] * nk)
                    ctx.extend([self._ctx(mh, ranks[0], groups[0], K_NOSALT)] * nk)
                else:
                    for name, r, g in zip(names, ranks, groups, strict=True):
                        mid, mh = self.models.intern(name)
                        model.append(mid)
                        ctx.append(self._ctx(mh, r, g, K_NOSALT))
                salt.extend([NAME_NONE] * nk)
                rank.extend(ranks)
                group.extend(groups)
                continue
            end = len(args)
            p = args.find(WRAPPER)
            while p >= 0:
                key = parse_key(args, p + find, end)
                rows.append(i)
                if key is None:
                    status.append(KEY_MALFORMED)
                    hashes.append(b"")
                    model.append(-1)
                    salt.append(NAME_NONE)
                    ctx.append(0)
                    rank.append(0)
                    group.append(0)
                else:
                    h, m, r, g, s = key
                    status.append(KEY_OK)
                    hashes.append(bytes(h))
                    mid, mh = self.models.intern(m)
                    model.append(mid)
                    if s is None:
                        sid, sh = NAME_NONE, K_NOSALT
                    else:
                        sid, sh = self.salts.intern(s)
                    salt.append(sid)
                    rank.append(r)
                    group.append(g)
                    ctx.append(self._ctx(mh, r, g, sh))
                p = args.find(WRAPPER, p + find)
        while rows:
            yield self._piece(*(c[:KEY_ROWS] for c in cols))  # type: ignore[arg-type]
            for c in cols:
                del c[:KEY_ROWS]

    @staticmethod
    def _piece(rows: list[int], status: list[int], hashes: list[bytes], model: list[int],
               salt: list[int], ctx: list[int], rank: list[int], group: list[int]) -> KeyRows:
        st = np.array(status, np.uint8)
        fp = fingerprints(hashes, np.array(ctx, np.uint64))
        fp[st != KEY_OK] = 0
        return KeyRows(np.array(rows, np.int32), fp, np.array(model, np.int32),
                       np.array(salt, np.int32), np.array(rank, np.int64),
                       np.array(group, np.int64), st)


def make_extractor(backend: Backend) -> KeyExtractor:
    """The key extractor of the chosen backend (same pieces, same rows)."""
    return NativeKeyExtractor(KEY_ROWS) if backend == "native" else PythonKeyExtractor()


# -- fingerprint -> dense id ----------------------------------------------------------------


class PythonKeyTable:
    """Dense ids for fingerprints in first-seen order, at most `capacity` of them: the
    fingerprints by id, and the same sorted (with their ids) for a vectorised lookup."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._fps = np.zeros(0, np.uint64)
        self._sorted = np.zeros(0, np.uint64)
        self._sorted_ids = np.zeros(0, np.int64)

    @property
    def count(self) -> int:
        return len(self._fps)

    def intern(self, fp: npt.NDArray[np.uint64], use: npt.NDArray[np.bool_]
               ) -> tuple[npt.NDArray[np.int32], int]:
        """Ids per row (-2 unused, -1 no room) and how many rows got -1."""
        out = np.full(len(fp), -2, np.int32)
        sel = np.flatnonzero(use)
        if not len(sel):
            return out, 0
        f = fp[sel]
        known = self._sorted
        ids = np.full(len(f), -1, np.int64)
        if len(known):
            if len(known) > 1 << 16:  # sorted needles: the binary searches stay in cache
                order = np.argsort(f)
                at = np.empty(len(f), np.intp)
                at[order] = np.searchsorted(known, f[order])
            else:  # a table this small is in cache anyway
                at = np.searchsorted(known, f)
            np.minimum(at, len(known) - 1, out=at)
            hit = known[at] == f
            ids[hit] = self._sorted_ids[at[hit]]
            miss = np.flatnonzero(~hit)
        else:
            miss = np.arange(len(f))
        room = max(0, self.capacity - len(self._fps))
        if len(miss) and room:
            uniq, first_pos, inverse = np.unique(f[miss], return_index=True,
                                                 return_inverse=True)
            ids_u = np.full(len(uniq), -1, np.int64)
            new = np.argsort(first_pos, kind="stable")[:room]  # first-seen order
            ids_u[new] = np.arange(len(self._fps), len(self._fps) + len(new))
            self._fps = np.concatenate([self._fps, uniq[new]])
            new.sort()  # uniq is sorted, so these values are too
            ins = np.searchsorted(known, uniq[new])
            self._sorted = np.insert(known, ins, uniq[new])
            self._sorted_ids = np.insert(self._sorted_ids, ins, ids_u[new])
            ids[miss] = ids_u[inverse.reshape(-1)]
        out[sel] = ids
        return out, int(np.count_nonzero(ids < 0))

    def rebuild(self, fps: npt.NDArray[np.uint64], capacity: int) -> None:
        """Start over with these fingerprints (ids 0..n-1 in this order)."""
        self.capacity = capacity
        self._fps = np.array(fps, np.uint64)
        order = np.argsort(self._fps, kind="stable")
        self._sorted = self._fps[order]
        self._sorted_ids = order.astype(np.int64)

    def fingerprints(self) -> npt.NDArray[np.uint64]:
        return self._fps.copy()


def make_key_table(backend: Backend, capacity: int) -> KeyTable:
    """The fingerprint table of the chosen backend (same ids)."""
    return NativeKeyTable(capacity) if backend == "native" else PythonKeyTable(capacity)
