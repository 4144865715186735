"""A scrubbed copy of a `.lct` trace: the same file a recorder would have written, with every
raw chunk hash replaced by a keyed fingerprint, so a packet can carry its trace.

What changes, frame by frame (everything else is re-encoded as it was decoded: maps in
wire order, the smallest int forms, float64, bin for bytes — the rules upstream's msgspec
encoder follows, so the copy is a valid `.lct` upstream's own `TraceReader` reads):

- every `bin` value in a record's args (in 0.5.6 only `ObjectKey.chunk_hash` is bytes) →
  BLAKE2b keyed with the packet's key, as long as the value: a given hash always maps to the same
  fingerprint within one scrub, so record counts, key counts and the per-key reuse
  structure (which key is written, looked up, read again) are unchanged;
- an events-level key's `chunk_hash_hex` → the hex of the same keyed fingerprint;
- a `cache_salt` (a tenant's isolation string) → `salt-` + 16 hex of its keyed fingerprint;
- `token_ids` (prompt token ids) → zeros, the same count;
- the header's `sm_config_json` → passed through the caller's redaction (credentials in a
  remote URL); its digest is recomputed when that changed it;
- a frame that does not decode, or a truncated tail, is dropped (counted): it could hold
  hashes in a form this walk does not see.

The key is the caller's (a packet draws a fresh random one and never writes it; the same
hash thus has unrelated fingerprints in two packets unless a shared key is given).

Two backends, one output (byte for byte, and the same report). The pure-Python one is the
walk above: every frame decoded with msgspec, walked, re-encoded. The native one (issue
#17) does not decode what it need not: the C core (`native/lct_scrub.c`) plans each
window of frames and calls a record frame *fast* when two things hold. (1) Re-encoding
msgspec's decode of its body gives back the same bytes: a map at the top with a "type":
"record" and an "args" key, every int, str, bin, array and map header in its smallest
form, floats as float64 (not NaN), str keys only, no duplicate key, no ext, valid UTF-8.
(2) Everything the walk would change in it keeps its length, inside `args`: a `bin` (its
fingerprint), an even-length all-hex chunk_hash_hex (the hex of the fingerprint of the
bytes it spells), token_ids of one-byte ints (zeros); an empty cache_salt stays as it is.
A non-empty salt, any other form of those three keys, one of them outside `args`, a hex
key or token ids in a frame with a "__t__" key (the ObjectKey rewrite treats them apart),
a "__t__" key but as a map's first key, nesting deeper than 64 (the walk refuses 200):
slow. A fast frame is
copied as it is, a window at a time, with those spans overwritten in place, the
fingerprints computed in C (the same keyed BLAKE2b as `_Keyed.fp`, remembered in a C
table); every other frame (the header, salts, real token ids, anything damaged or
unusual) goes through the walk, which re-encodes it or drops it as the pure-Python
backend does. Being slow is always correct; only the fast test must be exact, and it
only says "fast" for byte forms the encoder itself writes. Measured in
docs/performance-scrub.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from typing import Any

import msgspec

from inferguard._native import Backend, resolve_backend

MAX_FRAME = 1 << 30  # a frame this large is not re-encoded (dropped, counted)


class ScrubReport(msgspec.Struct, frozen=True):
    """What one scrub did (counts only)."""

    records: int
    hashes_replaced: int
    token_ids_zeroed: int
    frames_dropped: int
    bytes_written: int
    config_redacted: bool = False


_CACHE_MAX = 1 << 20  # fingerprints remembered (a trace reuses its keys heavily)


class _Keyed:
    def __init__(self, key: bytes) -> None:
        # keyed BLAKE2b takes keys up to 64 bytes; a longer one is hashed down first
        self.key = key if len(key) <= 64 else hashlib.blake2b(key).digest()
        self.hashes = 0
        self.tokens = 0
        self.cache: dict[bytes, bytes] = {}

    def fp(self, raw: bytes) -> bytes:
        """A keyed fingerprint of a byte string, as long as it (BLAKE2b keyed with the
        packet's key; a value longer than 64 bytes chains blocks with a counter)."""
        self.hashes += 1
        hit = self.cache.get(raw)
        if hit is not None:
            return hit
        n = len(raw)
        if 0 < n <= 64:
            out = hashlib.blake2b(raw, key=self.key, digest_size=n).digest()
        else:
            out = b"".join(hashlib.blake2b(i.to_bytes(4, "big") + raw, key=self.key).digest()
                           for i in range(n // 64 + 1))[:n]
        if len(self.cache) < _CACHE_MAX:
            self.cache[raw] = out
        return out

    def walk(self, v: Any, depth: int = 0) -> Any:
        if depth > 200:
            raise ValueError("args nested too deep to scrub")
        if isinstance(v, bytes):
            return self.fp(v)
        if isinstance(v, list):
            return [self.walk(x, depth + 1) for x in v]
        if isinstance(v, dict):
            if v.get("__t__") == "ObjectKey":  # the common case, without the general walk
                key = self._object_key(v)
                if key is not None:
                    return key
            out: dict[Any, Any] = {}
            for k, x in v.items():
                if k == "chunk_hash_hex" and isinstance(x, str):
                    try:
                        out[k] = self.fp(bytes.fromhex(x)).hex()
                    except ValueError:
                        out[k] = self.fp(x.encode()).hex()[:len(x)]
                elif k == "cache_salt" and isinstance(x, str) and x:
                    out[k] = "salt-" + self.fp(x.encode()).hex()[:16]
                elif k == "token_ids" and isinstance(x, list):
                    self.tokens += len(x)
                    out[k] = [0] * len(x)
                elif isinstance(x, (int, float, str, bool)) or x is None:
                    out[k] = x
                else:
                    out[k] = self.walk(x, depth + 1)
            return out
        return v

    def _object_key(self, v: dict[Any, Any]) -> dict[Any, Any] | None:
        """An encoded ObjectKey with its hash (and salt) fingerprinted; None when it is not
        the `{"__t__", "v": {...}}` map the codec writes (then the general walk runs)."""
        inner = v.get("v")
        if type(inner) is not dict or len(v) != 2:
            return None
        new: dict[Any, Any] = {}
        cache = self.cache
        for k, x in inner.items():
            t = type(x)
            if t is bytes:
                hit = cache.get(x)
                if hit is None:
                    new[k] = self.fp(x)
                else:
                    self.hashes += 1
                    new[k] = hit
            elif t is str and k == "cache_salt" and x:
                new[k] = "salt-" + self.fp(x.encode()).hex()[:16]
            elif t in (int, str, float, bool) or x is None:
                new[k] = x
            else:
                new[k] = self.walk(x, 1)
        return {"__t__": "ObjectKey", "v": new}


class _Run:
    """One scrub's state and the walk's per-frame steps (shared by both backends)."""

    def __init__(self, key: bytes, redact_config: Callable[[str], str]) -> None:
        self.keyed = _Keyed(key)
        self.enc = msgspec.msgpack.Encoder()
        self.redact = redact_config
        self.records = self.dropped = self.written = 0
        self.redacted = False

    def header(self, body: bytes, src: str | os.PathLike[str]) -> bytes:
        """The first frame, re-encoded (ValueError when it is not a header)."""
        try:
            obj = msgspec.msgpack.decode(body)
        except (msgspec.DecodeError, RecursionError):
            obj = None
        if not isinstance(obj, dict) or obj.get("type") != "header":
            raise ValueError(f"{os.fspath(src)}: offset 0: not a .lct header frame")
        cfg = obj.get("sm_config_json")
        if isinstance(cfg, str) and cfg:
            clean = self.redact(cfg)
            if clean != cfg:
                obj["sm_config_json"] = clean
                obj["sm_config_digest"] = hashlib.sha256(clean.encode()).hexdigest()
                self.redacted = True
        if isinstance(obj.get("level_meta"), dict):
            obj["level_meta"] = self.keyed.walk(obj["level_meta"])
        return self.enc.encode(obj)

    def record(self, body: bytes | memoryview) -> bytes | None:
        """A later frame, walked and re-encoded; None (counted) when it is dropped."""
        try:
            obj = msgspec.msgpack.decode(body)
        except (msgspec.DecodeError, RecursionError):
            obj = None
        if not isinstance(obj, dict) or obj.get("type") != "record":
            self.dropped += 1
            return None
        try:
            obj["args"] = self.keyed.walk(obj.get("args"))
        except ValueError:
            self.dropped += 1
            return None
        self.records += 1
        return self.enc.encode(obj)

    def report(self) -> ScrubReport:
        k = self.keyed
        return ScrubReport(self.records, k.hashes, k.tokens, self.dropped, self.written,
                           self.redacted)


def scrub_trace(src: str | os.PathLike[str], dst: str | os.PathLike[str], key: bytes, *,
                redact_config: Callable[[str], str] = lambda s: s,
                backend: Backend | None = None) -> ScrubReport:
    """Write the scrubbed copy of `src` to `dst` (see the module docstring). Raises
    ValueError when `src` does not start with a readable header frame. Both backends
    write the same bytes and report the same counts."""
    run = _Run(key, redact_config)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        if resolve_backend(backend) == "native":
            _scrub_planned(fi, fo, run, src)
        else:
            _scrub_walk(fi, fo, run, src)
        fo.flush()
        os.fsync(fo.fileno())
    return run.report()


def _scrub_walk(fi: Any, fo: Any, run: _Run, src: str | os.PathLike[str]) -> None:
    """The pure-Python backend: every frame decoded, walked and re-encoded."""
    size = os.fstat(fi.fileno()).st_size
    first = True
    while True:
        prefix = fi.read(4)
        if not prefix:
            break
        if len(prefix) < 4:
            run.dropped += 1
            break
        (n,) = struct.unpack(">I", prefix)
        if n > MAX_FRAME or fi.tell() + n > size:
            run.dropped += 1
            break
        body = fi.read(n)
        if first:
            out = run.header(body, src)
            first = False
        else:
            got = run.record(body)
            if got is None:
                continue
            out = got
        fo.write(struct.pack(">I", len(out)) + out)
        run.written += 4 + len(out)


WINDOW = 16 << 20  # bytes of frames planned at once by the native backend


def _scrub_planned(fi: Any, fo: Any, run: _Run, src: str | os.PathLike[str]) -> None:
    """The native backend: the header and the slow frames through the walk, the fast
    frames copied a window at a time with their bins overwritten in place."""
    from inferguard._native._lct import NativeScrubPlanner

    window = WINDOW
    size = os.fstat(fi.fileno()).st_size
    prefix = fi.read(4)
    if not prefix:
        return
    if len(prefix) < 4:
        run.dropped += 1
        return
    (n,) = struct.unpack(">I", prefix)
    if n > MAX_FRAME or 4 + n > size:
        run.dropped += 1
        return
    _write(fo, run, run.header(fi.read(n), src))

    keyed = run.keyed
    planner = NativeScrubPlanner(keyed.key, _CACHE_MAX)
    window = max(1, min(window, size - 4 - n))  # a small trace: a small window
    buf = bytearray(window)  # the window: file bytes [boff, boff + filled)
    view = memoryview(buf)
    pos = boff = 4 + n       # pos: file offset of the next frame
    filled = 0
    try:
        while True:
            rel = pos - boff
            stop, end, nfast, nhashes, ntokens, slow = planner.plan(buf, rel, filled)
            if end > rel:
                # fast frames: patched in place (the same fingerprints as _Keyed.fp,
                # written in C); slow ones (never patched) through the walk
                planner.patch(buf)
                keyed.hashes += nhashes
                keyed.tokens += ntokens
                run.records += nfast
                at = rel
                for s in slow:
                    if s > at:
                        fo.write(view[at:s])
                        run.written += s - at
                    (m,) = struct.unpack_from(">I", buf, s)
                    at = s + 4 + m
                    _write(fo, run, run.record(view[s + 4:at]))
                if end > at:
                    fo.write(view[at:end])
                    run.written += end - at
                pos = boff + end
            if stop == _STOP_FULL:
                continue
            left = size - pos  # the walk's end rules, on what the window could not hold
            if left <= 0:
                return
            if left < 4:
                run.dropped += 1
                return
            have = boff + filled - pos
            if have >= 4:
                (m,) = struct.unpack_from(">I", buf, pos - boff)
                if m > MAX_FRAME or pos + 4 + m > size:
                    run.dropped += 1
                    return
                if 4 + m > window:  # larger than a window: alone, through the walk
                    fi.seek(pos + 4)
                    _write(fo, run, run.record(fi.read(m)))
                    pos += 4 + m
                    boff, filled = pos, 0
                    fi.seek(pos)
                    continue
            buf[:have] = bytes(view[pos - boff:pos - boff + have])  # the partial frame first
            got = fi.readinto(view[have:])
            if not got:  # the file shrank under us: what is left is a truncated tail
                run.dropped += 1
                return
            boff, filled = pos, have + got
    finally:
        view.release()


def _write(fo: Any, run: _Run, body: bytes | None) -> None:
    if body is not None:
        fo.write(struct.pack(">I", len(body)) + body)
        run.written += 4 + len(body)


_STOP_FULL = 2  # LCT_STOP_FULL


def config_of(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parsed `sm_config_json` of a trace's header (None when absent or not JSON)."""
    with open(path, "rb") as f:
        prefix = f.read(4)
        if len(prefix) < 4:
            return None
        body = f.read(min(struct.unpack(">I", prefix)[0], 64 << 20))
    try:
        h = msgspec.msgpack.decode(body)
        cfg = json.loads(h.get("sm_config_json") or "null")
    except (msgspec.DecodeError, ValueError, AttributeError):
        return None
    return cfg if isinstance(cfg, dict) else None
