"""Write large, realistic storage-level .lct traces quickly, for benchmarks.

A pool of distinct records (mixed StorageManager ops, 1-32 keys per call, 32-byte hashes,
0.5.x argument shapes) is encoded once with the test encoder; the file is then streamed
from that pool with fresh, increasing timestamps patched into each copy.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator
from pathlib import Path

from tests import lct_writer as w

OPS = ["submit_prefetch_task", "reserve_write", "finish_write",
       "read_prefetched_results.__enter__", "read_prefetched_results.__exit__",
       "finish_read_prefetched"]
# Offsets of the t_mono / t_wall float64 payloads in a record body written as
# {"type": "record", "t_mono": f64, "t_wall": f64, ...}.
_T_MONO = 1 + 5 + 7 + 7 + 1
_T_WALL = _T_MONO + 8 + 7 + 1


_M64 = (1 << 64) - 1
_GOLD = 0x9E3779B97F4A7C15
_HASH = struct.Struct(">4Q")
_LEN = struct.Struct(">I")
_FLUSH = 1 << 22  # bytes buffered per write


def stamp(body: bytearray, t: float) -> bytes:
    """A pool record framed with fresh timestamps (t_mono `t`, t_wall 1.8e9 + `t`)."""
    struct.pack_into(">d", body, _T_MONO, t)
    struct.pack_into(">d", body, _T_WALL, 1_800_000_000.0 + t)
    return _LEN.pack(len(body)) + body


def write_frames(path: Path, head: bytes, frames: Iterator[bytes], target_bytes: int, *,
                 exact: bool = False) -> int:
    """Write `head`, then frames taken from `frames` in 4 MiB writes, until the file holds
    `target_bytes`: checked at each write (up to one buffer more), or with `exact` after
    each frame. Returns the number of frames taken. One loop for every generator."""
    taken = 0
    with path.open("wb") as f:
        f.write(head)
        written = len(head)
        buf = bytearray()
        while (written + len(buf) if exact else written) < target_bytes:
            buf += next(frames)
            taken += 1
            if len(buf) >= _FLUSH:
                f.write(buf)
                written += len(buf)
                buf.clear()
        f.write(buf)
    return taken


def _pool(rng: random.Random, n: int, keys_per_call: tuple[int, int]
          ) -> list[tuple[bytearray, list[int]]]:
    """Pool records, each with the body offsets of its keys' 32-byte chunk hashes."""
    pool = []
    for i in range(n):
        op = rng.choice(OPS)  # drawn before the key count: the default trace stays as it was
        nkeys = rng.randint(*keys_per_call)
        body = bytearray(w.storage_record(op, nkeys, 0.0, first_key=i * 64))
        assert body[_T_MONO - 1] == 0xCB and body[_T_WALL - 1] == 0xCB
        hashes = [body.find(hashlib.sha256(str(i * 64 + k).encode()).digest())
                  for k in range(nkeys)]
        assert min(hashes, default=0) > 0
        pool.append((body, hashes))
    return pool


def write_storage_trace(path: Path, target_bytes: int, seed: int = 7, *,
                        keys_per_call: tuple[int, int] = (1, 32),
                        reuse: float | None = None) -> int:
    """Write a trace of at least `target_bytes`; returns the number of records. With
    `reuse`, every key row is an earlier key with that probability, else a new key."""
    rng = random.Random(seed)
    pool = _pool(rng, 512, keys_per_call)

    def frames() -> Iterator[bytes]:
        t = 0.0
        keys = 0  # distinct keys so far (ids 0..keys-1)
        while True:
            body, hashes = pool[rng.randrange(len(pool))]
            t += rng.expovariate(2000.0)
            if reuse is not None:
                for off in hashes:
                    if keys and rng.random() < reuse:
                        k = rng.randrange(keys)
                    else:
                        k = keys
                        keys += 1
                    a = (k * _GOLD + 1) & _M64
                    _HASH.pack_into(body, off, a, a ^ 0x5555, a ^ 0xAAAA, k)
            yield stamp(body, t)

    head = w.frame(w.header(config={"chunk_size": 256, "l1_size_gb": 64}))
    return write_frames(path, head, frames(), target_bytes)


def write_events_trace(path: Path, target_bytes: int, seed: int = 11, *,
                       entries_per_batch: int = 32, token_ids: int = 0,
                       reuse: float = 0.6) -> int:
    """Write an events-level trace (`--trace-level events`) of at least `target_bytes`;
    returns the number of records. Batches as the 0.5.x coordinator sink writes them (the
    CacheEventBatch wire form, `entries_per_batch` entries of `token_ids` token ids each):
    L1 stores of new keys (or, with probability `reuse`, accesses of earlier ones), L2
    write-through of part of them, L1 evictions (deletes), and an occasional restart."""
    import msgspec

    rng = random.Random(seed)
    enc = msgspec.msgpack.Encoder()
    t = 0.0
    records = 0
    keys = 0
    seq = 0
    inc = 1
    toks = list(range(1000, 1000 + token_ids))

    def entry(k: int, size: int) -> dict[str, object]:
        return {"key": {"chunk_hash_hex": hashlib.sha256(k.to_bytes(8, "little")).hexdigest(),
                        "model_name": "Qwen/Qwen3-8B", "kv_rank": 0x01000100,
                        "object_group_id": 0, "cache_salt": ""},
                "size_bytes": size, "token_ids": toks, "token_offset": -1}

    def rec(qualname: str, args: dict[str, object]) -> bytes:
        nonlocal records
        records += 1
        body = enc.encode({"type": "record", "t_mono": t, "t_wall": 1_800_000_000.0 + t,
                           "qualname": qualname, "args": args})
        return _LEN.pack(len(body)) + body

    def life(phase: str) -> bytes:
        args: dict[str, object] = {"phase": phase, "instance_id": "lmcache-0"}
        if phase == "start":
            args |= {"incarnation": inc, "ip": "10.0.0.7", "http_port": 8000, "mq_port": 5555}
        return rec("events.lifecycle", args)

    def batch(etype: str, tier: str, backend: str, ks: list[int], size: int) -> bytes:
        nonlocal seq
        seq += 1
        return rec("events.batch", {
            "instance_id": "lmcache-0", "incarnation": inc, "seq": seq, "event_type": etype,
            "tier": tier, "backend": backend, "entries": [entry(k, size) for k in ks],
            "shared": False, "ts": 1_800_000_000.0 + t, "capacity_bytes": 64 << 30,
            "capacity_revision": 0})

    def frames() -> Iterator[bytes]:
        nonlocal t, keys, inc
        while True:
            t += rng.expovariate(200.0)
            n = entries_per_batch
            r = rng.random()
            if r < 0.005:  # a restart
                stop = life("stop")
                inc += 1
                yield stop + life("start")
            elif keys and r < 0.005 + reuse * 0.5:
                yield batch("access", "l1", "", [rng.randrange(keys) for _ in range(n)], 0)
            elif keys > n and r < 0.75:
                lo = rng.randrange(max(1, keys - 4 * n), keys)
                tier, be, et = rng.choice([("l2", "fs", "store"), ("l1", "dram", "delete")])
                yield batch(et, tier, be, [min(keys - 1, lo + i) for i in range(n)], 1 << 21)
            else:
                out = batch("store", "l1", "dram", list(range(keys, keys + n)), 1 << 21)
                keys += n
                yield out

    meta = {"instance_id": "lmcache-0", "cache_event_schema_version": 1,
            "lmcache_version": "0.5.6"}
    head = w.frame(w.header(level="events", level_meta=meta,
                            config={"chunk_size": 256, "l1_size_gb": 64})) + life("start")
    write_frames(path, head, frames(), target_bytes, exact=True)
    return records
