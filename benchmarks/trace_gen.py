"""Write large, realistic storage-level .lct traces quickly, for benchmarks.

A pool of distinct records (mixed StorageManager ops, 1-32 keys per call, 32-byte hashes,
0.5.x argument shapes) is encoded once with the test encoder; the file is then streamed
from that pool with fresh, increasing timestamps patched into each copy.
"""

from __future__ import annotations

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


def _pool(rng: random.Random, n: int) -> list[bytearray]:
    pool = []
    for i in range(n):
        body = bytearray(w.storage_record(rng.choice(OPS), rng.randint(1, 32), 0.0,
                                          first_key=i * 64))
        assert body[_T_MONO - 1] == 0xCB and body[_T_WALL - 1] == 0xCB
        pool.append(body)
    return pool


def write_storage_trace(path: Path, target_bytes: int, seed: int = 7) -> int:
    """Write a trace of at least `target_bytes`; returns the number of records."""
    rng = random.Random(seed)
    pool = _pool(rng, 512)
    t = 0.0
    records = 0
    with path.open("wb") as f:
        f.write(w.frame(w.header(config={"chunk_size": 256, "l1_size_gb": 64})))
        written = f.tell()
        buf = bytearray()
        while written < target_bytes:
            body = pool[rng.randrange(len(pool))]
            t += rng.expovariate(2000.0)
            struct.pack_into(">d", body, _T_MONO, t)
            struct.pack_into(">d", body, _T_WALL, 1_800_000_000.0 + t)
            buf += struct.pack(">I", len(body))
            buf += body
            records += 1
            if len(buf) >= 1 << 22:
                f.write(buf)
                written += len(buf)
                buf.clear()
        f.write(buf)
    return records
