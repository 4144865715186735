"""Offline checks over the packets recorded from real vLLM (CPU) + LMCache 0.5.6.

`scripts/live-vllm-packet --record-fixture tests/fixtures/lmcache_live` wrote
`vllm_live_<scenario>/` (see each README.md and docs/live-packet.md). InferGuard re-reads the
recorded bytes and must reach the conclusions it reached live:

- `mp` and `offload`: mode `mp` (connector evidence from the launch and the logs), vLLM's
  `external_prefix_cache_*` and LMCache's lookup hit tokens both populated and reconciled
  (they differ by design; model_name is the served name on one side and the model path on
  the other, joined through the launch);
- `embedded`: mode `embedded_vllm` and `lmcache_configured_but_not_working` at level
  `supported` (LMCache's own errors and lookup timeouts in the log agree with the metrics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard._packet import Packet
from inferguard.cli._main import main
from inferguard.evidence._logs import read_log_bytes
from inferguard.evidence._model import EvidenceSource
from inferguard.evidence._readers import read_evidence
from inferguard.findings import diagnose
from inferguard.judge._compat import CompatReport, compat
from inferguard.verdict import judge_report

from .conftest import FIXTURES

LIVE = FIXTURES / "lmcache_live"
EXPECT = {"mp": "mp", "offload": "mp", "embedded": "embedded_vllm"}
SCENARIOS = sorted(n for n in EXPECT if (LIVE / f"vllm_live_{n}" / "packet").is_dir())
MP = [n for n in SCENARIOS if EXPECT[n] == "mp"]
# The live test (tests/live/test_live_vllm.py) points this at a fresh recording.
ROOT = {"dir": LIVE}


def _dir(name: str) -> Path:
    return Path(ROOT["dir"]) / f"vllm_live_{name}"


def _result(name: str) -> dict[str, Any]:
    res: dict[str, Any] = json.loads((_dir(name) / "result.json").read_text())
    return res


def _report(name: str, packet: Packet | None = None) -> CompatReport:
    return compat((packet or Packet.load(_dir(name) / "packet"))
        .with_settings(expected_mode=EXPECT[name]))


def _finding(report: CompatReport, code: str) -> Any:
    return next((f for f in diagnose(report).findings if f.code == code), None)


def test_recorded_scenarios_present() -> None:
    assert "embedded" in SCENARIOS and MP, SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_recorded_run_was_clean(name: str) -> None:
    res = _result(name)
    assert res["ok"] and res["compat_exit"] == 0 and res["diagnose_exit"] == 0
    assert res["vllm_stop"]["signal"] == "SIGINT"
    assert res["net"]["non_loopback_remote"] == [] and res["net"]["non_loopback_listen"] == []
    assert [r["prompt"] for r in res["requests"]] == ["P1", "P1", "P2", "P3", "P4", "P5", "P1",
                                                      "P1"]
    assert all(r["prompt_tokens"] == 654 for r in res["requests"])
    if EXPECT[name] == "mp":
        assert res["trace_closed_cleanly"] and res["server_stop"]["signal"] == "SIGINT"


@pytest.mark.parametrize("name", MP)
def test_mp_connector_hits_reconciled(name: str) -> None:
    r = _report(name)
    assert r.detected.mode == "mp" and r.detected.level == "supported" and r.mode_match
    top = r.detected.candidates[0]
    assert {"launch_config", "log", "engine_metrics", "lmcache_metrics"} <= set(
        top.evidence_kinds)
    details = " ".join(e.detail for e in top.evidence)
    assert "LMCacheMPConnector" in details or "kv-offloading-backend" in details
    d = msgspec.to_builtins(r.facts.vllm_lmcache)
    # vLLM counts tokens the connector loaded (P1 after eviction: 10 blocks of 64);
    # LMCache counts every lookup hit (P1 three times).
    assert d["vllm_external_hits"] == 640 and d["vllm_external_queries"] == 3952
    assert d["lmcache_lookup_hit_tokens"] == 1920
    assert d["lmcache_lookup_requested_tokens"] == 5120
    assert d["engine_lmcache_mp_lookup_count"] == 8
    assert d["vllm_model_names"] == ["tiny-llama"]
    assert d["lmcache_model_names"] == [d["launch_models"]["model"]]
    assert d["model_join"] == "via_launch"
    f = _finding(r, "lmcache_vllm_hits_reconciled")
    assert f is not None and f.level == "supported" and f.severity == "info"
    assert "joined via the launch" in f.message and "=640" in f.message
    assert _finding(r, "lmcache_configured_but_not_working") is None
    assert r.family("lmcache_mp_lookup_hit_tokens_total").status == "populated"  # type: ignore[union-attr]
    hits = [c for c in judge_report(r).claims.made if c.id == "cache_hits"]
    assert hits and hits[0].level == "supported"
    logs = r.facts.log_hints
    assert logs["vllm_mp_connector"] and logs["mp_retrieved"] == 1
    assert logs["mp_prefetch_completed"] == 3 and logs["mp_stored"] == 5


def test_offload_flag_seen_in_launch_and_metrics() -> None:
    if "offload" not in SCENARIOS:
        pytest.skip("offload scenario not recorded")
    r = _report("offload")
    launch = [e for e in r.detected.candidates[0].evidence if e.kind == "launch_config"]
    assert any("kv-offloading-backend" in e.detail for e in launch)
    assert r.facts.log_hints.get("kv_offloading_backend")


def test_embedded_configured_but_dead() -> None:
    r = _report("embedded")
    assert r.detected.mode == "embedded_vllm" and r.detected.level == "supported"
    assert r.mode_match
    d = msgspec.to_builtins(r.facts.vllm_lmcache)
    assert d["vllm_external_queries"] > 0 and d["vllm_external_hits"] == 0
    assert d["engine_lmcache_families"] > 0 and d["engine_lmcache_nonzero_families"] == 0
    logs = r.facts.log_hints
    assert logs["lmcache_init_failed"] and logs["lmcache_post_init_skipped"] == 1
    assert logs["lmcache_lookup_rpc_timeout"] == 8  # one per request
    assert "lmcache_init_failed.device" in r.facts.log_values
    f = _finding(r, "lmcache_configured_but_not_working")
    assert f is not None and f.severity == "error" and f.level == "supported", f
    assert "lookup_rpc_timeout x8" in f.message and "hits=0" in f.message
    assert _finding(r, "lmcache_vllm_hits_reconciled") is None
    # the requests each waited for the lookup RPC timeout (~3 s), yet all were served
    assert all(q["seconds"] > 2.5 for q in _result("embedded")["requests"])


def test_embedded_levels_follow_the_evidence() -> None:
    """Logs alone: inferred; metrics alone: partial; both: supported (above)."""
    packet = Packet.load(_dir("embedded") / "packet")
    logs_only = Packet(settings=packet.settings,
                       evidence=[e for e in packet.evidence if e.kind != "engine_metrics"])
    f = _finding(_report("embedded", logs_only), "lmcache_configured_but_not_working")
    assert f is not None and f.level == "inferred_without_engine_metrics"
    metrics_only = Packet(settings=packet.settings,
                          evidence=[e for e in packet.evidence if e.kind == "engine_metrics"])
    f = _finding(_report("embedded", metrics_only), "lmcache_configured_but_not_working")
    assert f is not None and f.level == "partial"


@pytest.mark.parametrize("name", SCENARIOS)
def test_raw_inputs_read_again_give_the_verdict(name: str) -> None:
    root = _dir(name) / "packet"
    packet = Packet.load(root)
    fresh = [e for e in packet.evidence if e.kind == "http"]
    for item in packet.inputs:
        if item.kind == "http" or item.copied_as is None:
            continue
        ev = read_evidence(item.kind, root / item.copied_as)
        assert ev.source.sha256 == item.sha256 and ev.status in ("ok", "partial"), item.kind
        fresh.append(ev)
    again = _report(name, Packet(settings=packet.settings, evidence=fresh))
    recorded = msgspec.json.decode(
        (root / "metrics" / "lmcache_compat_report.json").read_bytes(), type=CompatReport)
    assert again.detected.mode == recorded.detected.mode == EXPECT[name]
    assert again.facts.vllm_lmcache == _report(name).facts.vllm_lmcache


@pytest.mark.parametrize("name", SCENARIOS)
def test_cli_on_the_recorded_packet(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lmcache-compat", "--packet", str(_dir(name) / "packet"), "--expect-mode",
                 EXPECT[name], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["report"]["detected"]["mode"] == EXPECT[name]
    assert main(["diagnose-bottleneck", "--packet", str(_dir(name) / "packet"), "--json"]) == 0
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    want = ("lmcache_configured_but_not_working" if name == "embedded"
            else "lmcache_vllm_hits_reconciled")
    assert want in codes


def test_degraded_log_hints() -> None:
    text = (
        b"(EngineCore pid=1) [2026-11-28 04:24:00] LMCache ERROR: Failed to initialize "
        b"LMCacheManager components: No supported cpu connector found.. System will operate in "
        b"degraded mode (recompute).\n"
        b"(Worker pid=2) LMCache WARNING: Skipping post_init due to previous initialization "
        b"failure\n"
        b"(APIServer pid=3) LMCache ERROR: Timeout occurred for rank 0, recreating all sockets\n"
        b"(APIServer pid=3) INFO Engine 000: External prefix cache hit rate: 16.2%\n"
        b"(APIServer pid=3) INFO KV Transfer metrics: LMCache MP lookup count=8, LMCache MP "
        b"lookup avg latency (ms)=6.11\n")
    ev = read_log_bytes(text, EvidenceSource(path="vllm.log"))
    facts = ev.facts
    assert facts is not None
    ids = {h.id: h for h in facts.hints}  # type: ignore[union-attr]
    assert ids["lmcache_init_failed"].examples[0].values == {"device": "cpu"}
    assert ids["lmcache_post_init_skipped"].count == 1
    assert ids["lmcache_lookup_rpc_timeout"].examples[0].values == {"rank": "0"}
    assert ids["vllm_external_hit_rate"].examples[0].values == {"rate": "16.2"}
    assert ids["vllm_mp_lookup_stats"].examples[0].values == {"count": "8"}
