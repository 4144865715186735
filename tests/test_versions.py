"""Modes and rules keyed on the LMCache / vLLM / SGLang versions the evidence states.

Launch shapes and log lines come from the upstream wheels (each test names the file); the
0.5.6 and 0.5.7rc2 captures are real upstream bytes (tests/fixtures/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import inferguard as ig
from inferguard.cli._compat import render_report
from inferguard.judge._versions import holds, parse_version

from .conftest import FIXTURES
from .test_finding_codes import MP, _write, capture, packet, prom_text, read, scrape

V057 = FIXTURES / "lmcache-0.5.7rc2"
V056 = FIXTURES / "lmcache-0.5.6"
LM = "[2026-12-01 22:15:53,350] LMCache INFO: "


def launch(tmp: Path, text: str, name: str = "launch.txt") -> ig.Evidence:
    return read("launch_config", _write(tmp, name, text))


def log(tmp: Path, text: str, name: str = "engine.log") -> ig.Evidence:
    return read("log", _write(tmp, name, text))


def compat(*ev: ig.Evidence) -> ig.CompatReport:
    return ig.compat(packet(*ev))


# -- version strings ---------------------------------------------------------------------------


def test_release_numbers_and_specs() -> None:
    assert parse_version("0.5.7rc2-gbf85b41f") == (0, 5, 7)
    assert parse_version("0.33.1.dev5+gabc") == (0, 33, 1)
    assert parse_version("v0.32") == (0, 32, 0)
    assert parse_version("unknown") is None
    assert holds("lmcache>=0.5.7", {"lmcache": "0.5.7rc2"}) is True
    assert holds("lmcache>=0.5.7", {"lmcache": "0.5.6"}) is False
    assert holds("vllm>=0.32,<=0.33.0", {"vllm": "0.33.0"}) is True
    assert holds("vllm>=0.32,<=0.33.0", {"vllm": "0.33.1.dev3"}) is False
    assert holds("vllm>0.33.0", {"lmcache": "0.5.6"}) is None
    with pytest.raises(ValueError):
        holds("vllm~=1", {"vllm": "1"})


# -- SGLang 0.5.23: --enable-lmcache is MP ------------------------------------------------------

# sglang 0.5.23 sglang/srt/mem_cache/storage/lmcache/README.md (Terminal 1 and 2).
SGLANG_MP = """\
lmcache server --host 127.0.0.1 --port 5556 --l1-size-gb 4 --eviction-policy LRU
python -m sglang.launch_server --model-path MODEL --enable-lmcache \\
  --lmcache-config-file example_config_mp.yaml
"""
# lmcache 0.5.7rc2 lmcache/integration/sglang/unified_lmcache_mp_connector.py (logger.info).
SGLANG_MP_LOG = (f"{LM}UnifiedLMCacheMPConnector initialized succeed.\n"
                 f"{LM}LMCache MP heartbeat thread started\n")


def test_sglang_lmcache_server_pair_is_mp_with_the_sglang_surface(tmp_path: Path) -> None:
    """sglang 0.5.23 mem_cache/registry.py builds LMCacheUnifiedRadixCache with LMCache's
    UnifiedLMCacheMPConnector against `lmcache server`: MP, not embedded_sglang (which a tie
    broken by sort order once picked), judged with SGLang as the engine."""
    sg = scrape(tmp_path, {"sglang:cache_hit_rate": 0.5, "sglang:num_running_reqs": 1},
                kind="engine_metrics")
    r = compat(launch(tmp_path, SGLANG_MP), scrape(tmp_path, MP), sg)
    assert r.detected.mode == "mp"
    assert r.detected.engine == "sglang" and r.detected.deployment == "external"
    assert "embedded_sglang" not in {c.mode for c in r.detected.candidates if c.confidence >= 0.3}
    assert r.group("sglang_cache") is not None and r.group("sglang_cache").required  # type: ignore[union-attr]
    assert r.group("vllm_prefix_cache").status == "not_applicable"  # type: ignore[union-attr]
    items = {c.id: c for c in r.checklist}
    assert "SGLang --enable-lmcache" in items["mp_connector"].description
    assert items["mp_connector"].present
    assert items["engine_metrics"].description == "SGLang /metrics"
    assert r.missing_required == []


def test_sglang_log_lines_alone_say_mp(tmp_path: Path) -> None:
    r = compat(log(tmp_path, SGLANG_MP_LOG))
    assert r.detected.mode == "mp" and r.detected.engine == "sglang"


@pytest.mark.parametrize("version,mode", [("0.5.23", "mp"), ("0.5.30", "mp"),
                                          ("0.5.9", "embedded_sglang")])
def test_sglang_version_decides_a_launch_only_packet(tmp_path: Path, version: str,
                                                     mode: str) -> None:
    text = (f"sglang=={version}\npython -m sglang.launch_server --model-path M "
            "--enable-lmcache\n")
    r = compat(launch(tmp_path, text))
    assert r.detected.mode == mode
    assert r.versions is not None and r.versions.versions == {"sglang": version}
    assert any(s.startswith("sglang:") for s in r.versions.selected)
    newer = [n for n in r.versions.notes if "newer than" in n]
    assert bool(newer) == (version == "0.5.30")


def test_old_sglang_layerwise_log_stays_embedded(tmp_path: Path) -> None:
    """The pre-MP adapter's names (LMCRadixCache, LMCacheLayerwiseConnector, gone from the
    0.5.23 wheel) decide for embedded whatever the default version would say."""
    text = "python -m sglang.launch_server --model-path M --enable-lmcache\n"
    r = compat(launch(tmp_path, text),
               log(tmp_path, "INFO LMCRadixCache ready with LMCacheLayerwiseConnector\n"))
    assert r.detected.mode == "embedded_sglang"


def test_sglang_without_version_assumes_the_newest_read_and_says_so(tmp_path: Path) -> None:
    r = compat(launch(tmp_path, "python -m sglang.launch_server --model-path M "
                                "--enable-lmcache\n"))
    assert r.detected.mode == "mp"
    assert any("no SGLang version" in n for n in r.detected.notes)
    assert r.detected.level == "inferred_without_engine_metrics"


# -- vLLM --kv-offloading-backend ---------------------------------------------------------------

OFFLOAD = "vllm serve M --kv-offloading-backend lmcache --kv-offloading-size 20\n"


@pytest.mark.parametrize("version,mode", [("0.33.0", "mp"), ("0.32.0", "mp"),
                                          ("0.34.0", "embedded_vllm"),
                                          ("0.31.0", "embedded_vllm")])
def test_offload_flag_resolved_by_the_vllm_version(tmp_path: Path, version: str,
                                                   mode: str) -> None:
    """vLLM 0.33.0 vllm/config/vllm.py::VllmConfig._post_init_kv_transfer_config sets
    LMCacheMPConnector for `lmcache` (vllm#42865; the 0.32.0 live run did the same); vLLM
    main after 0.33 maps it back to LMCacheConnectorV1. A launch-only packet is not unknown."""
    r = compat(launch(tmp_path, f"vllm=={version}\n{OFFLOAD}"))
    assert r.detected.mode == mode
    assert any(s.startswith("offload:lmcache:") for s in r.versions.selected)  # type: ignore[union-attr]
    assert any(f"vLLM {version} creates" in n for n in r.detected.notes)


def test_offload_flag_without_a_version_assumes_the_newest_release(tmp_path: Path) -> None:
    r = compat(launch(tmp_path, OFFLOAD))
    assert r.detected.mode == "mp"
    assert any("no vLLM version in the evidence" in n for n in r.detected.notes)


def test_offload_backend_without_a_size_creates_nothing(tmp_path: Path) -> None:
    """_post_init_kv_transfer_config returns before reading the backend when
    kv_offloading_size is None: the flag alone configures no connector."""
    r = compat(launch(tmp_path, "vllm==0.33.0\nvllm serve M --kv-offloading-backend lmcache\n"))
    assert r.detected.mode == "unknown"


@pytest.mark.parametrize("source", ["banner", "engine", "logo", "http"])
def test_vllm_version_from_the_banner_or_version_route(tmp_path: Path, source: str) -> None:
    """vLLM 0.33.0 entrypoints/common/startup.py::log_version_and_model (plain line and logo)
    and v1/engine/core.py (`Initializing a V1 LLM engine (v%s)`); `/version` answers
    {"version": ...} (instrumentator/basic.py::show_version)."""
    lines = {
        "banner": "(APIServer pid=1) INFO 12-01 10:00:00 [startup.py:38] vLLM server version "
                  "0.33.0, serving model M\n",
        "engine": "(EngineCore pid=2) INFO 12-01 10:00:01 [core.py:140] Initializing a V1 LLM "
                  "engine (v0.33.0) with config: model='M'\n",
        # the logo line as the 0.32.0 live run printed it (tests/fixtures/lmcache_live)
        "logo": "(APIServer pid=24041) INFO 11-28 04:29:19 [api_utils.py:347]  \u2584\u2584 "
                "\u2584\u2588 \u2588     \u2588     \u2588 \u2580\u2584\u2580 \u2588  version "
                "0.33.0\n",
    }
    ev = [launch(tmp_path, OFFLOAD)]
    if source == "http":
        ev.append(capture(tmp_path, "engine", {"health": (200, ""),
                                               "version": {"version": "0.33.0"}},
                          kind="engine_http"))
    else:
        ev.append(log(tmp_path, lines[source]))
    r = compat(*ev)
    assert r.versions is not None and r.versions.versions == {"vllm": "0.33.0"}
    assert r.detected.mode == "mp"
    assert not any("no vLLM version" in n for n in r.detected.notes)


def test_the_live_vllm_packet_states_its_version() -> None:
    r = ig.compat(ig.Packet.read(FIXTURES / "lmcache_live" / "vllm_live_offload" / "packet"))
    assert r.versions is not None and r.versions.versions["vllm"] == "0.32.0"
    assert r.versions.versions["lmcache"].startswith("0.5.6")
    assert r.detected.mp_connector == "external"


# -- vLLM main: lmcache_mp and lmcache.mp.deployment --------------------------------------------


def test_lmcache_mp_local_deployment_demands_no_server(tmp_path: Path) -> None:
    """vLLM main (not a release): kv_offloading_backend=lmcache_mp sets
    lmcache.mp.deployment=local, resolved to LMCacheMPLocalConnector (in-worker shards,
    vllm/distributed/kv_transfer/kv_connector/lmcache_mp_utils.py). No lmcache server, its
    HTTP API or its /metrics are asked for."""
    vllm = scrape(tmp_path, {"vllm:external_prefix_cache_queries_total": 100,
                             "vllm:external_prefix_cache_hits_total": 40,
                             "vllm:prefix_cache_queries_total": 100,
                             "vllm:prompt_tokens_total": 100}, kind="engine_metrics")
    text = "vllm serve M --kv-offloading-backend lmcache_mp --kv-offloading-size 8\n"
    r = compat(launch(tmp_path, text), vllm)
    assert r.detected.mode == "mp" and r.detected.deployment == "local"
    ids = {c.id for c in r.checklist}
    assert not ids & {"lmcache_server_launch", "lmcache_healthcheck", "lmcache_metrics",
                      "lmcache_logs"}
    assert r.missing_required == []
    l1 = r.group("mp_l1")
    assert l1 is not None and l1.status == "not_applicable" and not l1.required
    assert "deployment=local" in (r.family("lmcache_mp_l1_read_chunks_total").explanation  # type: ignore[union-attr]
                                  or "")
    assert any("not a release" in n for n in r.detected.notes)


@pytest.mark.parametrize("deployment", ["local", "external", " Local "])
def test_deployment_from_kv_connector_extra_config(tmp_path: Path, deployment: str) -> None:
    cfg = ('{"kv_connector":"LMCacheMPConnector","kv_role":"kv_both",'
           f'"kv_connector_extra_config":{{"lmcache.mp.deployment":"{deployment}"}}}}')
    r = compat(launch(tmp_path, f"vllm serve M --kv-transfer-config '{cfg}'\n"))
    assert r.detected.mode == "mp"
    assert r.detected.deployment == deployment.strip().lower()


# -- which LMCacheMPConnector vLLM resolved -----------------------------------------------------

# vLLM 0.33.0 lmcache_mp_connector.py::_resolve_lmcache_mp_connector (logger.info lines, in
# LMCache's log format: the connector logs through lmcache_init_logger). The external line is
# the one the 0.32.0 live run printed.
EXTERNAL = (f"{LM}Using external LMCacheMPConnector from "
            "lmcache.integration.vllm.lmcache_mp_connector (lmcache_mp_connector.py:1203:"
            "vllm.distributed.kv_transfer.kv_connector.v1.lmcache_mp_connector)\n")
FALLBACK = (f"{LM}External LMCacheMPConnector is not available (No module named "
            "'lmcache.integration.vllm.lmcache_mp_connector'), falling back to builtin "
            "implementation in vLLM. (lmcache_mp_connector.py:1209:vllm.distributed."
            "kv_transfer.kv_connector.v1.lmcache_mp_connector)\n")
FORCED = f"{LM}Force use builtin LMCacheMPConnectorUpstream in vLLM.\n"
MP_LAUNCH = ("lmcache server --port 5555 --l1-size-gb 1 --eviction-policy LRU\n"
             "vllm serve M --kv-transfer-config "
             "'{\"kv_connector\":\"LMCacheMPConnector\",\"kv_role\":\"kv_both\"}'\n")


def _vllm_scrape(tmp: Path, with_histogram: bool) -> ig.Evidence:
    rows = {"vllm:external_prefix_cache_queries_total": 100,
            "vllm:external_prefix_cache_hits_total": 40, "vllm:prompt_tokens_total": 100}
    extra = ("# HELP vllm:lmcache_mp_lookup_duration_seconds x\n"
             "# TYPE vllm:lmcache_mp_lookup_duration_seconds histogram\n"
             'vllm:lmcache_mp_lookup_duration_seconds_bucket{le="+Inf"} 4.0\n'
             "vllm:lmcache_mp_lookup_duration_seconds_count 4.0\n"
             "vllm:lmcache_mp_lookup_duration_seconds_sum 0.01\n") if with_histogram else ""
    return read("engine_metrics", _write(tmp, "vllm.txt", prom_text(rows) + extra))


@pytest.mark.parametrize("line,which", [(FALLBACK, "builtin"), (FORCED, "builtin"),
                                        (EXTERNAL, "external")])
def test_builtin_fallback_explains_the_missing_histogram(tmp_path: Path, line: str,
                                                         which: str) -> None:
    r = compat(launch(tmp_path, MP_LAUNCH), scrape(tmp_path, MP), log(tmp_path, line),
               _vllm_scrape(tmp_path, with_histogram=False))
    assert r.detected.mode == "mp" and r.detected.mp_connector == which
    fam = r.family("vllm:lmcache_mp_lookup_duration_seconds")
    assert fam is not None
    if which == "builtin":
        assert fam.status == "not_applicable"
        assert "builtin fallback" in (fam.explanation or "")
        assert any("LMCacheMPConnectorUpstream" in n for n in r.detected.notes)
    else:
        assert fam.status == "missing"


def test_forced_builtin_from_the_launch_environment(tmp_path: Path) -> None:
    """`LMCACHE_USE_UPSTREAM_MP` is tested for truth as a string upstream: any non-empty
    value, "0" included, forces the builtin connector."""
    r = compat(launch(tmp_path, "export LMCACHE_USE_UPSTREAM_MP=0\n" + MP_LAUNCH),
               scrape(tmp_path, MP))
    assert r.detected.mp_connector == "builtin"
    r2 = compat(launch(tmp_path, MP_LAUNCH, name="b.txt"), scrape(tmp_path, MP))
    assert r2.detected.mp_connector is None


def test_histogram_seen_means_lmcaches_connector(tmp_path: Path) -> None:
    r = compat(launch(tmp_path, MP_LAUNCH), scrape(tmp_path, MP),
               _vllm_scrape(tmp_path, with_histogram=True))
    assert r.family("vllm:lmcache_mp_lookup_duration_seconds").status == "populated"  # type: ignore[union-attr]


# -- version-keyed families and caveats ---------------------------------------------------------


def test_lmcache_057_counters_catalogued_on_the_real_capture(tmp_path: Path) -> None:
    """The 0.5.7rc2 run: both new lookup counters are known, populated, and selected by the
    version the HTTP capture states; nothing LMCache-like is unknown."""
    r = compat(read("lmcache_metrics", V057 / "mp-lmcache-driven" / "metrics_after.txt"),
               read("http", V057 / "http"))
    assert r.versions is not None and r.versions.versions == {"lmcache": "0.5.7rc2"}
    assert r.unknown_lmcache_families == []
    for name in ("lmcache_mp_lookup_prompt_tokens_total",
                 "lmcache_mp_lookup_request_hit_tokens_total"):
        assert r.family(name).status == "populated"  # type: ignore[union-attr]
        assert f"family:{name}:lmcache>=0.5.7" in r.versions.selected
    assert [c.id for c in r.caveats] == ["lmcache_lookup_prompt_tail"]
    text = render_report(ig.judge_packet(packet(
        read("lmcache_metrics", V057 / "mp-lmcache-driven" / "metrics_after.txt"),
        read("http", V057 / "http"))))
    assert "versions: lmcache 0.5.7rc2" in text


def test_057_families_not_expected_from_056(tmp_path: Path) -> None:
    r = compat(scrape(tmp_path, MP), read("http", V056 / "http"))
    assert r.versions is not None and parse_version(r.versions.versions["lmcache"]) == (0, 5, 6)
    fam = r.family("lmcache_mp_lookup_prompt_tokens_total")
    assert fam is not None and fam.status == "not_applicable"
    assert "lmcache>=0.5.7" in (fam.explanation or "") and "0.5.6" in (fam.explanation or "")
    assert r.caveats == []


def test_057_families_expected_without_a_version(tmp_path: Path) -> None:
    r = compat(scrape(tmp_path, MP))
    fam = r.family("lmcache_mp_lookup_prompt_tokens_total")
    assert fam is not None and fam.status == "missing"
    assert any("newest known rules" in n for n in r.versions.notes)  # type: ignore[union-attr]


def test_prompt_logprobs_caveat_on_the_external_hit_rate(tmp_path: Path) -> None:
    """vllm#57596, read in vLLM 0.33.0 v1/core/sched/scheduler.py::Scheduler.schedule:
    attached when the external prefix-cache figures are present and vLLM is 0.33.0+."""
    ev = [launch(tmp_path, MP_LAUNCH), scrape(tmp_path, MP), _vllm_scrape(tmp_path, False)]
    r = compat(*ev, log(tmp_path, "vLLM server version 0.33.0, serving model M\n"))
    assert "vllm_prompt_logprobs_external_miss" in [c.id for c in r.caveats]
    old = compat(*ev, log(tmp_path, "vLLM server version 0.31.0, serving model M\n",
                          name="old.log"))
    assert "vllm_prompt_logprobs_external_miss" not in [c.id for c in old.caveats]


def test_conflicting_versions_follow_the_measured_one(tmp_path: Path) -> None:
    r = compat(launch(tmp_path, f"vllm==0.31.0\n{OFFLOAD}"),
               capture(tmp_path, "engine", {"version": {"version": "0.33.0"}},
                       kind="engine_http"))
    assert r.versions is not None and r.versions.versions["vllm"] == "0.33.0"
    assert any("different versions" in n for n in r.versions.notes)
    assert r.detected.mode == "mp"


@pytest.mark.parametrize("flag,present", [("", False), (" --kv-cache-metrics", True)])
def test_vllm_kv_residency_families_need_kv_cache_metrics(tmp_path: Path, flag: str,
                                                          present: bool) -> None:
    """vLLM 0.33.0 v1/metrics/loggers.py registers the kv_block_* histograms only when
    ObservabilityConfig.kv_cache_metrics is set (--kv-cache-metrics)."""
    text = ("lmcache server --port 5555\nvllm serve M --kv-transfer-config "
            "'{\"kv_connector\":\"LMCacheMPConnector\",\"kv_role\":\"kv_both\"}'" + flag + "\n")
    r = compat(launch(tmp_path, text), scrape(tmp_path, MP), _vllm_scrape(tmp_path, False))
    fam = r.family("vllm:kv_block_reuse_gap_seconds")
    assert fam is not None
    assert fam.status == ("missing" if present else "not_applicable")


# -- /status and /config keys that changed in 0.5.7 ---------------------------------------------


def test_status_and_config_keys_of_both_versions(tmp_path: Path) -> None:
    """0.5.7 renamed /status storage_manager.prefetch_controller.max_in_flight (a count) to
    inflight_watermark (a fraction) and added /config observability.token_trace_enabled;
    both versions answer mp.null_block_id (real captures of each)."""
    new = read("http", V057 / "http").facts
    old = read("http", V056 / "http").facts
    assert (new.prefetch_inflight_key, new.prefetch_inflight) == ("inflight_watermark", 0.5)
    assert (old.prefetch_inflight_key, old.prefetch_inflight) == ("max_in_flight", 8.0)
    assert new.token_trace_enabled is False and old.token_trace_enabled is None
    assert new.null_block_id == old.null_block_id == 0
    assert new.l2_adapter_config_reprs == 0


def test_fs_l2_adapter_config_as_a_repr_string(tmp_path: Path) -> None:
    """0.5.7 regression: with an fs L2, /config storage_manager.l2_adapter_config.adapters[0]
    is the Python repr of FSL2AdapterConfig (0.5.6 answered a dict): counted, not parsed."""
    repr_ = ("<lmcache.v1.distributed.l2_adapters.fs_l2_adapter.FSL2AdapterConfig object at "
             "0x7f3a2c1d5e90>")
    ev = capture(tmp_path, "http", {"config": {"storage_manager": {
        "l2_adapter_config": {"adapters": [repr_, {"type": "fs", "base_path": "/x"}]}}}},
        kind="http")
    assert ev.facts.l2_adapter_config_reprs == 1


def test_null_block_finding_names_the_configured_id(tmp_path: Path) -> None:
    """The finding rests on the trace (measured) and names /config mp.null_block_id."""
    p = packet(read("trace", V057 / "mp-l1-storage-trace" / "storage.lct"),
               read("http", V057 / "http"))
    f = ig.judge_packet(p).diagnosis.finding("lmcache_mp_first_chunk_never_stored")
    assert f is not None and f.level == "supported"
    assert "4 of 20 prefix lookups" in f.message and "/config 0" in f.message


def test_token_sources_separate_local_reuse_from_the_connector(tmp_path: Path) -> None:
    """The real vLLM 0.32.0 + LMCache MP scrape (tests/fixtures/lmcache_live/vllm_live_mp):
    vllm:prompt_tokens_by_source{source} (v1/metrics/loggers.py) says how many prompt tokens
    vLLM's own prefix cache served (kept locally) and how many the KV connector loaded; the
    constant engine/model labels do not stop the split."""
    from inferguard.judge._facts import report_facts

    scrape_file = next((FIXTURES / "lmcache_live" / "vllm_live_mp" / "packet" / "inputs"
                        / "engine_metrics").glob("*.txt"))
    ts = report_facts(packet(read("engine_metrics", scrape_file))).token_sources
    assert ts is not None
    assert (ts.local_compute, ts.local_cache_hit, ts.external_kv_transfer) == (3312, 1280, 640)
    assert ts.cached_by_source["device"] == ts.local_cache_hit
    assert ts.cached_by_source["external_unspecified"] == ts.external_kv_transfer
    assert ts.kv_block_reuse_observations is None
    hist = ("# HELP vllm:kv_block_reuse_gap_seconds x\n"
            "# TYPE vllm:kv_block_reuse_gap_seconds histogram\n"
            'vllm:kv_block_reuse_gap_seconds_bucket{engine="0",le="1.0"} 3.0\n'
            'vllm:kv_block_reuse_gap_seconds_bucket{engine="0",le="+Inf"} 5.0\n'
            'vllm:kv_block_reuse_gap_seconds_count{engine="0"} 5.0\n'
            'vllm:kv_block_reuse_gap_seconds_sum{engine="0"} 9.0\n')
    with_hist = report_facts(packet(read("engine_metrics", _write(tmp_path, "h.txt", hist))))
    assert with_hist.token_sources is not None
    assert with_hist.token_sources.kv_block_reuse_observations == 5.0  # the _count


def test_offload_flag_without_size_keeps_the_launchs_other_signals(tmp_path: Path) -> None:
    """A size-less offload flag adds nothing, and the launch's P2P extra config still counts."""
    cfg = ('{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both",'
           '"kv_connector_extra_config":{"enable_p2p":true}}')
    r = compat(launch(tmp_path, f"vllm serve M --kv-offloading-backend lmcache "
                                f"--kv-transfer-config '{cfg}'\n"))
    assert "p2p" in {c.mode for c in r.detected.candidates}
    assert not any("kv-offloading-backend" in ref.detail for c in r.detected.candidates
                   for ref in c.evidence)


def test_caveat_reaches_the_external_hit_rate(tmp_path: Path) -> None:
    """The vllm#57596 caveat is attached to the external prefix-cache hit rate itself."""
    ev = [launch(tmp_path, MP_LAUNCH), scrape(tmp_path, MP), _vllm_scrape(tmp_path, False),
          log(tmp_path, "vLLM server version 0.33.0, serving model M\n")]
    r = compat(*ev)
    ext = [x for x in r.rates if x.name == "vllm_external_prefix_cache_hit_rate"]
    assert ext and "vllm_prompt_logprobs_external_miss" in (ext[0].note or "")
    others = [x for x in r.rates if x.name != "vllm_external_prefix_cache_hit_rate"]
    assert all("vllm_prompt_logprobs" not in (x.note or "") for x in others)
