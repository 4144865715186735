"""The product's one promise, checked on every recorded packet: the human views are readable
(no control character escaped twice), no claim stands beside a finding that contradicts it,
and no claim rests on zeros alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import inferguard as ig
from inferguard.cli import main
from inferguard.verdict._claims import HITS_CONTRADICTED_BY, RUNS_CONTRADICTED_BY

from .conftest import FIXTURES

PACKETS = sorted(p.parent for p in FIXTURES.rglob("packet.json"))
# A control character escaped (by safe_text) and then escaped again shows as `\\x0a`; one
# escaped once from a log line is `\x0a` in the text, which is fine. Printed output must hold
# no raw control character either (other than newlines and tabs).
_DOUBLE = re.compile(r"\\\\x[0-9a-f]{2}|\\x0a")
_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A metric value of zero (`family=0`, `family{label=x}=0`), not a setting such as
# PYTHONHASHSEED=0.
_ZERO = re.compile(r"^[a-z][a-z0-9_:.]*(?:\{[^}]*\})?=0(?:\.0)?(?:\s|$)")


def test_every_recorded_packet_is_covered() -> None:
    assert len(PACKETS) >= 6


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_human_views_are_readable(packet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lmcache-compat", "--packet", str(packet)]) == 0
    compat_out = capsys.readouterr().out
    assert main(["diagnose-bottleneck", "--packet", str(packet)]) == 0
    diag_out = capsys.readouterr().out
    for out in (compat_out, diag_out):
        assert not _DOUBLE.search(out), _DOUBLE.search(out)
        assert not _RAW.search(out)
    verdict = ig.diagnose_packet(packet)
    # Every finding is printed with its code, one per block, on lines of its own.
    for f in verdict.diagnosis.findings:
        assert re.search(rf"^  \w+ +{f.code} \[", compat_out, re.M), f.code
        assert re.search(rf"^  \w+ +{f.code} \[", diag_out, re.M), f.code
    # Groups that are missing say why.
    for g in verdict.report.groups:
        if g.status in ("missing", "partial") and g.reason:
            assert g.reason in compat_out


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_no_claim_beside_a_contradicting_finding(packet: Path) -> None:
    v = ig.diagnose_packet(packet)
    codes = set(v.diagnosis.codes())
    made = {c.id: c for c in v.claims.made}
    if "mode" in made:
        assert not codes & set(RUNS_CONTRADICTED_BY), (made["mode"], codes)
    if "cache_hits" in made:
        assert not codes & set(HITS_CONTRADICTED_BY), (made["cache_hits"], codes)
    # What is withheld names the findings that stopped it, and they are in the diagnosis.
    for w in v.claims.withheld:
        assert set(w.codes) <= codes | {"lmcache_blend_retrieve_failures"}


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_no_claim_rests_on_zeros(packet: Path) -> None:
    v = ig.diagnose_packet(packet)
    for c in v.claims.made:
        if c.id == "no_cache_hits":  # a zero is evidence against: that claim is made of them
            continue
        assert not c.evidence or not all(_ZERO.search(e) for e in c.evidence), c
    for item in v.report.checklist:
        if item.present:
            assert not all(_ZERO.search(e) for e in item.evidence), item


def test_embedded_dead_packet_claims_configuration_not_running() -> None:
    """The real vLLM + LMCacheConnectorV1 run on CPU: configured, serving, never caching."""
    v = ig.diagnose_packet(FIXTURES / "lmcache_live" / "vllm_live_embedded" / "packet")
    assert "lmcache_configured_but_not_working" in v.diagnosis.codes()
    made = {c.id for c in v.claims.made}
    assert "mode" not in made and "cache_hits" not in made
    assert "mode_configured" in made
    assert {w.id for w in v.claims.withheld} >= {"mode", "cache_hits"}


def _scrape(tmp: Path, rows: dict[str, float], kind: str = "lmcache_metrics") -> ig.Evidence:
    text = "".join(f"# TYPE {k.removesuffix('_total')} counter\n{k} {v!r}\n"
                   for k, v in rows.items())
    path = tmp / f"{kind}.txt"
    path.write_text(text)
    return ig.read_evidence(kind, path)


def _claims(*evidence: ig.Evidence) -> ig.Claims:
    return ig.judge_packet(ig.Packet(settings=ig.PacketSettings(), evidence=list(evidence))).claims


def test_a_zero_hit_counter_is_evidence_against(tmp_path: Path) -> None:
    """lmcache_mp_lookup_hit_tokens_total reads 0 after 512 requested tokens: the claim is
    that no hit was measured. Near miss: 256 hit tokens make it `cache_hits`."""
    rows = {"lmcache_mp_lookups_requests_total": 4.0,
            "lmcache_mp_lookup_requested_tokens_total": 512.0,
            "lmcache_mp_lookup_hit_tokens_total": 0.0}
    made = {c.id: c for c in _claims(_scrape(tmp_path, rows)).made}
    assert "cache_hits" not in made and made["no_cache_hits"].level == "supported"
    rows["lmcache_mp_lookup_hit_tokens_total"] = 256.0
    made = {c.id: c for c in _claims(_scrape(tmp_path, rows)).made}
    assert "no_cache_hits" not in made and made["cache_hits"].decided_by == "metric"


def test_blend_hits_need_a_successful_retrieve(tmp_path: Path) -> None:
    """A CacheBlend server whose every retrieve failed served no KV, whatever its lookup hit
    tokens (fingerprint matches) say (live-blend-controller-findings.md). Near miss: one of
    the four retrieves succeeded."""
    rows = {"lmcache_blend_lookup_requests_total": 4.0,
            "lmcache_blend_lookup_requested_tokens_total": 1024.0,
            "lmcache_blend_lookup_hit_tokens_total": 768.0,
            "lmcache_blend_retrieve_requests_total": 4.0,
            "lmcache_blend_retrieve_failures_total": 4.0}
    claims = _claims(_scrape(tmp_path, rows))
    assert "cache_hits" not in {c.id for c in claims.made}
    assert any(w.id == "cache_hits" and "lmcache_blend_retrieve_failures" in w.codes
               for w in claims.withheld)
    rows["lmcache_blend_retrieve_failures_total"] = 3.0
    assert "cache_hits" in {c.id for c in _claims(_scrape(tmp_path, rows)).made}
