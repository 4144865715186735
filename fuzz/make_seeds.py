"""Write seed corpora for the fuzz harnesses from the repo's real fixtures.

    python fuzz/make_seeds.py OUTDIR   ->  OUTDIR/lct/*, OUTDIR/prom/*
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import lct_writer as w  # noqa: E402

FIX = ROOT / "tests" / "fixtures"


def _put(d: Path, data: bytes) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def lct_seeds(out: Path) -> None:
    for p in sorted(FIX.rglob("*.lct")):
        data = p.read_bytes()
        _put(out, data[:4096])
        pos = 0
        while pos + 4 <= len(data):  # every frame body, and the frame itself
            (n,) = struct.unpack_from(">I", data, pos)
            _put(out, data[pos + 4:pos + 4 + n])
            _put(out, data[pos:pos + 4 + n])
            pos += 4 + n
    for variant in ("v0", "schema1", "schema2"):
        _put(out, w.trace(w.storage_record("reserve_write", 3, 1.0), head=w.header(variant)))
    _put(out, w.trace(w.record("events.lifecycle", {"phase": "start", "instance_id": "a"},
                               0.0, 1.0), head=w.header(level="events",
                                                        level_meta={"instance_id": "a"})))
    entries = [{"key": {"chunk_hash_hex": f"{k:064x}", "model_name": "m", "kv_rank": 0,
                        "object_group_id": 0, "cache_salt": "s" if k & 1 else None},
                "size_bytes": 4096, "token_ids": [1, 2], "token_offset": -1} for k in range(3)]
    _put(out, w.trace(w.record("events.batch", {
        "instance_id": "a", "incarnation": 1, "seq": 1, "event_type": "store", "tier": "l1",
        "backend": "dram", "entries": entries, "shared": False, "ts": 1.0,
        "capacity_bytes": 10, "capacity_revision": 0}, 0.5, 1.5),
        head=w.header(level="events", level_meta={"instance_id": "a"})))
    for op in ("submit_prefetch_task", "finish_read_prefetched", "finish_write"):
        _put(out, w.frame(w.storage_record(op, 2, 0.5)))


def prom_seeds(out: Path) -> None:
    for p in sorted(FIX.rglob("*.txt")) + sorted(FIX.rglob("*.prom")):
        data = p.read_bytes()
        if b"# TYPE" not in data and b"# HELP" not in data:
            continue
        for fmt in (b"\x00", b"\x01"):
            _put(out, fmt + data[:8192])
    _put(out, b"\x01# TYPE a counter\n# UNIT a seconds\na_total{x=\"\\\\\\n\\\"\"} 1 "
              b"# {t=\"1\"} 2 3\n# EOF\n")
    _put(out, b"\x00m{a=\"b\"} +Inf 123\nm NaN\n# HELP m \\n help\n")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    lct_seeds(out / "lct")
    prom_seeds(out / "prom")
    print(f"seeds: {len(list((out / 'lct').iterdir()))} lct, "
          f"{len(list((out / 'prom').iterdir()))} prom")
