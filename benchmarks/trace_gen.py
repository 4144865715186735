"""Write large, realistic storage-level .lct traces quickly, for benchmarks.

A pool of distinct records (mixed StorageManager ops, 1-32 keys per call, 32-byte hashes,
0.5.x argument shapes) is encoded once with the test encoder; the file is then streamed
from that pool with fresh, increasing timestamps patched into each copy.
"""

from __future__ import annotations

import hashlib
import random
import struct
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
    t = 0.0
    records = 0
    keys = 0  # distinct keys so far (ids 0..keys-1)
    with path.open("wb") as f:
        f.write(w.frame(w.header(config={"chunk_size": 256, "l1_size_gb": 64})))
        written = f.tell()
        buf = bytearray()
        while written < target_bytes:
            body, hashes = pool[rng.randrange(len(pool))]
            t += rng.expovariate(2000.0)
            struct.pack_into(">d", body, _T_MONO, t)
            struct.pack_into(">d", body, _T_WALL, 1_800_000_000.0 + t)
            if reuse is not None:
                for off in hashes:
                    if keys and rng.random() < reuse:
                        k = rng.randrange(keys)
                    else:
                        k = keys
                        keys += 1
                    a = (k * _GOLD + 1) & _M64
                    _HASH.pack_into(body, off, a, a ^ 0x5555, a ^ 0xAAAA, k)
            buf += struct.pack(">I", len(body))
            buf += body
            records += 1
            if len(buf) >= 1 << 22:
                f.write(buf)
                written += len(buf)
                buf.clear()
        f.write(buf)
    return records
