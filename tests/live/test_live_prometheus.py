"""The real LMCache 0.5.6 server scraped by a real Prometheus: after `lmcache bench server`
traffic, the packet read through the Prometheus API and the packet from a direct `/metrics`
scrape of the same server give the same family statuses, counters, mode, findings and claims.

Runs only with INFERGUARD_LIVE=1 (CI's live stage), on the upstream venv
`scripts/live-lmcache-packet` builds or reuses; everything on 127.0.0.1, stopped by PID.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from inferguard._packet import Packet, PacketSettings
from inferguard.collect import scrape_metrics
from inferguard.collect._prometheus import group_targets, list_targets, prometheus_packet
from inferguard.verdict import judge_packet

from ..live_checks import LiveMpServer
from ..prom_server import PrometheusServer, PromTargetSpec, require_prometheus

pytestmark = pytest.mark.skipif(
    os.environ.get("INFERGUARD_LIVE") != "1",
    reason="live LMCache + Prometheus run: set INFERGUARD_LIVE=1 (builds or reuses the "
           "upstream venv; see docs/live-packet.md)")

INSTANCE = "live-mp:1"


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    prom_bin = require_prometheus()
    with LiveMpServer("inferguard-live-prom", "inferguard-live-prom-") as srv:
        prom = PrometheusServer(prom_bin, [PromTargetSpec("lmcache-mp", INSTANCE,
                                                          f"127.0.0.1:{srv.http_port}")]).start()
        try:
            for tokens, end in ((64, 2), (128, 3)):
                srv.bench(tokens, end)
            time.sleep(1.0)  # let the last counters settle
            prom.wait_scraped(1, after=time.time())
            yield {"prom": prom.url, "metrics": srv.base + "/metrics"}
        finally:
            print("---- prometheus log ----\n" + prom.log())
            prom.stop()


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
