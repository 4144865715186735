"""Events-level (`--trace-level events`) decoding and analytics: native C vs msgspec.

On a generated events trace (benchmarks/trace_gen.py `write_events_trace`: the 0.5.x
coordinator sink's CacheEventBatch wire form, 32 entries per batch), in the same run:

* decode: every events.batch record, by the C decoder (`lct_events_decode`: fields,
  entry count, size sum and each key's fingerprint) vs msgspec decoding the same records
  into the typed structs (the Python road, without its fingerprinting: a conservative
  reference);
* analytics: `analyze_trace` (scan, events fold, timeline, findings) on both backends.

Two shapes: `no_tokens` (entries without token ids, as the real 0.5.6 L2 capture) and
`tokens_256` (256 token ids per entry). INFERGUARD_BENCH_SCALE=smoke (CI) or full
(default: 256 MiB). Figures go to docs/performance.md.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferguard import native_available
from inferguard.lct._stats import analyze_trace

from .bench_trace import record_mean
from .trace_gen import write_events_trace

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
BYTES = (4 << 20) if SCALE == "smoke" else (256 << 20)
SHAPES: dict[str, dict[str, Any]] = {"no_tokens": {}, "tokens_256": {"token_ids": 256}}
RESULTS: dict[str, float] = {}
needs_native = pytest.mark.skipif(not native_available(), reason="native backend not built")


def _batch_frames(data: Any) -> tuple[np.ndarray, np.ndarray]:
    off, ln = [], []
    pos = 4 + struct.unpack_from(">I", data, 0)[0]
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        if b"\xacevents.batch" in data[pos + 4:pos + 84]:
            off.append(pos)
            ln.append(n)
        pos += 4 + n
    return np.array(off, np.int64), np.array(ln, np.uint32)


@pytest.fixture(scope="module", params=sorted(SHAPES))
def events_trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Any:
    shape = request.param
    path = tmp_path_factory.mktemp("lct-events") / f"{shape}.lct"
    records = write_events_trace(path, BYTES, **SHAPES[shape])
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        off, ln = _batch_frames(m)
    yield path, records, shape, off, ln
    path.unlink()


def _native_decode(path: Path, off: np.ndarray, ln: np.ndarray) -> int:
    from inferguard._native._lct import NativeEventsDecoder

    n = 0
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for rows, _ in NativeEventsDecoder().decode(m, 0, off, ln):
            n += int(rows[:, 0].sum())
        del rows
    return n


def _msgspec_decode(path: Path, off: np.ndarray, ln: np.ndarray) -> int:
    from inferguard.lct._events import _DEC_BATCH, _DEC_REC

    n = 0
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for o, k in zip(off.tolist(), ln.tolist(), strict=True):
            _DEC_BATCH(_DEC_REC(m[o + 4:o + 4 + k]).args)
            n += 1
    return n


@needs_native
def test_decode_native(benchmark: Any, events_trace: Any) -> None:
    path, _, shape, off, ln = events_trace
    got = benchmark.pedantic(_native_decode, args=(path, off, ln), rounds=5, iterations=1,
                             warmup_rounds=1)
    assert got == len(off)  # every generated batch is decoded in C
    record_mean(RESULTS, f"{shape}/decode_native", benchmark, path.stat().st_size)


def test_decode_msgspec(benchmark: Any, events_trace: Any) -> None:
    path, _, shape, off, ln = events_trace
    got = benchmark.pedantic(_msgspec_decode, args=(path, off, ln), rounds=3, iterations=1)
    assert got == len(off)
    record_mean(RESULTS, f"{shape}/decode_msgspec", benchmark, path.stat().st_size)


@pytest.mark.parametrize("backend", ["native", "python"])
def test_analytics(benchmark: Any, events_trace: Any, backend: str) -> None:
    if backend == "native" and not native_available():
        pytest.skip("native backend not built")
    path, records, shape, off, _ = events_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": backend},
                           rounds=3, iterations=1)
    e = a.stats.events
    assert a.stats.summary.total_records == records and e is not None
    assert e.batches == len(off) and e.undecodable_records == 0
    record_mean(RESULTS, f"{shape}/analytics_{backend}", benchmark, path.stat().st_size)


def test_report_ratios() -> None:
    """Print the same-run ratios (only when timings were taken)."""
    if not RESULTS:
        pytest.skip("benchmarks disabled: no timings to compare")
    lines = []
    for shape in sorted(SHAPES):
        for kind, ref, new in (("decode", "decode_msgspec", "decode_native"),
                               ("analytics", "analytics_python", "analytics_native")):
            r, n = RESULTS.get(f"{shape}/{ref}"), RESULTS.get(f"{shape}/{new}")
            if r is None or n is None:
                continue
            lines.append(f"{shape} {kind}: {BYTES / 2**20:.0f} MiB; {ref} {r:.3f}s "
                         f"({BYTES / r / 1e9:.2f} GB/s), {new} {n:.3f}s "
                         f"({BYTES / n / 1e9:.2f} GB/s): {r / n:.1f}x")
    print("\n" + "\n".join(lines))
