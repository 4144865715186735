"""The real LMCache 0.5.6 server scraped by a real Prometheus: after `lmcache bench server`
traffic, the packet read through the Prometheus API and the packet from a direct `/metrics`
scrape of the same server give the same family statuses, counters, mode, findings and claims.

Runs only with INFERGUARD_LIVE=1 (CI's live stage), on the upstream venv
`scripts/live-lmcache-packet` builds or reuses; everything on 127.0.0.1, stopped by PID.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferguard._packet import Packet, PacketSettings
from inferguard.collect import scrape_metrics
from inferguard.collect._prometheus import group_targets, list_targets, prometheus_packet
from inferguard.verdict import judge_packet

from ..live_checks import script
from ..prom_server import PrometheusServer, PromTargetSpec, require_prometheus

pytestmark = pytest.mark.skipif(
    os.environ.get("INFERGUARD_LIVE") != "1",
    reason="live LMCache + Prometheus run: set INFERGUARD_LIVE=1 (builds or reuses the "
           "upstream venv; see docs/live-packet.md)")

INSTANCE = "live-mp:1"


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    prom_bin = require_prometheus()
    mod = script()
    venv = mod.ensure_env()
    work = Path(tempfile.mkdtemp(prefix="inferguard-live-prom-"))
    (work / "home").mkdir()
    (work / "tmp").mkdir()
    env = mod.server_env(work / "home", work / "tmp")
    lmcache = str(venv / "bin" / "lmcache")
    procs = mod.Procs(work / "pids.txt")
    zmq_port, http_port = mod.free_port(), mod.free_port()
    while http_port == zmq_port:
        http_port = mod.free_port()
    base = f"http://127.0.0.1:{http_port}"
    server = procs.start("lmcache-server", [
        lmcache, "server", "--instance-id", "inferguard-live-prom", "--host", "127.0.0.1",
        "--port", str(zmq_port), "--http-host", "127.0.0.1", "--http-port", str(http_port),
        "--eviction-policy", "LRU", "--chunk-size", str(mod.CHUNK_SIZE),
        "--supported-transfer-mode", "auto", "--metrics-sample-rate", "1.0",
        "--l1-size-gb", "0.25"], env=env, log_path=work / "server.log")
    prom: PrometheusServer | None = None
    try:
        deadline = time.monotonic() + mod.READY_TIMEOUT_S
        while mod._get(base + "/healthcheck") != 200:
            assert server.poll() is None, (work / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "lmcache server not ready"
            time.sleep(0.3)
        prom = PrometheusServer(prom_bin, [PromTargetSpec("lmcache-mp", INSTANCE,
                                                          f"127.0.0.1:{http_port}")]).start()
        for i, (tokens, end) in enumerate(((64, 2), (128, 3))):
            rc = procs.run(f"bench{i}", [
                lmcache, "bench", "server", "--rpc-url", f"tcp://127.0.0.1:{zmq_port}",
                "--url", mod.DEAD_URL, "--mode", "cpu", "--transfer-mode", "engine_driven",
                "--kvcache-shape-spec", mod.KV_SPEC, "--num-tokens", str(tokens),
                "--start", "0", "--end", str(end), "--interval", "0.1"],
                env=env, log_path=work / f"bench{i}.out", timeout=mod.BENCH_TIMEOUT_S)
            assert rc == 0, (work / f"bench{i}.out").read_text()[-3000:]
        time.sleep(1.0)  # let the last counters settle
        prom.wait_scraped(1, after=time.time())
        yield {"prom": prom.url, "metrics": base + "/metrics"}
    finally:
        if prom is not None:
            print("---- prometheus log ----\n" + prom.log())
            prom.stop()
        mod.Procs.stop(server)
        print("---- lmcache server log (tail) ----\n"
              + (work / "server.log").read_text(errors="replace")[-3000:])


def test_api_and_direct_scrape_agree_on_the_live_server(live: dict[str, Any]) -> None:
    direct, _ = scrape_metrics(live["metrics"], "lmcache_metrics", timeout=5)
    (group,) = group_targets(list_targets(live["prom"], match=['{job="lmcache-mp"}']))
    api = prometheus_packet(live["prom"], group).packet
    v_api = judge_packet(api)
    v_dir = judge_packet(Packet(settings=PacketSettings(), evidence=[direct]))
    assert v_api.report.detected.mode == v_dir.report.detected.mode == "mp"
    assert v_api.report.detected.level == v_dir.report.detected.level
    assert [(f.name, f.status) for f in v_api.report.families] == \
        [(f.name, f.status) for f in v_dir.report.families]
    # Counters stopped moving with the traffic: equal values through both roads.
    for name in ("lmcache_mp_lookup_requested_tokens_total", "lmcache_mp_lookup_hit_tokens_total",
                 "lmcache_mp_num_finished_stores_total"):
        a, d = v_api.report.family(name), v_dir.report.family(name)
        assert a is not None and d is not None and a.total == d.total, name
    assert (v_api.report.family("lmcache_mp_lookup_requested_tokens_total").total or 0) > 0
    assert [f.code for f in v_api.diagnosis.findings] == [f.code for f in v_dir.diagnosis.findings]
    assert [c.id for c in v_api.claims.made] == [c.id for c in v_dir.claims.made]
