"""Mode detection, lmcache-compat and diagnose on real captures and reference-built fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from inferguard._packet import Packet, PacketSettings
from inferguard.cli._main import main
from inferguard.findings import diagnose
from inferguard.judge._catalog import FAMILIES, GROUPS
from inferguard.judge._compat import CompatReport, compat
from inferguard.judge._mode import detect_mode
from inferguard.verdict import judge_report

from .conftest import FIXTURES, UPSTREAM

LIVE = FIXTURES / "lmcache_live"
PACKET_A = LIVE / "packet_a_missing_prometheus"
SCRAPES = UPSTREAM / "metrics" / "mp-l1-storage-trace"


def _packet(*inputs: tuple[str, Path], **settings: object) -> Packet:
    return Packet.from_files(inputs, settings=PacketSettings(**settings))  # type: ignore[arg-type]


def test_packet_a_command_fails_on_missing_required(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["lmcache-compat",
            "--engine-metrics-file", str(PACKET_A / "vllm_metrics_loaded.prom"),
            "--lmcache-metrics-file", str(PACKET_A / "lmcache_metrics_loaded.prom"),
            "--lmcache-http-evidence-file", str(PACKET_A / "lmcache_http_evidence.json"),
            "--lmcache-log-evidence-file", str(PACKET_A / "lmcache_log_evidence.json"),
            "--lmcache-lookup-hash-evidence-file",
            str(PACKET_A / "lmcache_lookup_hash_evidence.json"),
            "--expect-mode", "mp"]
    assert main([*args, "--fail-on", "missing-required", "--json"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    report = doc["report"]
    assert report["detected"]["mode"] == "mp" and report["mode_match"] is True
    missing = set(report["missing_required"])
    assert {"lmcache_mp_lookup_hit_tokens_total", "lmcache_mp_lookup_requested_tokens_total",
            "lmcache_mp_l1_memory_usage_bytes"} <= missing
    codes = [f["code"] for f in doc["diagnosis"]["findings"]]
    assert "lmcache_required_family_missing" in codes
    assert "lmcache_mp_lookup_counters_missing" in codes
    assert "failing on: missing-required" in captured.err
    # Without --fail-on the same report exits 0.
    assert main([*args, "--json"]) == 0


def test_before_traffic_is_explained_not_failed() -> None:
    r = compat(_packet(("lmcache_metrics", SCRAPES / "metrics_before.txt"))
        .with_settings(expected_mode="mp"))
    assert r.detected.mode == "mp" and not r.conditions["traffic"]
    assert r.missing_required == [] and r.zero_required == []
    look = r.family("lmcache_mp_lookup_hit_tokens_total")
    assert look is not None and look.status == "missing"
    assert "first use" in (look.explanation or "")
    assert r.family("lmcache_mp_l1_eviction_loop_ticks_total").status == "populated"  # type: ignore[union-attr]
    codes = diagnose(r).codes()
    assert "lmcache_families_not_created_yet" in codes
    assert "lmcache_required_family_missing" not in codes


def test_engine_driven_scrape_explains_transfer_families() -> None:
    r = compat(_packet(("lmcache_metrics", SCRAPES / "metrics_mid.txt"))
        .with_settings(expected_mode="mp"))
    t = r.family("lmcache_mp_num_submitted_stores_total")
    assert t is not None and t.status == "not_applicable"
    assert "lmcache-driven" in (t.explanation or "")
    assert r.family("lmcache_mp_lookup_hit_tokens_total").status == "populated"  # type: ignore[union-attr]
    assert "lmcache_transfer_path_families_absent" in diagnose(r).codes()


def test_after_scrape_populates_transfer_path_and_l2_not_applicable() -> None:
    r = compat(_packet(("lmcache_metrics", SCRAPES / "metrics_after.txt"),
                       mp_metrics_sample_rate=1.0).with_settings(expected_mode="mp"))
    assert r.group("mp_transfer").status == "populated"  # type: ignore[union-attr]
    assert r.group("mp_l0_l1_throughput").status == "populated"  # type: ignore[union-attr]
    l2 = r.family("lmcache_mp_l2_store_submitted_requests_total")
    assert l2 is not None and l2.status == "not_applicable" and "--l2-configured" in (
        l2.explanation or "")
    assert r.group("mp_l2").status == "not_applicable"  # type: ignore[union-attr]
    with_l2 = compat(_packet(("lmcache_metrics", SCRAPES / "metrics_after.txt"))
        .with_settings(expected_mode="mp", l2_configured=True))
    assert with_l2.family("lmcache_mp_l2_store_submitted_requests_total").status == "missing"  # type: ignore[union-attr]
    assert with_l2.group("mp_l2").status == "missing"  # type: ignore[union-attr]
    obs = r.lmcache_mp_observability
    assert obs is not None and obs.service_instance_ids == ["live-packet-A"]
    assert obs.cache_salt_cardinality == 1 and obs.event_bus.dropped_events == 0
    assert "dead default bus" in obs.event_bus.note
    q = r.family("lmcache_mp_event_bus_queue_depth")
    assert q is not None and q.status == "zero" and "always 0" in (q.explanation or "")


def test_otlp_capture() -> None:
    scrape = UPSTREAM / "metrics" / "mp-otlp-engine-driven" / "metrics_otlpmode.txt"
    r = compat(_packet(
        ("lmcache_metrics", scrape),
        ("log", UPSTREAM / "logs" / "otlp_server.log"),
        ("otel", UPSTREAM / "otel" / "mp_otlp_traces.jsonl")).with_settings(expected_mode="mp"))
    assert r.detected.mode == "mp"
    assert "otel" in r.detected.candidates[0].evidence_kinds
    codes = diagnose(r).codes()
    assert "lmcache_mp_metrics_via_otlp" in codes and "lmcache_mp_metrics_missing" not in codes
    made = judge_report(r).claims.made
    assert any(c.id == "request_level_evidence" and c.level == "supported" for c in made)


def test_otlp_metric_export_counts_as_the_families() -> None:
    """A server with --otlp-endpoint pushes its families instead of serving them: with the
    OTLP export in the packet they are judged from it, not reported missing (found live)."""
    scrape = UPSTREAM / "metrics" / "mp-otlp-engine-driven" / "metrics_otlpmode.txt"
    r = compat(_packet(
        ("lmcache_metrics", scrape),
        ("log", UPSTREAM / "logs" / "otlp_server.log"),
        ("otel", UPSTREAM / "otel" / "mp_otlp_metrics.jsonl")).with_settings(expected_mode="mp"))
    assert r.missing_required == [] and r.conditions["traffic"]
    hit = r.family("lmcache_mp_lookup_hit_tokens_total")
    assert hit is not None and hit.status == "populated" and hit.total == 576.0
    assert hit.found_as == "lmcache_mp.lookup_hit" and "OTLP" in (hit.explanation or "")
    assert r.group("mp_gauges").status == "populated"  # type: ignore[union-attr]
    assert r.unknown_lmcache_families == []
    codes = diagnose(r).codes()
    assert "lmcache_mp_metrics_via_otlp" in codes
    assert "lmcache_required_family_missing" not in codes
    # Without the export, the same scrape and log still say why the families are absent.
    bare = compat(_packet(("lmcache_metrics", scrape),
                          ("log", UPSTREAM / "logs" / "otlp_server.log"))
                              .with_settings(expected_mode="mp"))
    assert "lmcache_mp_metrics_via_otlp" in diagnose(bare).codes()


def test_blend_capture() -> None:
    r = compat(_packet(
        ("lmcache_metrics", UPSTREAM / "metrics" / "blend-prometheus" / "metrics_final.txt"),
        ("log", UPSTREAM / "logs" / "blend_server.log"),
        ("launch_config", UPSTREAM / "blend_cmd.txt")).with_settings(expected_mode="mp"))
    assert r.conditions["blend"] and r.group("blend").status == "populated"  # type: ignore[union-attr]
    look = r.family("lmcache_mp_lookup_hit_tokens_total")
    assert look is not None and look.status == "not_applicable"  # CB lookups don't feed these
    codes = diagnose(r).codes()
    assert {"lmcache_blend_retrieve_failures", "lmcache_l1_pressure"} <= set(codes)
    assert "lmcache_required_family_missing" not in codes


@pytest.mark.parametrize("fixture,mode,codes", [
    ("embedded_vllm", "embedded_vllm", {"lmcache_embedded_metrics_not_exported"}),
    ("embedded_sglang", "embedded_sglang", set()),
    ("hicache_only", "unknown", {"lmcache_sglang_hicache_only", "lmcache_not_configured"}),
    ("stale_connector", "embedded_vllm", {"lmcache_log_stale_connector"}),
    ("p2p", "p2p", {"lmcache_log_p2p_evidence_present", "lmcache_hash_seed_risk"}),
    ("pd", "pd", {"lmcache_log_pd_evidence_present", "lmcache_hash_seed_risk"}),
])
def test_mode_fixtures(fixture: str, mode: str, codes: set[str]) -> None:
    kinds = {"launch.txt": "launch_config", "engine.log": "log", "engine.prom": "engine_metrics"}
    d = LIVE / "modes" / fixture
    packet = _packet(*[(kinds[f.name], f) for f in sorted(d.iterdir())])
    det = detect_mode(packet)
    assert det.mode == mode, det
    got = set(diagnose(compat(packet)).codes())
    assert codes <= got, got
    if mode in ("p2p", "pd", "stale_connector"):
        assert det.level == "inferred_without_engine_metrics"  # logs and launch only


def test_log_only_mode_is_never_supported() -> None:
    det = detect_mode(_packet(("log", UPSTREAM / "logs" / "mp_server.log")))
    assert det.mode == "mp" and det.level == "inferred_without_engine_metrics"
    assert any("one surface" in n for n in det.notes)


def test_mode_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    r = compat(_packet(("lmcache_metrics", SCRAPES / "metrics_after.txt"))
        .with_settings(expected_mode="embedded_vllm"))
    assert r.mode_match is False and "lmcache_mode_mismatch" in diagnose(r).codes()
    assert main(["lmcache-compat", "--lmcache-metrics-file", str(SCRAPES / "metrics_after.txt"),
                 "--expect-mode", "embedded_vllm", "--fail-on", "mode-mismatch"]) == 1
    out = capsys.readouterr().out
    assert "detected_mode=mp" in out and "lmcache_mode_mismatch" in out


def test_unknown_lmcache_family_is_kept(tmp_path: Path) -> None:
    p = tmp_path / "m.prom"
    p.write_text((SCRAPES / "metrics_after.txt").read_text()
                 + "# TYPE lmcache_mp_brand_new_thing_total counter\n"
                   "lmcache_mp_brand_new_thing_total 3\n")
    r = compat(_packet(("lmcache_metrics", p)).with_settings(expected_mode="mp"))
    assert "lmcache_mp_brand_new_thing_total" in r.unknown_lmcache_families


def test_report_roundtrips_and_collect_writes_it(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "packet"
    assert main(["collect-lmcache", "--output-dir", str(out), "--lmcache-metrics-file",
                 str(SCRAPES / "metrics_after.txt"), "--lmcache-log-file",
                 str(UPSTREAM / "logs" / "mp_server.log"), "--expect-mode", "mp",
                 "--mp-tracing-enabled"]) == 0
    raw = (out / "metrics" / "lmcache_compat_report.json").read_bytes()
    report = msgspec.json.decode(raw, type=CompatReport)
    assert report.detected.mode == "mp" and report.schema == "inferguard.lmcache_compat/1"
    capsys.readouterr()
    assert main(["diagnose-bottleneck", "--packet", str(out), "--json"]) == 0
    diag = json.loads(capsys.readouterr().out)
    codes = [f["code"] for f in diag["findings"]]
    assert "lmcache_tracing_evidence_missing" in codes  # declared, not delivered
    assert all(set(f) >= {"code", "severity", "level", "message", "next_step"}
               for f in diag["findings"])
    assert main(["diagnose-bottleneck", "--packet", str(tmp_path / "nope")]) == 2
    assert main(["lmcache-compat", "--packet", str(out), "--fail-on", "error-finding"]) == 0


def test_catalog_is_consistent() -> None:
    """(The finding table is checked by the registry and tests/test_finding_codes.py.)"""
    groups = {g.id for g in GROUPS}
    assert {f.group for f in FAMILIES} <= groups
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    names = {f.name for f in FAMILIES}
    # Every hit counter names a denominator the catalog knows.
    assert all(f.hits_of in names for f in FAMILIES if f.hits_of)


def test_damaged_trace_and_malformed_evidence_findings(tmp_path: Path) -> None:
    bad = tmp_path / "cut.lct"
    bad.write_bytes((UPSTREAM / "storage.lct").read_bytes()[:20000])
    junk = tmp_path / "junk.lct"
    junk.write_bytes(b"not a trace")
    r = compat(_packet(("lmcache_metrics", SCRAPES / "metrics_after.txt"), ("trace", bad),
                       ("trace", junk)).with_settings(expected_mode="mp"))
    codes = diagnose(r).codes()
    assert "lmcache_trace_damaged" in codes and "lmcache_evidence_malformed" in codes


def test_trace_analytics_findings_reach_diagnose() -> None:
    r = compat(_packet(("trace", UPSTREAM / "lookup-replay-storage.lct"))
        .with_settings(expected_mode="mp"))
    findings = {f.code: f for f in diagnose(r).findings}
    unserved = findings["lmcache_trace_unserved_prefetches"]
    # A trace is measured evidence: an exact count on a cleanly ending trace is supported.
    assert unserved.level == "supported"
    assert "lmcache_trace_write_amplification" not in findings  # nothing was rewritten
    assert "offsets" in unserved.message
    # Damage and missing reads are reported once, by the compat rules, not twice.
    assert "lmcache_trace_damaged" not in findings
