"""Prometheus text parsing speed: InferGuard (native, pure Python) against prometheus_client.

One generated text 0.0.4 exposition (`tests/prom_gen.py`: vLLM- and LMCache-style counters,
gauges and 17-bucket histograms over hundreds of label sets per family, about 90,000
samples and 10 MB at full size) is parsed in the same session by
`prometheus_client.parser.text_string_to_metric_families` (given a decoded str, consumed to
the end), by `parse_text(..., backend="native")` and by `parse_text(..., backend="python")`
(given the bytes, as read from a file). Ratios are printed at the end; the figures go to
docs/performance.md. Size: INFERGUARD_BENCH_SCALE=smoke (CI: small, no claims), full
(default), or a number of label sets per family.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferguard import native_available, parse_text
from tests.prom_gen import generate_exposition

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
LABEL_SETS = 20 if SCALE == "smoke" else 600 if SCALE == "full" else int(SCALE)
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def exposition() -> tuple[bytes, str, int]:
    data = generate_exposition(LABEL_SETS, seed=1)
    text = data.decode()
    samples = sum(len(m.samples) for m in text_string_to_metric_families(text))
    if SCALE == "full":
        assert len(data) >= 8_000_000 and samples >= 80_000, (len(data), samples)
    return data, text, samples


def _record(name: str, benchmark: Any, size: int) -> None:
    if benchmark.stats is not None and benchmark.enabled:
        mean = benchmark.stats.stats.mean
        RESULTS[name] = mean
        benchmark.extra_info["MB_per_s"] = size / mean / 1e6


def _pc_parse(text: str) -> int:
    return sum(len(m.samples) for m in text_string_to_metric_families(text))


def test_prometheus_client(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    data, text, samples = exposition
    got = benchmark.pedantic(_pc_parse, args=(text,), rounds=3, iterations=1)
    assert got == samples
    _record("prometheus_client", benchmark, len(data))


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_parse_native(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    data, _, samples = exposition
    exp = benchmark.pedantic(parse_text, args=(data,), kwargs={"backend": "native"},
                             rounds=20, iterations=1, warmup_rounds=2)
    assert len(exp) == samples and exp.ok and exp.backend == "native"
    _record("native", benchmark, len(data))


def test_parse_python(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    data, _, samples = exposition
    exp = benchmark.pedantic(parse_text, args=(data,), kwargs={"backend": "python"},
                             rounds=5, iterations=1, warmup_rounds=1)
    assert len(exp) == samples and exp.ok and exp.backend == "python"
    _record("python", benchmark, len(data))


def _parse_and_build(data: bytes) -> int:
    return sum(len(f.samples) for f in parse_text(data, backend="native").families)


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_parse_native_with_objects(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    """Native parse plus every MetricFamily/Sample object (what prometheus_client builds)."""
    data, _, samples = exposition
    got = benchmark.pedantic(_parse_and_build, args=(data,), rounds=5, iterations=1,
                             warmup_rounds=1)
    assert got == samples
    _record("native_objects", benchmark, len(data))


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_numpy_view(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    """Native parse plus the numpy series view (keys for cross-snapshot alignment)."""
    data, _, samples = exposition
    view = benchmark.pedantic(lambda: parse_text(data, backend="native").to_numpy(),
                              rounds=5, iterations=1, warmup_rounds=1)
    assert len(view.values) == samples
    _record("native_numpy", benchmark, len(data))


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_summary_work(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    """The work of `inferguard metrics summary`: native parse plus the summary."""
    data, _, samples = exposition
    s = benchmark.pedantic(lambda: parse_text(data, backend="native").summary(),
                           rounds=10, iterations=1, warmup_rounds=1)
    assert s.samples == samples
    _record("summary_work", benchmark, len(data))


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_compat_work(benchmark: Any, exposition: tuple[bytes, str, int]) -> None:
    """The work of `inferguard lmcache-compat --engine-metrics-file`: the scrape read as
    evidence (parse, summary, per-family stats) and the whole judgement of the packet."""
    from inferguard import Packet, PacketSettings, judge_packet
    from inferguard.evidence import EvidenceSource
    from inferguard.evidence._metrics import read_metrics_bytes

    data, _, _ = exposition

    def work() -> Any:
        ev = read_metrics_bytes(data, EvidenceSource(path="scrape.prom"), "engine_metrics")
        return judge_packet(Packet(settings=PacketSettings(), evidence=[ev]))

    v = benchmark.pedantic(work, rounds=5, iterations=1, warmup_rounds=1)
    assert v.report.evidence
    _record("compat_work", benchmark, len(data))


def test_report_ratios(exposition: tuple[bytes, str, int]) -> None:
    """Print the same-run ratios (only when timings were taken)."""
    if "prometheus_client" not in RESULTS:
        pytest.skip("benchmarks disabled: no timings to compare")
    data, _, samples = exposition
    ref = RESULTS["prometheus_client"]
    lines = [f"exposition {len(data) / 1e6:.2f} MB, {samples} samples, {LABEL_SETS} label sets"
             f"; prometheus_client {ref * 1e3:.1f} ms"]
    for name in ("native", "python", "native_objects", "native_numpy", "summary_work",
                 "compat_work"):
        if name in RESULTS:
            t = RESULTS[name]
            lines.append(f"{name}: {t * 1e3:.1f} ms ({len(data) / t / 1e6:.0f} MB/s), "
                         f"{ref / t:.1f}x prometheus_client")
    print("\n" + "\n".join(lines))
