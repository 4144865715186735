"""`.lct` trace analytics speed and memory: native vs pure Python vs upstream's way of reading.

The full analytics pass (`inferguard.analyze_trace`: scan, one row per ObjectKey,
per-key lifecycles, breakdowns, timeline, findings) runs on the generated storage trace of
bench_trace.py (benchmarks/trace_gen.py), timed in the same session as the reference loop
of upstream `lmcache trace info` (`reference_trace_info` from references.py), which only
counts records per qualname. `native` / `python`: the default, two threads (the scan a
chunk ahead of the fold); `*_one_thread`: INFERGUARD_SCAN_THREADS=1. Peak RSS is measured in
fresh processes, on the same kind of trace and on one where every key is new (so the exact
key table fills and sampling starts).

Two key shapes, each timed beside its own reference run: `pool_keys` (the scan benchmark's
trace, 8,603 distinct keys per GiB) and `many_keys` (trace_gen's `keys_per_call=(1, 6)`,
`reuse=0.6`: about 2.4 million distinct keys per GiB, past the default exact bound of
524,288, so the distinct counts are HyperLogLog estimates, as for a long-running server).

Sizes: INFERGUARD_BENCH_SCALE=smoke (CI: a few MB, no claims) or full (default: 1 GiB for
timing, 4 GiB for peak memory). Figures go to docs/performance.md.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferguard import native_available
from inferguard.lct._stats import analyze_trace
from tests import lct_writer as w

from .bench_trace import record_mean
from .references import reference_trace_info
from .trace_gen import _pool, stamp, write_frames, write_storage_trace

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
TIMING_BYTES = (4 << 20) if SCALE == "smoke" else (1 << 30)
RSS_BYTES = (8 << 20) if SCALE == "smoke" else (4 << 30)
RESULTS: dict[str, float] = {}
SHAPES = {"pool_keys": {}, "many_keys": {"keys_per_call": (1, 6), "reuse": 0.6}}
_HASH_AT = b"\xaachunk_hash\xc4\x20"


def write_unique_key_trace(path: Path, target_bytes: int, seed: int = 13) -> int:
    """Like write_storage_trace, but every ObjectKey in the file is a new key (the first 8
    bytes of each chunk hash are a counter): the worst case for the per-key tables."""
    rng = random.Random(seed)
    pool = [body for body, _ in _pool(rng, 512, (1, 32))]
    spots = []
    for body in pool:
        at, i = [], body.find(_HASH_AT)
        while i >= 0:
            at.append(i + len(_HASH_AT))
            i = body.find(_HASH_AT, i + 1)
        spots.append(at)

    def frames() -> Iterator[bytes]:
        t, counter = 0.0, 0
        while True:
            j = rng.randrange(len(pool))
            body = pool[j]
            t += rng.expovariate(2000.0)
            for at in spots[j]:
                counter += 1
                struct.pack_into(">Q", body, at, counter)
            yield stamp(body, t)

    head = w.frame(w.header(config={"chunk_size": 256}))
    return write_frames(path, head, frames(), target_bytes)


@pytest.fixture(scope="module", params=sorted(SHAPES))
def stats_trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Any:
    shape = request.param
    path = tmp_path_factory.mktemp("lct-stats") / f"{shape}.lct"
    records = write_storage_trace(path, TIMING_BYTES, **SHAPES[shape])  # type: ignore[arg-type]
    yield path, records, shape
    path.unlink()


def _record(name: str, benchmark: Any, size: int) -> None:
    record_mean(RESULTS, name, benchmark, size)


def test_reference_trace_info(benchmark: Any, stats_trace: tuple[Path, int, str]) -> None:
    path, records, shape = stats_trace
    total, _, _ = benchmark.pedantic(reference_trace_info, args=(path,), rounds=3, iterations=1)
    assert total == records
    _record(f"{shape}/reference", benchmark, path.stat().st_size)


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_stats_native(benchmark: Any, stats_trace: tuple[Path, int, str]) -> None:
    path, records, shape = stats_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": "native"},
                           rounds=5, iterations=1, warmup_rounds=1)
    s = a.stats
    assert s.summary.total_records == records and s.summary.integrity.ok
    assert s.keys.key_rows == s.summary.keys_total
    assert s.keys.exact == (shape == "pool_keys" or SCALE == "smoke")
    if SCALE == "smoke":  # both backends, same answer
        assert a.stats.keys == analyze_trace(path, backend="python").stats.keys
    _record(f"{shape}/native", benchmark, path.stat().st_size)


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_stats_native_one_thread(benchmark: Any, stats_trace: tuple[Path, int, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.lct import _scan as _trace_scan

    monkeypatch.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 1)  # INFERGUARD_SCAN_THREADS=1
    path, records, shape = stats_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": "native"},
                           rounds=3, iterations=1, warmup_rounds=1)
    assert a.stats.summary.total_records == records
    _record(f"{shape}/native_one_thread", benchmark, path.stat().st_size)


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_stats_native_numpy_fold(benchmark: Any, stats_trace: tuple[Path, int, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The native pass with the per-key fold and context matching in numpy / Python (the
    twin of native/lct_fold.c), as before the fold moved to C: what the C fold gains."""
    from inferguard.lct import _engine

    init = _engine.Keys.__init__

    def twin(self: Any, backend: Any, max_keys: int) -> None:
        init(self, backend, max_keys)
        self.native = None

    monkeypatch.setattr(_engine.Keys, "__init__", twin)
    contexts = _engine.Contexts
    monkeypatch.setattr(_engine, "Contexts", lambda backend: contexts("python"))
    path, records, shape = stats_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": "native"},
                           rounds=3, iterations=1)
    assert a.stats.summary.total_records == records
    _record(f"{shape}/native_numpy_fold", benchmark, path.stat().st_size)


def test_stats_python(benchmark: Any, stats_trace: tuple[Path, int, str]) -> None:
    path, records, shape = stats_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": "python"},
                           rounds=2 if SCALE == "full" else 3, iterations=1)
    assert a.stats.summary.total_records == records
    _record(f"{shape}/python", benchmark, path.stat().st_size)


def test_stats_python_one_thread(benchmark: Any, stats_trace: tuple[Path, int, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The pure-Python pass with no worker thread: what the scan a chunk ahead gains."""
    from inferguard.lct import _scan as _trace_scan

    monkeypatch.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 1)
    path, records, shape = stats_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": "python"},
                           rounds=2 if SCALE == "full" else 3, iterations=1)
    assert a.stats.summary.total_records == records
    _record(f"{shape}/python_one_thread", benchmark, path.stat().st_size)


@pytest.mark.parametrize("variant", ["rows_65536", "decoded"])
def test_stats_python_before(benchmark: Any, stats_trace: tuple[Path, int, str],
                             monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    """The pure-Python pass as it was before two changes, each alone: 65,536-row batches
    (`rows_65536`, against today's PYTHON_CHUNK_ROWS) and every record decoded by msgspec
    (`decoded`: the layout road `_frame._canonical_batch` turned off)."""
    from inferguard.lct import _frame, _scan

    if variant == "rows_65536":
        monkeypatch.setattr(_scan, "PYTHON_CHUNK_ROWS", 1 << 16)
    else:
        monkeypatch.setattr(_frame, "_canonical_batch", lambda *a: None)
    path, records, shape = stats_trace
    a = benchmark.pedantic(analyze_trace, args=(path,), kwargs={"backend": "python"},
                           rounds=2 if SCALE == "full" else 3, iterations=1)
    assert a.stats.summary.total_records == records
    _record(f"{shape}/python_{variant}", benchmark, path.stat().st_size)


_PEAK = """
import resource, sys
from inferguard import analyze_trace
s = analyze_trace(sys.argv[1]).stats
# VmHWM is this process's own peak; ru_maxrss can carry a big parent's peak over a fork.
hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")]
kib = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(s.summary.total_records, s.keys.distinct.value, int(s.keys.exact), kib)
"""


def _peak_rss(path: Path) -> tuple[int, float, bool, int]:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[3]) / 1024, out[2] == "1", int(out[1])


@pytest.mark.parametrize("kind", ["reused_keys", "many_keys", "unique_keys"])
def test_peak_rss(tmp_path_factory: pytest.TempPathFactory, kind: str) -> None:
    """Peak RSS of a fresh process running the full analytics on a large trace."""
    path = tmp_path_factory.mktemp("lct-stats-rss") / f"{kind}.lct"
    if kind == "reused_keys":
        write_storage_trace(path, RSS_BYTES, seed=11)
    elif kind == "many_keys":
        write_storage_trace(path, RSS_BYTES, seed=11, **SHAPES["many_keys"])  # type: ignore[arg-type]
    else:
        write_unique_key_trace(path, RSS_BYTES)
    records, rss_mb, exact, distinct = _peak_rss(path)
    print(f"\npeak RSS, analytics on {path.stat().st_size / 2**30:.2f} GiB ({kind}): "
          f"{rss_mb:.0f} MiB ({records} records, {distinct} distinct keys, "
          f"{'exact' if exact else 'sampled'})")
    path.unlink()
    assert records > 0
    if SCALE == "full":
        assert rss_mb < 256


def test_report_ratios() -> None:
    """Print the same-run ratios (only when timings were taken)."""
    if not any(k.endswith("/reference") for k in RESULTS):
        pytest.skip("benchmarks disabled: no timings to compare")
    size = TIMING_BYTES
    lines = []
    for shape in sorted(SHAPES):
        ref = RESULTS.get(f"{shape}/reference")
        if ref is None:
            continue
        lines.append(f"{shape}: file {size / 2**30:.2f} GiB; reference {ref:.3f}s "
                     f"({size / ref / 1e9:.2f} GB/s)")
        for name in ("native", "native_one_thread", "native_numpy_fold", "python",
                     "python_one_thread", "python_rows_65536", "python_decoded"):
            t = RESULTS.get(f"{shape}/{name}")
            if t is not None:
                lines.append(f"  analytics {name}: {t:.3f}s ({size / t / 1e9:.2f} GB/s), "
                             f"{ref / t:.2f}x the reference")
    print("\n" + "\n".join(lines))
