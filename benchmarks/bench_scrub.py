"""Scrubbed-copy speed (issue #17): `scrub_trace` native (fast frames planned in C, bins
patched in place) and pure Python (the walk: every frame decoded and re-encoded) against a
plain copy of the same file, in the same session.

References: `shutil.copyfile` (what a raw copy costs) and copyfile + fsync (the scrub
fsyncs its output, so this is the like-for-like floor). Shapes: the default storage trace
(1-32 keys per call, a 512-record pool), the reuse shape (1-6 keys per call, 60% reuse:
many distinct hashes, so fingerprints are computed rather than looked up) and an
events-level trace (every frame has hex keys and salts: all frames take the walk on both
backends). Ratios are printed at the end; figures go to docs/performance-scrub.md.
Sizes: INFERGUARD_BENCH_SCALE=smoke (CI: a few MB, no claims) or full (256 MiB storage,
64 MiB events).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inferguard import native_available
from inferguard.lct._scrub import scrub_trace

from .trace_gen import write_events_trace, write_storage_trace

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
SMOKE = SCALE == "smoke"
STORAGE_BYTES = (4 << 20) if SMOKE else (256 << 20)
EVENTS_BYTES = (2 << 20) if SMOKE else (64 << 20)
KEY = b"bench-scrub-key-0123456789abcdef"
RESULTS: dict[tuple[str, str], tuple[float, float, float]] = {}
SHAPES: dict[str, Callable[[Path], int]] = {
    "storage": lambda p: write_storage_trace(p, STORAGE_BYTES),
    "storage_reuse": lambda p: write_storage_trace(p, STORAGE_BYTES, keys_per_call=(1, 6),
                                                   reuse=0.6),
    "events": lambda p: write_events_trace(p, EVENTS_BYTES),
}
native = pytest.mark.skipif(not native_available(), reason="native backend not built")


@pytest.fixture(scope="module", params=sorted(SHAPES))
def trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[str, Path, Path]:
    shape: str = request.param
    d = tmp_path_factory.mktemp(f"scrub-{shape}")
    path = d / "in.lct"
    SHAPES[shape](path)
    return shape, path, d / "out.lct"


def _record(shape: str, name: str, benchmark: Any, size: int) -> None:
    if benchmark.stats is not None and benchmark.enabled:
        st = benchmark.stats.stats
        RESULTS[(shape, name)] = (st.median, st.min, st.max)
        benchmark.extra_info["MB_per_s"] = size / st.median / 1e6


def _copy_fsync(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())


def test_copyfile(benchmark: Any, trace: tuple[str, Path, Path]) -> None:
    shape, path, out = trace
    benchmark.pedantic(shutil.copyfile, args=(path, out), rounds=5, iterations=1,
                       warmup_rounds=1)
    assert out.stat().st_size == path.stat().st_size
    _record(shape, "copyfile", benchmark, path.stat().st_size)


def test_copyfile_fsync(benchmark: Any, trace: tuple[str, Path, Path]) -> None:
    shape, path, out = trace
    benchmark.pedantic(_copy_fsync, args=(path, out), rounds=5, iterations=1, warmup_rounds=1)
    _record(shape, "copyfile_fsync", benchmark, path.stat().st_size)


@native
def test_scrub_native(benchmark: Any, trace: tuple[str, Path, Path]) -> None:
    shape, path, out = trace
    rep = benchmark.pedantic(scrub_trace, args=(path, out, KEY), kwargs={"backend": "native"},
                             rounds=5, iterations=1, warmup_rounds=1)
    assert rep.frames_dropped == 0 and rep.records > 0
    if SMOKE:  # the proof of identity at bench size stays in the tests; smoke checks it too
        ref = out.with_suffix(".walk")
        assert scrub_trace(path, ref, KEY, backend="python") == rep
        assert ref.read_bytes() == out.read_bytes()
    _record(shape, "native", benchmark, path.stat().st_size)


def test_scrub_python_walk(benchmark: Any, trace: tuple[str, Path, Path]) -> None:
    shape, path, out = trace
    rep = benchmark.pedantic(scrub_trace, args=(path, out, KEY), kwargs={"backend": "python"},
                             rounds=3, iterations=1)
    assert rep.frames_dropped == 0
    _record(shape, "python_walk", benchmark, path.stat().st_size)


def test_report_ratios() -> None:
    """Print the same-run figures and ratios (only when timings were taken)."""
    if not RESULTS:
        pytest.skip("benchmarks disabled: no timings to compare")
    lines = []
    for shape in sorted(SHAPES):
        got = {n: v for (s, n), v in RESULTS.items() if s == shape}
        if "copyfile" not in got:
            continue
        copy = got["copyfile"][0]
        lines.append(f"{shape}:")
        for name in ("copyfile", "copyfile_fsync", "native", "python_walk"):
            if name in got:
                med, lo, hi = got[name]
                lines.append(f"  {name:15s} median {med:.3f}s (min {lo:.3f}, max {hi:.3f}), "
                             f"{med / copy:.1f}x copyfile")
        if "native" in got and "python_walk" in got:
            lines.append(f"  walk / native: {got['python_walk'][0] / got['native'][0]:.1f}x")
    print("\n" + "\n".join(lines))
