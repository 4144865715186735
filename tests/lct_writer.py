"""A small .lct encoder written from the format reference, for tests only.

It follows msgspec's encoding rules as the reference states them (maps in insertion order,
smallest int forms, floats always float64, bytes as bin, str as fixstr/str8/16/32) so the
files it writes are what upstream would write, without importing upstream.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

STORAGE_PREFIX = "lmcache.v1.distributed.storage_manager.StorageManager."


def pack(v: Any) -> bytes:
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if v >= 0:
            for code, fmt, lim in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                                   (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
                if v < lim:
                    return bytes([code]) + struct.pack(fmt, v)
        for code, fmt, lim in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                               (0xD2, ">i", 1 << 31), (0xD3, ">q", 1 << 63)):
            if -lim <= v:
                return bytes([code]) + struct.pack(fmt, v)
        raise OverflowError(v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        return _sized(len(b), 0xA0, 31, (0xD9, 0xDA, 0xDB)) + b
    if isinstance(v, (bytes, bytearray)):
        return _sized(len(v), None, 0, (0xC4, 0xC5, 0xC6)) + bytes(v)
    if isinstance(v, (list, tuple)):
        return _sized(len(v), 0x90, 15, (None, 0xDC, 0xDD)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return _sized(len(v), 0x80, 15, (None, 0xDE, 0xDF)) + b"".join(
            pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def _sized(n: int, fix: int | None, fixmax: int, codes: tuple[int | None, int, int]) -> bytes:
    if fix is not None and n <= fixmax:
        return bytes([fix | n])
    c8, c16, c32 = codes
    if c8 is not None and n < 1 << 8:
        return bytes([c8, n])
    if n < 1 << 16:
        return bytes([c16]) + struct.pack(">H", n)
    return bytes([c32]) + struct.pack(">I", n)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def wrap(tag: str, v: Any) -> dict[str, Any]:
    return {"__t__": tag, "v": v}


def object_key(i: int, model: str = "test-model", kv_rank: int = 0x01000100,
               hash_len: int = 32, salt: str | None = None) -> dict[str, Any]:
    v: dict[str, Any] = {"chunk_hash": hashlib.sha256(str(i).encode()).digest()[:hash_len],
                         "model_name": model, "kv_rank": kv_rank, "object_group_id": 0}
    if salt is not None:
        v["cache_salt"] = salt
    return wrap("ObjectKey", v)


def layout() -> dict[str, Any]:
    return wrap("MemoryLayoutDesc", {"shapes": [[2, 2, 16, 32]], "dtypes": ["torch.float16"]})


def header(variant: str = "schema1", level: str = "storage", config: dict[str, Any] | None = None,
           magic: bytes = b"LMCT", level_meta: dict[str, Any] | None = None,
           t_mono_start: float = 100.0, t_wall_start: float = 1_800_000_000.0) -> bytes:
    """Header body for one of the upstream variants: v0, schema1, schema2."""
    cfg = json.dumps(config, sort_keys=True) if config is not None else ""
    digest = hashlib.sha256(cfg.encode()).hexdigest() if cfg else ""
    h: dict[str, Any] = {"type": "header", "magic": magic, "format_version": 1, "level": level}
    if variant == "v0":
        h["lmcache_version"] = "0.3.9"
    else:
        h["trace_schema_version"] = int(variant.removeprefix("schema"))
    h.update({"t_mono_start": t_mono_start, "t_wall_start": t_wall_start,
              "sm_config_json": cfg, "sm_config_digest": digest})
    if level_meta:
        h["level_meta"] = level_meta
    return pack(h)


def record(qualname: str, args: dict[str, Any], t_mono: float, t_wall: float) -> bytes:
    return pack({"type": "record", "t_mono": t_mono, "t_wall": t_wall, "qualname": qualname,
                 "args": args})


def storage_record(op: str, nkeys: int, t: float, first_key: int = 0) -> bytes:
    keys = [object_key(first_key + k) for k in range(nkeys)]
    args: dict[str, Any]
    if op == "reserve_write":
        args = {"keys": keys, "layout_desc": layout(), "mode": "new"}
    elif op == "submit_prefetch_task":
        group = wrap("GroupedObjectKeys", {"keys": keys, "object_group_id": 0,
                                           "layout_desc": layout(), "sliding_window_size": -1})
        args = {"spec": wrap("PrefetchTaskSpec", {"key_groups": [group], "num_kv_readers": 1,
                                                  "fetching_policy": "prefix",
                                                  "lock_mode": wrap("PrefetchLockMode", "LOCK")}),
                "external_request_id": f"req-{first_key}", "skip_l2": False}
    elif op == "finish_read_prefetched":
        args = {"keys": keys, "num_kv_readers": 1}
    else:
        args = {"keys": keys}
    return record(STORAGE_PREFIX + op, args, t, 1_800_000_000.0 + t)


def trace(*bodies: bytes, head: bytes | None = None) -> bytes:
    return frame(header() if head is None else head) + b"".join(frame(b) for b in bodies)
