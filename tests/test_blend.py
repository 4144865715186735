"""CacheBlend on the shared 0.5.6 captures: catalog, span facts, mode flavour, findings."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from inferguard._packet import Packet, PacketSettings
from inferguard.evidence._otel import prometheus_name, read_otel
from inferguard.findings import diagnose
from inferguard.judge._catalog import FAMILIES
from inferguard.judge._compat import compat
from inferguard.judge._mode import detect_mode

from .conftest import UPSTREAM

BLEND = UPSTREAM / "metrics" / "blend-prometheus"
SPANS = UPSTREAM / "otel" / "blend_otlp_traces.jsonl"
LOG = UPSTREAM / "logs" / "blend_server.log"
CMD = UPSTREAM / "blend_cmd.txt"


def _packet(*inputs: tuple[str, Path], **settings: object) -> Packet:
    return Packet.from_files(inputs, settings=PacketSettings(**settings))  # type: ignore[arg-type]


def test_catalog_has_every_blend_family_with_its_otlp_name() -> None:
    blend = [f for f in FAMILIES if f.group == "blend"]
    assert len(blend) == 32  # cb_server.py declares 32 instruments
    for f in blend:
        assert f.lazy and "blend" in f.applies and len(f.forms) == 1
        (dotted,) = f.forms
        assert dotted.startswith("lmcache_blend.")
        # The Prometheus exporter's name for the OTLP instrument is the scraped name.
        kind, unit = ("sum", "tokens") if f.type == "counter" else ("histogram", "ms")
        unit = unit if f.type == "histogram" or "tokens" in f.name else ""
        assert prometheus_name(dotted, unit, kind, kind == "sum") == f.name
    # The 29 families the live run saw are all catalogued; the coordinator's 3 need one.
    scraped = {line.split()[2] for line in (BLEND / "metrics_final.txt").read_text().splitlines()
               if line.startswith("# TYPE lmcache_blend_")}
    assert len(scraped) == 29 and scraped <= {f.name for f in blend}
    assert {f.name for f in blend} - scraped == {
        "lmcache_blend_coordinator_matches_total",
        "lmcache_blend_coordinator_match_timeouts_total",
        "lmcache_blend_coordinator_match_duration_milliseconds"}


def test_full_blend_packet() -> None:
    r = compat(_packet(("lmcache_metrics", BLEND / "metrics_final.txt"), ("otel", SPANS),
                       ("log", LOG), ("launch_config", CMD)).with_settings(expected_mode="mp"))
    assert r.detected.mode == "mp" and r.detected.flavor == "blend" and r.mode_match
    assert any("CacheBlend server" in n for n in r.detected.notes)
    assert r.group("blend").status == "populated"  # type: ignore[union-attr]
    coord = r.family("lmcache_blend_coordinator_matches_total")
    assert coord is not None and coord.status == "not_applicable"
    assert r.family("lmcache_mp_lookup_hit_tokens_total").status == "not_applicable"  # type: ignore[union-attr]
    assert r.missing_required == [] and r.unknown_lmcache_families == []
    found = {f.code: f for f in diagnose(r).findings}
    expected = {
        "lmcache_blend_retrieve_failures": "full recompute",
        "lmcache_blend_no_gpu_context": "no-such-model",
        "lmcache_blend_scatter_counts_attempts": "lmcache_blend_scatter_tokens_total=192",
        "lmcache_blend_stale_fingerprints": "lmcache_blend_lookup_stale_chunks_total=6",
        "lmcache_blend_retrieve_noops": "matches_beyond_alloc",
        "lmcache_blend_lookup_spans_held_open": "longest 32.3 s",
        "lmcache_blend_sparse_prefetch_l2_keys_not_l2": "no L2 adapter is configured",
    }
    for code, text in expected.items():
        assert text in found[code].message, (code, found[code].message)
        assert found[code].level == "supported"
    assert "lmcache_blend_fingerprint_match_jit_outlier" not in found  # none in these runs
    noop = found["lmcache_blend_retrieve_noops"].message
    assert "reason=matches_straddle_alloc}=1" in noop and "no metric, no span" in noop


def test_span_facts_carry_what_the_findings_need() -> None:
    f = read_otel(SPANS).facts
    retrieve, scatter, lookup = f.span("cb.retrieve"), f.span("cb.scatter"), f.span("cb.lookup")
    # Child attributes arrive as strings; booleans are tallied, numbers summed.
    assert retrieve.string_values["success"] == {"False": 1}
    assert scatter.string_values["success"] == {"False": 1}
    assert scatter.numeric_sums["scattered_tokens"] == 96
    assert lookup.string_values["no_gpu_context"] == {"False": 7, "True": 1}
    assert f.span("cb.retrieve.noop").string_values["reason"] == {"matches_straddle_alloc": 1}
    assert f.span("cb.sparse_prefetch").numeric_sums["l2_keys"] == 0  # the END value
    assert f.root_spans["cb.request"] == 8
    assert f.root_spans["cb.fingerprints.registered"] == 19
    assert f.root_spans["cb.chunks.evicted"] == 2
    edges = {(e.parent, e.child) for e in f.edges}
    assert {("cb.request", "cb.lookup"), ("cb.lookup", "cb.fingerprint_match"),
            ("cb.lookup", "cb.prefix_lookup"), ("cb.lookup", "cb.sparse_prefetch"),
            ("cb.request", "cb.retrieve"), ("cb.retrieve", "cb.scatter"),
            ("cb.request", "cb.retrieve.noop")} <= edges
    (gap,) = f.gaps
    # cb-mixed-BA (retrieved without a span: matches_beyond_alloc) and the two after-evict
    # lookups, whose roots were exported only at SIGINT.
    assert (gap.parent, gap.count, gap.over_1s) == ("cb.request", 3, 2)
    assert gap.duration_ms_max == pytest.approx(32301.159529)


@pytest.mark.parametrize("kind,path", [("otel", SPANS), ("log", LOG),
                                       ("lmcache_metrics", BLEND / "metrics_final.txt")])
def test_each_surface_alone_shows_the_blend_flavour(kind: str, path: Path) -> None:
    det = detect_mode(_packet((kind, path)))
    assert det.mode == "mp" and det.flavor == "blend"


def test_status_keys_show_a_blend_server(tmp_path: Path) -> None:
    d = tmp_path / "http"
    shutil.copytree(UPSTREAM / "http", d)
    status = json.loads((d / "GET_status.body").read_text())
    status.update({"registered_cb_rope_instances": [1000], "cb_rope_meta": {"1000": None},
                   "active_cb_lookups": 0})
    (d / "GET_status.body").write_text(json.dumps(status))
    packet = _packet(("http", d))
    http = packet.of_kind("http")[0].facts
    assert http.cb_status_keys == ["registered_cb_rope_instances", "cb_rope_meta",
                                   "active_cb_lookups"] and http.active_cb_lookups == 0
    assert detect_mode(packet).flavor == "blend"
    assert detect_mode(_packet(("http", UPSTREAM / "http"))).flavor is None


def test_spans_alone_make_mp_lookup_families_not_applicable() -> None:
    """No blend family in the packet, only spans and the log: the flavour still tells compat
    that CB lookups cannot feed lmcache_mp_lookup_*."""
    r = compat(_packet(("otel", SPANS), ("log", LOG)).with_settings(expected_mode="mp"))
    assert r.conditions["blend"] and not r.conditions["non_blend"]
    look = r.family("lmcache_mp_lookup_hit_tokens_total")
    assert look is not None and look.status == "not_applicable"
    assert "CacheBlend" in (look.explanation or "")


def test_before_traffic_blend_families_are_explained() -> None:
    r = compat(_packet(("lmcache_metrics", BLEND / "metrics_before.txt"),
                       ("launch_config", CMD)).with_settings(expected_mode="mp"))
    assert r.conditions["blend"] and not r.conditions["traffic"]
    look = r.family("lmcache_blend_lookup_requests_total")
    assert look is not None and look.status == "missing" and "first use" in (
        look.explanation or "")
    fail = r.family("lmcache_blend_retrieve_failures_total")
    assert fail is not None and "event" in (fail.explanation or "")
    assert r.missing_required == []


def test_log_only_blend_findings_are_inferred() -> None:
    found = {f.code: f for f in diagnose(compat(_packet(("log", LOG)))).findings}
    for code in ("lmcache_blend_retrieve_failures", "lmcache_blend_no_gpu_context",
                 "lmcache_blend_stale_fingerprints", "lmcache_blend_retrieve_noops"):
        assert found[code].level == "inferred_without_engine_metrics", code
    assert "matches_beyond_alloc, matches_straddle_alloc" in found[
        "lmcache_blend_retrieve_noops"].message


def _move_one_observation(text: str) -> str:
    """The final scrape with one fingerprint match moved to the 250-ms bucket (the 264 ms
    first lookup of live-blend-controller-findings.md §1.5.8), sum raised to match."""
    def bucket(m: re.Match[str]) -> str:
        le, value = float(m.group(2)), float(m.group(3))
        return f"{m.group(1)}{m.group(2)}\"}} {value - 1 if 5.0 <= le < 250.0 else value}"
    text = re.sub(r'(lmcache_blend_fingerprint_match_duration_milliseconds_bucket\{le=")'
                  r'([0-9.]+)"\} ([0-9.]+)', bucket, text)
    return text.replace("lmcache_blend_fingerprint_match_duration_milliseconds_sum "
                        "11.877059936523438",
                        "lmcache_blend_fingerprint_match_duration_milliseconds_sum 275.9")


def test_jit_outlier_in_the_histogram_and_the_spans(tmp_path: Path) -> None:
    scrape = tmp_path / "metrics.txt"
    scrape.write_text(_move_one_observation((BLEND / "metrics_final.txt").read_text()))
    found = {f.code: f for f in diagnose(compat(_packet(("lmcache_metrics", scrape)))).findings}
    f = found["lmcache_blend_fingerprint_match_jit_outlier"]
    assert "1 of 13 observations above 100 ms" in f.message and f.severity == "info"
    lines = []
    first = True
    for line in SPANS.read_text().splitlines():
        doc = json.loads(line)
        for rs in doc.get("resourceSpans", []):
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    if sp["name"] == "cb.fingerprint_match" and first:
                        sp["endTimeUnixNano"] = str(int(sp["startTimeUnixNano"]) + 264_000_000)
                        first = False
        lines.append(json.dumps(doc))
    spans = tmp_path / "spans.jsonl"
    spans.write_text("\n".join(lines) + "\n")
    found = {f.code: f for f in diagnose(compat(_packet(("otel", spans)))).findings}
    assert "max 264 ms" in found["lmcache_blend_fingerprint_match_jit_outlier"].message
