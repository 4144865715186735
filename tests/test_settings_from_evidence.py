"""What the evidence itself says beats a default and a declaration.

OTLP-only MP runs: the OTLP metric export is the MP metric surface (never "no scrape of this
surface"); the observable gauges an export taken only at shutdown lacks are explained, not
counted as missing. The metrics sample rate comes from the server's `/config` answer or its
launch line before the declared setting and upstream's default, and the report says which.
All inputs are real bytes of lmcache 0.5.6 runs (fixtures), or cut from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

import inferguard as ig
from inferguard.evidence._http import HttpFacts, facts_from_routes
from inferguard.findings import diagnose
from inferguard.judge._compat import compat

from .conftest import FIXTURES, UPSTREAM

OTEL_LIVE = FIXTURES / "lmcache_live" / "mp_live_otel" / "packet"
OTLP_EXPORT = UPSTREAM / "otel" / "mp_otlp_metrics.jsonl"  # = the shared sample's export
OTLP_LOG = UPSTREAM / "logs" / "otlp_server.log"
L1_GAUGES = ("lmcache_mp_l1_memory_usage_bytes", "lmcache_mp_l1_usage_ratio")


def _mp(*evidence: ig.Evidence, **settings: Any) -> ig.Packet:
    return ig.Packet(settings=ig.PacketSettings(expected_mode="mp", **settings),
                     evidence=list(evidence))


def _no_scrape_text(r: ig.CompatReport) -> list[str]:
    return [f.name for f in r.families if f.explanation == "no scrape of this surface is in "
            "the packet" and f.name.startswith("lmcache_mp_")]


# -- class 6: OTLP-only MP runs ------------------------------------------------------------


def test_live_otlp_packet_without_its_scrape_is_judged_on_the_export() -> None:
    """The real OTLP run with its pull scrape (process metrics only) taken out: the export is
    the surface, and the server log's MeterProvider line says where the metrics went."""
    live = ig.Packet.load(OTEL_LIVE)
    packet = ig.Packet(settings=live.settings,
                       evidence=[e for e in live.evidence if e.kind != "lmcache_metrics"])
    r = compat(packet)
    assert _no_scrape_text(r) == []
    assert r.missing_required == []
    (via,) = [f for f in diagnose(r).findings if f.code == "lmcache_mp_metrics_via_otlp"]
    assert "no pull scrape" in via.message and "OTLP export carries" in via.message
    with_scrape = diagnose(compat(live)).findings
    assert any("pull scrape has only process metrics" in f.message for f in with_scrape
               if f.code == "lmcache_mp_metrics_via_otlp")


def test_shared_otlp_sample_export_and_log() -> None:
    r = compat(_mp(ig.read_evidence("otel", OTLP_EXPORT), ig.read_evidence("log", OTLP_LOG)))
    assert _no_scrape_text(r) == []
    assert all(r.family(n).status == "populated" for n in L1_GAUGES)  # type: ignore[union-attr]
    assert "lmcache_mp_metrics_via_otlp" in diagnose(r).codes()
    absent = [f for f in r.families if f.status == "missing" and f.group == "mp_gauges"]
    assert absent == []


def _last_collection(tmp: Path, times: int = 1) -> ig.Evidence:
    """The export's last line (the collection the SDK makes at exit), `times` over."""
    last = OTLP_EXPORT.read_text().splitlines()[-1]
    p = tmp / "otlp_metrics.jsonl"
    p.write_text((last + "\n") * times)
    return ig.read_evidence("otel", p)


@pytest.mark.parametrize("with_log", [True, False])
def test_gauges_absent_from_the_shutdown_collection_are_explained(
        tmp_path: Path, with_log: bool) -> None:
    """Upstream 0.5.6 closes L1Manager/StoreController (deregistering their gauges' targets)
    before the OTel SDK's exit-time export: an export holding only that collection lacks
    those gauges. They are explained and not counted as missing required families."""
    ev = [_last_collection(tmp_path)]
    if with_log:
        ev.append(ig.read_evidence("log", OTLP_LOG))
    r = compat(_mp(*ev))
    for name in (*L1_GAUGES, "lmcache_mp_l1_staging_bytes", "lmcache_mp_l2_store_adapters"):
        f = r.family(name)
        assert f is not None and f.status == "missing"
        assert f.explanation is not None and "single collection" in f.explanation
        assert ("L1Manager.close()" if "_l1_" in name else "StoreController.stop()") \
            in f.explanation
        assert ("server log shows the shutdown" in f.explanation) == with_log
    assert r.missing_required == []
    assert r.group("mp_gauges").status != "partial"  # type: ignore[union-attr]
    assert "lmcache_required_family_missing" not in diagnose(r).codes()
    # the gauges whose owners keep their targets are in that last collection
    assert r.family("lmcache_mp_l2_prefetch_adapters").status == "zero"  # type: ignore[union-attr]


def test_gauges_absent_from_every_of_several_collections_count(tmp_path: Path) -> None:
    """Near miss: two collections and neither has the L1 gauges. The periodic export before
    shutdown should have carried them, so they are missing (and required)."""
    r = compat(_mp(_last_collection(tmp_path, times=2), ig.read_evidence("log", OTLP_LOG)))
    assert set(L1_GAUGES) <= set(r.missing_required)
    f = r.family(L1_GAUGES[0])
    assert f is not None and f.explanation == (
        "expected from startup but absent from the OTLP metric export")
    assert "lmcache_required_family_missing" in diagnose(r).codes()


# -- class 10a: the metrics sample rate ----------------------------------------------------


def test_http_facts_keep_the_config_sample_rate(tmp_path: Path) -> None:
    ev = ig.read_evidence("http", UPSTREAM / "http")
    assert isinstance(ev.facts, HttpFacts) and ev.facts.metrics_sample_rate == 1.0
    bad = [msgspec.structs.replace(r, json={"observability": {"metrics_sample_rate": "lots"}})
           if r.path == "/config" else r for r in ev.facts.routes]
    facts, problems = facts_from_routes(None, bad, [])
    assert facts.metrics_sample_rate is None
    assert any("metrics_sample_rate" in p.message for p in problems)


SERVER = ("lmcache server --host 127.0.0.1 --port 5555 --http-port 8080 --l1-size-gb 0.25 "
          "--metrics-sample-rate {}\n")


def _launch(tmp: Path, rate: str) -> ig.Evidence:
    p = tmp / "launch.txt"
    p.write_text("export LMCACHE_TRACK_USAGE=false DO_NOT_TRACK=1\n" + SERVER.format(rate))
    return ig.read_evidence("launch_config", p)


def _sampling(packet: ig.Packet) -> tuple[float, str, str]:
    obs = compat(packet).lmcache_mp_observability
    assert obs is not None
    s = obs.sampled_histograms
    return s.sample_rate, s.source, s.explanation


def test_sample_rate_precedence(tmp_path: Path) -> None:
    scrape = ig.read_evidence(
        "lmcache_metrics", UPSTREAM / "metrics" / "mp-l1-storage-trace" / "metrics_after.txt")
    http = ig.read_evidence("http", UPSTREAM / "http")  # /config: metrics_sample_rate 1.0
    rate, source, expl = _sampling(_mp(scrape))
    assert (rate, source) == (0.01, "default") and "about 1% of keys" in expl
    rate, source, expl = _sampling(_mp(scrape, mp_metrics_sample_rate=0.25))
    assert (rate, source) == (0.25, "declared") and "about 25% of keys" in expl
    rate, source, expl = _sampling(_mp(scrape, _launch(tmp_path, "0.5"),
                                       mp_metrics_sample_rate=0.5))
    assert (rate, source) == (0.5, "launch") and "launch line" in expl and "declared" not in expl
    rate, source, expl = _sampling(_mp(scrape, http))
    assert (rate, source) == (1.0, "config") and "every key" in expl and "/config" in expl
    # declared and evidence disagree: the evidence is used, and the report says so
    rate, source, expl = _sampling(_mp(scrape, http, mp_metrics_sample_rate=0.01))
    assert (rate, source) == (1.0, "config")
    assert "declared 0.01, but the server's /config answer says 1" in expl
    rate, source, expl = _sampling(_mp(scrape, http, _launch(tmp_path, "0.1")))
    assert (rate, source) == (1.0, "config") and "launch line says 0.1" in expl


def test_sampled_rule_follows_the_evidenced_rate(tmp_path: Path) -> None:
    """A run at 1.0 that the operator declared at 0.01: the /config answer decides, so the
    sparse-histogram note stays quiet; the same run without /config gets it."""
    scrape = ig.read_evidence(
        "lmcache_metrics", UPSTREAM / "metrics" / "mp-l1-storage-trace" / "metrics_after.txt")
    http = ig.read_evidence("http", UPSTREAM / "http")
    quiet = ig.judge_packet(_mp(scrape, http, mp_metrics_sample_rate=0.01))
    assert "lmcache_sampled_histograms_sparse" not in quiet.diagnosis.codes()
    loud = ig.judge_packet(_mp(scrape, mp_metrics_sample_rate=0.01))
    assert "lmcache_sampled_histograms_sparse" in loud.diagnosis.codes()


def test_sampled_rule_needs_mp_metrics() -> None:
    """The server log shows traffic, but no scrape or OTLP export is in the packet: nothing
    says any histogram is sparse."""
    r = compat(_mp(ig.read_evidence("log", UPSTREAM / "logs" / "mp_server.log")))
    assert r.conditions["traffic"]
    assert "lmcache_sampled_histograms_sparse" not in diagnose(r).codes()


def test_live_otel_packet_rate_from_its_config_answer() -> None:
    """The live OTLP run's /config answer (re-derived from the stored routes) says 1.0."""
    live = ig.Packet.load(OTEL_LIVE)
    ev = []
    for e in live.evidence:
        if e.kind == "http" and isinstance(e.facts, HttpFacts):
            facts, _ = facts_from_routes(e.facts.base_url, e.facts.routes, e.facts.skipped)
            e = msgspec.structs.replace(e, facts=facts)
        ev.append(e)
    rate, source, expl = _sampling(ig.Packet(settings=live.settings, evidence=ev))
    assert (rate, source) == (1.0, "config") and "declared" not in expl
