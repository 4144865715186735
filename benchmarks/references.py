"""The references the whole-command benchmarks are measured against, runnable as commands
(`python -m benchmarks.references trace-info FILE` / `prom-parse FILE...`), so a reference
pays its start-up like the InferGuard command beside it.

`trace-info` does what upstream `lmcache trace info` does (written from the format docs):
buffered length-prefixed reads, a typed msgspec decode of every record, a count per
qualname and the max t_mono. `prom-parse` is prometheus_client's parser given the decoded
text, consumed to the end: parsing alone, no summary.
"""

from __future__ import annotations

import struct
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec


class _Header(msgspec.Struct, tag="header"):
    magic: bytes
    format_version: int
    level: str
    trace_schema_version: int
    t_mono_start: float
    t_wall_start: float
    sm_config_json: str
    sm_config_digest: str
    level_meta: dict[str, Any] = {}


class _Record(msgspec.Struct, tag="record"):
    t_mono: float
    t_wall: float
    qualname: str
    args: dict[str, Any]


def reference_trace_info(path: Path) -> tuple[int, dict[str, int], float]:
    """What upstream's reader and `trace info` do per record."""
    dec_header = msgspec.msgpack.Decoder(_Header)
    dec_record = msgspec.msgpack.Decoder(_Record)
    counts: Counter[str] = Counter()
    max_mono = 0.0
    with path.open("rb") as f:
        (n,) = struct.unpack(">I", f.read(4))
        dec_header.decode(f.read(n))
        while True:
            prefix = f.read(4)
            if len(prefix) < 4:
                break
            (n,) = struct.unpack(">I", prefix)
            body = f.read(n)
            if len(body) < n:
                break
            rec = dec_record.decode(body)
            counts[rec.qualname] += 1
            max_mono = max(max_mono, rec.t_mono)
    return sum(counts.values()), dict(counts), max_mono


def prometheus_client_parse(path: Path) -> int:
    """Samples in the file, by prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = path.read_text("utf-8")
    return sum(len(m.samples) for m in text_string_to_metric_families(text))


def main(argv: list[str]) -> int:
    what, path = argv[0], Path(argv[1])
    if what == "trace-info":
        total, counts, max_mono = reference_trace_info(path)
        print(f"total_records: {total}  duration: {max_mono:.3f}s")
        for q, n in sorted(counts.items()):
            print(f"  {q}: {n}")
    elif what == "prom-parse":  # one file or more, each parsed in turn
        print(sum(prometheus_client_parse(Path(p)) for p in argv[1:]))
    else:
        print(f"unknown reference {what!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
