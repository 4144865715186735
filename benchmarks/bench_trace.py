"""`.lct` summary speed: InferGuard (native, pure Python) against upstream's way of reading.

The reference does what `lmcache trace info` does: buffered length-prefixed reads, a typed
msgspec decode of every record (args included), a count per qualname and the max t_mono.
All three run in the same session on the same file; ratios are printed at the end and the
figures go to docs/performance.md. Sizes: INFERGUARD_BENCH_SCALE=smoke (CI: a few MB, no
claims) or full (default: 1 GiB for timing, 4 GiB for peak memory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from inferguard import native_available, summarize_trace

from .references import reference_trace_info
from .trace_gen import write_storage_trace

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
TIMING_BYTES = (4 << 20) if SCALE == "smoke" else (1 << 30)
RSS_BYTES = (8 << 20) if SCALE == "smoke" else (4 << 30)
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="session")
def big_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("lct") / "big.lct"
    records = write_storage_trace(path, TIMING_BYTES)
    return path, records


def record_mean(results: dict[str, float], name: str, benchmark: Any, size: int) -> None:
    """Keep a timed run's mean (for the same-run ratios) and its GB/s in the report."""
    if benchmark.stats is not None and benchmark.enabled:
        mean = benchmark.stats.stats.mean
        results[name] = mean
        benchmark.extra_info["GB_per_s"] = size / mean / 1e9


def _record(name: str, benchmark: Any, size: int) -> None:
    record_mean(RESULTS, name, benchmark, size)


def test_reference_trace_info(benchmark: Any, big_trace: tuple[Path, int]) -> None:
    path, records = big_trace
    total, _, _ = benchmark.pedantic(reference_trace_info, args=(path,), rounds=3, iterations=1)
    assert total == records
    _record("reference", benchmark, path.stat().st_size)


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_summary_native(benchmark: Any, big_trace: tuple[Path, int]) -> None:
    path, records = big_trace
    ref_total, ref_counts, ref_max = reference_trace_info(path) if SCALE == "smoke" else (
        records, None, None)
    s = benchmark.pedantic(summarize_trace, args=(path,), kwargs={"backend": "native"},
                           rounds=5, iterations=1, warmup_rounds=1)
    assert s.total_records == ref_total == records and s.integrity.ok
    if ref_counts is not None:
        assert {o.qualname: o.count for o in s.ops} == ref_counts
        assert s.duration_s == ref_max
    _record("native", benchmark, path.stat().st_size)


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_summary_native_one_thread(benchmark: Any, big_trace: tuple[Path, int],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.lct import _scan as _trace_scan

    monkeypatch.setattr(_trace_scan, "SCAN_THREADS", 1)
    path, records = big_trace
    s = benchmark.pedantic(summarize_trace, args=(path,), kwargs={"backend": "native"},
                           rounds=5, iterations=1, warmup_rounds=1)
    assert s.total_records == records and s.integrity.ok
    _record("native_one_thread", benchmark, path.stat().st_size)


def test_summary_python(benchmark: Any, big_trace: tuple[Path, int]) -> None:
    path, records = big_trace
    s = benchmark.pedantic(summarize_trace, args=(path,), kwargs={"backend": "python"},
                           rounds=3, iterations=1)
    assert s.total_records == records and s.integrity.ok
    _record("python", benchmark, path.stat().st_size)


def test_peak_rss(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Peak RSS of a fresh process summarising a large trace (bounded windows, not the file)."""
    path = tmp_path_factory.mktemp("lct-rss") / "huge.lct"
    write_storage_trace(path, RSS_BYTES, seed=11)
    # VmHWM: the child's own peak (ru_maxrss can report the forking parent's).
    code = ("import re, sys; from inferguard import summarize_trace; "
            "s = summarize_trace(sys.argv[1]); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
            "print(s.total_records, hwm)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()
    rss_mb = int(out[1]) / 1024
    print(f"\npeak RSS summarising {path.stat().st_size / 2**30:.2f} GiB: {rss_mb:.0f} MiB "
          f"({out[0]} records)")
    path.unlink()
    assert int(out[0]) > 0


def test_report_ratios() -> None:
    """Print the same-run ratios (only when timings were taken)."""
    if "reference" not in RESULTS:
        pytest.skip("benchmarks disabled: no timings to compare")
    ref = RESULTS["reference"]
    size = TIMING_BYTES
    lines = [f"file {size / 2**30:.2f} GiB; reference {ref:.3f}s ({size / ref / 1e9:.2f} GB/s)"]
    for name in ("native", "native_one_thread", "python"):
        if name in RESULTS:
            t = RESULTS[name]
            lines.append(f"{name}: {t:.3f}s ({size / t / 1e9:.2f} GB/s), "
                         f"{ref / t:.1f}x the reference")
    print("\n" + "\n".join(lines))
