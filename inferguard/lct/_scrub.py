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
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from typing import Any

import msgspec

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


def scrub_trace(src: str | os.PathLike[str], dst: str | os.PathLike[str], key: bytes, *,
                redact_config: Callable[[str], str] = lambda s: s) -> ScrubReport:
    """Write the scrubbed copy of `src` to `dst` (see the module docstring). Raises
    ValueError when `src` does not start with a readable header frame."""
    keyed = _Keyed(key)
    enc = msgspec.msgpack.Encoder()
    records = dropped = written = 0
    redacted = False
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        first = True
        while True:
            prefix = fi.read(4)
            if not prefix:
                break
            if len(prefix) < 4:
                dropped += 1
                break
            (n,) = struct.unpack(">I", prefix)
            if n > MAX_FRAME or fi.tell() + n > size:
                dropped += 1
                break
            body = fi.read(n)
            try:
                obj = msgspec.msgpack.decode(body)
            except (msgspec.DecodeError, RecursionError):
                obj = None
            if first:
                if not isinstance(obj, dict) or obj.get("type") != "header":
                    raise ValueError(f"{os.fspath(src)}: offset 0: not a .lct header frame")
                cfg = obj.get("sm_config_json")
                if isinstance(cfg, str) and cfg:
                    clean = redact_config(cfg)
                    if clean != cfg:
                        obj["sm_config_json"] = clean
                        obj["sm_config_digest"] = hashlib.sha256(clean.encode()).hexdigest()
                        redacted = True
                if isinstance(obj.get("level_meta"), dict):
                    obj["level_meta"] = keyed.walk(obj["level_meta"])
                first = False
            elif not isinstance(obj, dict) or obj.get("type") != "record":
                dropped += 1
                continue
            else:
                try:
                    obj["args"] = keyed.walk(obj.get("args"))
                except ValueError:
                    dropped += 1
                    continue
                records += 1
            out = enc.encode(obj)
            fo.write(struct.pack(">I", len(out)) + out)
            written += 4 + len(out)
        fo.flush()
        os.fsync(fo.fileno())
    return ScrubReport(records, keyed.hashes, keyed.tokens, dropped, written, redacted)


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
