"""Offline checks over the packets recorded from the real LMCache 0.5.6 server.

`scripts/live-lmcache-packet --record-fixture tests/fixtures/lmcache_live` wrote
`mp_live_{l1,l2,otel}/` (see each README.md); the live end-to-end test checks the same things
against a fresh run (tests/live/, INFERGUARD_LIVE=1). Here InferGuard re-reads the recorded
bytes and must reach the verdict it reached live, with counts equal to the client's and to
upstream's `lmcache trace info`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard._packet import Packet
from inferguard.cli._main import main
from inferguard.evidence._readers import read_evidence
from inferguard.findings import diagnose
from inferguard.judge._compat import CompatReport, compat

from .conftest import FIXTURES
from .live_checks import (
    SCENARIOS,
    check_bench_totals,
    check_http_requests,
    check_isolation,
    check_spans,
    check_trace,
    check_verdict,
    script,
)

LIVE = FIXTURES / "lmcache_live"


def _dir(name: str) -> Path:
    return LIVE / f"mp_live_{name}"


def _result(name: str) -> dict[str, Any]:
    res: dict[str, Any] = json.loads((_dir(name) / "result.json").read_text())
    return res


def _recorded_report(name: str) -> CompatReport:
    data = (_dir(name) / "packet" / "metrics" / "lmcache_compat_report.json").read_bytes()
    return msgspec.json.decode(data, type=CompatReport)


@pytest.mark.parametrize("name", SCENARIOS)
def test_recorded_run_was_clean(name: str) -> None:
    res = _result(name)
    assert res["ok"] and res["compat_exit"] == 0 and res["diagnose_exit"] == 0
    assert res["trace_closed_cleanly"] and res["server_stop"]["signal"] == "SIGINT"
    check_isolation(res)


@pytest.mark.parametrize("name", SCENARIOS)
def test_verdict_from_the_recorded_packet(name: str) -> None:
    """Judged again from the stored evidence, the packet gets the verdict it got live."""
    packet = Packet.load(_dir(name) / "packet")
    report = compat(packet)
    check_verdict(report, name)
    check_bench_totals(report, _result(name)["bench"])
    # Against the verdict recorded live: every group it judged keeps its status, and every
    # family it found populated still is (the catalog may have grown since).
    live = _recorded_report(name)
    now = {g.id: g.status for g in report.groups}
    assert {g.id: now.get(g.id) for g in live.groups} == {g.id: g.status for g in live.groups}
    populated = {f.name for f in report.families if f.status == "populated"}
    assert {f.name for f in live.families if f.status == "populated"} <= populated
    codes = diagnose(report).codes()
    assert "lmcache_required_family_missing" not in codes
    assert ("lmcache_mp_metrics_via_otlp" in codes) == (name == "otel")
    assert ("lmcache_l1_pressure" in codes) == (name == "l2")


@pytest.mark.parametrize("name", SCENARIOS)
def test_raw_inputs_read_again_give_the_verdict(name: str, backend: str) -> None:
    """The raw live bytes in the packet (scrape, log, trace, OTLP lines, launch), re-read by
    today's readers on both backends, with the HTTP answers as collected, still give the
    verdict and the client's counts."""
    del backend
    root = _dir(name) / "packet"
    packet = Packet.load(root)
    fresh = [e for e in packet.evidence if e.kind == "http"]
    for item in packet.inputs:
        if item.kind == "http" or item.copied_as is None:
            continue
        ev = read_evidence(item.kind, root / item.copied_as)
        assert ev.source.sha256 == item.sha256 and ev.status == "ok", (item.kind, ev.problems)
        fresh.append(ev)
    assert {e.kind for e in fresh} >= {"http", "lmcache_metrics", "log", "trace",
                                       "launch_config"}
    report = compat(Packet(settings=packet.settings, evidence=fresh))
    check_verdict(report, name)
    check_bench_totals(report, _result(name)["bench"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_trace_counts_equal_upstream_trace_info(name: str, backend: str) -> None:
    del backend
    root = _dir(name) / "packet"
    packet = Packet.load(root)
    check_trace(packet, (_dir(name) / "upstream_trace_info.txt").read_text())
    # And read fresh from the recorded .lct bytes, on this backend.
    item = next(i for i in packet.inputs if i.kind == "trace")
    assert item.copied_as is not None
    fresh = Packet(settings=packet.settings, evidence=[read_evidence("trace",
                                                                    root / item.copied_as)])
    check_trace(fresh, (_dir(name) / "upstream_trace_info.txt").read_text())


@pytest.mark.parametrize("name", SCENARIOS)
def test_server_saw_only_read_only_gets(name: str) -> None:
    root = _dir(name) / "packet"
    log = root / "inputs" / "log" / "server.log"
    requests = script().access_log(log.read_text(errors="replace"))
    assert requests == _result(name)["http_requests"]
    check_http_requests(requests)
    http = Packet.load(root).of_kind("http")[0]
    assert http.status == "ok"
    skipped = {(s.method, s.path) for s in http.facts.skipped}  # type: ignore[union-attr]
    assert {("POST", "/cache/clear"), ("DELETE", "/cache/objects"), ("POST", "/metrics/reset"),
            ("POST", "/run_script"), ("POST", "/cache/checksums")} <= skipped


@pytest.mark.parametrize("name", SCENARIOS)
def test_bench_outputs_parse_to_the_recorded_totals(name: str) -> None:
    text = "".join(p.read_text() for p in sorted((_dir(name) / "bench").glob("bench*.out")))
    parsed = script().parse_bench(text)
    recorded = dict(_result(name)["bench"])
    assert recorded.pop("chunk_size") == 16
    assert parsed == recorded
    assert parsed["full_hits"] and parsed["misses"]
    if name != "l2":
        assert parsed["partial_hits"] == 2  # 128-token requests over 64 stored tokens: 4/8


def test_otel_spans_recorded() -> None:
    check_spans(Packet.load(_dir("otel") / "packet"), _result("otel")["bench"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_cli_on_the_recorded_packet(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["lmcache-compat", "--packet", str(_dir(name) / "packet"), "--expect-mode", "mp",
            "--fail-on", "missing-required", "--json"]
    if name == "l2":
        args.append("--l2-configured")
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"]["detected"]["mode"] == "mp"
    assert main(["diagnose-bottleneck", "--packet", str(_dir(name) / "packet"),
                 "--fail-on", "error-finding"]) == 0
    assert "mode=mp" in capsys.readouterr().out


def test_l2_run_shows_pressure_and_l2_hits() -> None:
    r = compat(Packet.load(_dir("l2") / "packet"))
    fam = {f.name: f for f in r.families}
    assert (fam["lmcache_mp_lookup_hit_l2_tokens_total"].total or 0) > 0
    assert (fam["lmcache_mp_l1_allocation_failure_chunks_total"].total or 0) > 0
    assert (fam["lmcache_mp_l1_evicted_chunks_total"].total or 0) > 0
    hints = r.facts.log_hints
    assert hints["allocation_failure"] > 0 and hints["l1_eviction_triggered"] > 0
    codes = diagnose(r).codes()
    assert "lmcache_required_family_missing" not in codes
