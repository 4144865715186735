"""`inferguard fleet` over simulated instances: a real Prometheus server scrapes one local
server serving real recorded 0.5.6 bodies (LMCache MP and vLLM, cycled) under 50 instance
labels; the whole command (`python -m inferguard fleet --json`, start-up included) is timed
against a reference measured in the same run: the same bodies judged as files in one process
(`judge_packet` per body, no HTTP), the floor the API road adds its requests to. Also the
command at --concurrency 1, to show what the bound buys. Size: INFERGUARD_BENCH_SCALE=smoke
(CI: 5 instances, no claims) or full (default: 50). Figures: docs/performance.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferguard import Packet
from inferguard.verdict import judge_packet
from tests.http_fake import RecordingServer, Reply
from tests.prom_server import PrometheusServer, PromTargetSpec, require_prometheus

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
N = 5 if SCALE == "smoke" else 50 if SCALE == "full" else int(SCALE)
FIX = Path(__file__).parent.parent / "tests" / "fixtures"
BODIES = [
    ("lmcache_metrics", FIX / "lmcache-0.5.6/metrics/mp-l1-storage-trace/metrics_after.txt"),
    ("lmcache_metrics", FIX / "lmcache-0.5.6/metrics/blend-prometheus/metrics_final.txt"),
    ("engine_metrics", FIX / "lmcache_live/vllm_live_mp/packet/inputs/engine_metrics/"
     "127.0.0.1_36687_metrics.txt"),
]
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def prom() -> Iterator[str]:
    binary = require_prometheus()
    bodies = [b.read_bytes() for _, b in BODIES]

    def answer(path: str) -> Reply:
        i = int(path.split("/")[1])
        return Reply(200, bodies[i % len(bodies)], "text/plain; version=0.0.4")

    with RecordingServer(answer) as srv:
        addr = srv.url.split("//", 1)[1]
        specs = [PromTargetSpec("lmcache" if BODIES[i % 3][0] == "lmcache_metrics" else "vllm",
                                f"node-{i:03d}:9000", addr, f"/{i}/metrics")
                 for i in range(N)]
        server = PrometheusServer(binary, specs, interval="2s").start()
        try:
            server.wait_scraped(N, timeout=120)
            yield server.url
        finally:
            server.stop()


def _fleet_cmd(url: str, concurrency: int) -> int:
    out = subprocess.run([sys.executable, "-m", "inferguard", "fleet", "--prometheus-url", url,
                          "--json", "--concurrency", str(concurrency)],
                         capture_output=True, check=True, timeout=600)
    rows = json.loads(out.stdout)["rows"]
    assert len(rows) == N and all(r["judged"] for r in rows)
    return len(rows)


def _reference() -> int:
    for i in range(N):
        kind, body = BODIES[i % len(BODIES)]
        judge_packet(Packet.from_files([(kind, body)]))
    return N


def _record(name: str, benchmark: Any) -> None:
    if benchmark.stats is not None and benchmark.enabled:
        RESULTS[name] = benchmark.stats.stats.mean


def test_reference_files_in_process(benchmark: Any) -> None:
    assert benchmark.pedantic(_reference, rounds=3, iterations=1) == N
    _record("reference", benchmark)


def test_fleet_command(benchmark: Any, prom: str) -> None:
    assert benchmark.pedantic(_fleet_cmd, args=(prom, 8), rounds=3, iterations=1) == N
    _record("fleet_c8", benchmark)


def test_fleet_command_one_at_a_time(benchmark: Any, prom: str) -> None:
    assert benchmark.pedantic(_fleet_cmd, args=(prom, 1), rounds=3, iterations=1) == N
    _record("fleet_c1", benchmark)


def teardown_module() -> None:
    if "reference" in RESULTS:
        ref = RESULTS["reference"]
        for k, v in RESULTS.items():
            print(f"\n{k}: {v:.3f} s ({v / ref:.2f}x the in-process file reference, "
                  f"{N} instances) at {time.strftime('%Y-%m-%d %H:%M')}")
