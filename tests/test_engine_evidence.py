"""The engine side of a verdict, on real upstream bytes: which MP transfer path a log line
proves (engine-driven vs lmcache-driven), an engine that never started, and vLLM's /health.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import inferguard as ig
from inferguard._packet import Packet, PacketSettings
from inferguard.cli._main import main
from inferguard.collect import CollectOptions, collect_lmcache
from inferguard.evidence._engine_http import EngineHealthFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._readers import read_evidence
from inferguard.judge._compat import compat

from .conftest import FIXTURES, UPSTREAM
from .http_fake import RecordingServer, Reply

LIVE = FIXTURES / "lmcache_live"


def _log_facts(path: Path) -> LogFacts:
    ev = read_evidence("log", path)
    assert isinstance(ev.facts, LogFacts)
    return ev.facts


def _mp_report(*inputs: tuple[str, Path]):  # type: ignore[no-untyped-def]
    return compat(Packet.from_files(inputs, settings=PacketSettings(expected_mode="mp")))


# -- (7) engine-driven Stored/Retrieved lines are not the lmcache-driven path ------------------


def test_engine_driven_lines_do_not_make_the_lmcache_driven_path() -> None:
    """vLLM 0.32 + LMCacheMPConnector (the default MP path): every `Stored/Retrieved N tokens`
    line comes from EngineDrivenTransferModule (engine_driven_transfer.py), so the
    lmcache-driven transfer families stay not_applicable instead of turning `missing`."""
    root = LIVE / "vllm_live_mp" / "packet" / "inputs"
    f = _log_facts(root / "log" / "lmcache_server.log")
    assert f.count("mp_stored") == 5 and f.count("mp_retrieved") == 1
    assert f.count("mp_transfer_engine_driven") == 6
    assert f.count("mp_transfer_lmcache_driven") == 0
    scrape = next((root / "lmcache_metrics").iterdir())
    r = _mp_report(("lmcache_metrics", scrape), ("log", root / "log" / "lmcache_server.log"))
    assert r.conditions["lmcache_driven"] is False
    for name in ("lmcache_mp_num_submitted_stores_total",
                 "lmcache_mp_l0_l1_store_throughput_GB_per_second"):
        fam = r.family(name)
        assert fam is not None and fam.status == "not_applicable", fam
        assert "lmcache-driven" in (fam.explanation or "")


def test_lmcache_driven_lines_set_the_condition() -> None:
    """A CacheBlend server (0.5.6) stores through LMCacheDrivenTransferModule.store: its
    lines (lmcache_driven_transfer.py) do show the lmcache-driven path; a server that ran both
    paths counts each line on its own path."""
    blend = _log_facts(UPSTREAM / "logs" / "blend_server.log")
    assert blend.count("mp_transfer_lmcache_driven") == 20
    assert blend.count("mp_transfer_engine_driven") == 0
    both = _log_facts(UPSTREAM / "logs" / "mp_server.log")
    assert both.count("mp_transfer_engine_driven") == 18
    assert both.count("mp_transfer_lmcache_driven") == 4
    assert both.count("mp_stored") + both.count("mp_retrieved") == 22
    r = _mp_report(("log", UPSTREAM / "logs" / "blend_server.log"))
    assert r.conditions["lmcache_driven"] is True


# -- (5) an engine that never started is not reported as running ------------------------------

FAILED = FIXTURES / "engine_start_failure" / "vllm_importerror.log"


def test_startup_importerror_is_an_error_and_no_running_claim(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`vllm_importerror.log` is composed from vLLM 0.33.0's own text (see its README): the
    banner and startup lines of a real 0.32 CPU run, then EngineCoreProc.run_engine_core's
    `EngineCore failed to start.` (v1/engine/core.py) with its prefixed logger.exception
    traceback through KVConnectorFactory.create_connector → LMCacheConnectorV1.__init__'s lazy
    `from lmcache.integration.vllm.vllm_v1_adapter import` (frames at the wheel's line
    numbers), the multiprocessing `Process EngineCore:` traceback, and launch_core_engines'
    `RuntimeError: Engine core initialization failed. See root cause above.`
    (v1/engine/utils.py). The ImportError is a module 0.33.0 no longer ships."""
    f = _log_facts(FAILED)
    sf = f.start_failure
    assert sf is not None and sf.vllm
    assert sf.line == 37 and sf.traceback_line == 18
    assert sf.exception == "ModuleNotFoundError: No module named 'vllm.attention'"
    assert sf.marker == "EngineCore failed to start." and sf.marker_line == 17
    packet = Packet.from_files([("log", FAILED)], settings=PacketSettings())
    v = ig.judge_packet(packet)
    fnd = v.diagnosis.finding("lmcache_engine_failed_to_start")
    assert fnd is not None and fnd.severity == "error"
    assert fnd.level == "inferred_without_engine_metrics"
    assert any("line 37: ModuleNotFoundError" in e for e in fnd.evidence)
    # No "runs" claim beside the error: the failed start withholds it.
    assert not [c for c in v.claims.made if c.id == "mode"]
    assert all(w.codes == ["lmcache_engine_failed_to_start"] or w.id != "mode"
               for w in v.claims.withheld)
    assert v.report.facts.engine_start_failure is not None
    assert main(["lmcache-compat", "--lmcache-log-file", str(FAILED),
                 "--fail-on", "error-finding"]) == 1
    assert main(["lmcache-compat", "--lmcache-log-file", str(FAILED)]) == 0
    capsys.readouterr()


def test_only_the_root_marker_is_enough(tmp_path: Path) -> None:
    """Only the API server's side (its RuntimeError traceback, as vLLM raises it in
    launch_core_engines) still reads as a failed start, with that exception line."""
    lines = FAILED.read_text().splitlines()
    tail = lines[lines.index("Traceback (most recent call last):", 40):]
    p = tmp_path / "api.log"
    p.write_text("\n".join(lines[:12] + tail) + "\n")
    sf = _log_facts(p).start_failure
    assert sf is not None and sf.exception.startswith(
        "RuntimeError: Engine core initialization failed. See root cause above.")


@pytest.mark.parametrize("path", [
    LIVE / "vllm_live_mp" / "packet" / "inputs" / "log" / "vllm.log",
    LIVE / "vllm_live_mp" / "packet" / "inputs" / "log" / "lmcache_server.log",
    LIVE / "vllm_live_offload" / "packet" / "inputs" / "log" / "vllm.log",
    LIVE / "vllm_live_embedded" / "packet" / "inputs" / "log" / "vllm.log",
    UPSTREAM / "logs" / "mp_server.log",
], ids=lambda p: f"{p.parent.parent.parent.name}/{p.name}")
def test_real_logs_that_served_do_not_fire(path: Path) -> None:
    """Real runs: healthy MP/offload, and the embedded run whose LMCache logged an ERROR with
    a quoted traceback (`RuntimeError: No supported cpu connector found.`) but whose engine
    started and served (that run is lmcache_configured_but_not_working)."""
    assert _log_facts(path).start_failure is None


def test_embedded_dead_is_not_a_failed_start_even_cut_before_serving(tmp_path: Path) -> None:
    """The embedded run's traceback is quoted inside an LMCache ERROR record (handled: degraded
    mode), not printed as an uncaught one: even a log cut before `Starting vLLM server` is not
    a failed start."""
    src = LIVE / "vllm_live_embedded" / "packet" / "inputs" / "log" / "vllm.log"
    data = src.read_bytes().splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(data) if b"Starting vLLM server" in ln)
    p = tmp_path / "cut.log"
    p.write_bytes(b"".join(data[:cut]))
    assert _log_facts(p).start_failure is None
    v = ig.judge_packet(Packet.load(LIVE / "vllm_live_embedded" / "packet"))
    assert v.report.facts.engine_start_failure is None
    # Configured but dead, not a failed start: the "runs" claim is withheld for that reason.
    mode = next(w for w in v.claims.withheld if w.id == "mode")
    assert mode.codes == ["lmcache_configured_but_not_working"]
    assert [c.id for c in v.claims.made if c.id.startswith("mode")] == ["mode_configured"]


def test_measured_serving_beats_the_log(tmp_path: Path) -> None:
    """An engine scrape (vLLM served /metrics) or a /health 200 outweighs the log."""
    scrape = next((LIVE / "vllm_live_mp" / "packet" / "inputs" / "engine_metrics").iterdir())
    r = compat(Packet.from_files([("log", FAILED), ("engine_metrics", scrape)]))
    assert r.facts.engine_start_failure is None
    ok = _capture(tmp_path / "ok", 200)
    r = compat(Packet.from_files([("log", FAILED), ("engine_http", ok)]))
    assert r.facts.engine_start_failure is None
    down = _capture(tmp_path / "down", None)
    v = ig.judge_packet(Packet.from_files([("log", FAILED), ("engine_http", down)]))
    fnd = v.diagnosis.finding("lmcache_engine_failed_to_start")
    assert fnd is not None and fnd.level == "supported"


# -- (13) vLLM /health ------------------------------------------------------------------------


def _capture(d: Path, status: int | None, version: str | None = "0.33.0") -> Path:
    """GET_health/GET_version as a lab harness saves them; vLLM's /health body is empty.
    `status=None`: the request got no answer (no status line)."""
    d.mkdir(parents=True)
    (d / "GET_health.body").write_bytes(b"")
    (d / "GET_health.headers").write_text(
        "" if status is None else f"HTTP/1.1 {status} X\ncontent-length: 0\n")
    if version is not None:
        body = json.dumps({"version": version})
        (d / "GET_version.body").write_text(body)
        (d / "GET_version.headers").write_text(
            "HTTP/1.1 200 OK\ncontent-type: application/json\n")
    return d


def _mp_with_health(tmp_path: Path, status: int | None) -> ig.Verdict:
    root = LIVE / "vllm_live_mp" / "packet" / "inputs"
    return ig.judge_packet(Packet.from_files(
        [("lmcache_metrics", next((root / "lmcache_metrics").iterdir())),
         ("launch_config", root / "launch_config" / "launch.txt"),
         ("engine_http", _capture(tmp_path / "h", status))],
        settings=PacketSettings(expected_mode="mp")))


def test_health_200_ticks_the_checklist(tmp_path: Path) -> None:
    v = _mp_with_health(tmp_path, 200)
    item = next(c for c in v.report.checklist if c.id == "engine_healthcheck")
    assert item.present and "/health 200" in item.evidence[0]
    assert "lmcache_engine_unhealthy" not in v.diagnosis.codes()
    ev = read_evidence("engine_http", tmp_path / "h")
    assert ev.status == "ok" and isinstance(ev.facts, EngineHealthFacts)
    assert ev.facts.version == "0.33.0" and ev.facts.health_status == 200


@pytest.mark.parametrize("status", [503, 500, None])
def test_health_not_200_is_an_error(tmp_path: Path, status: int | None) -> None:
    v = _mp_with_health(tmp_path, status)
    item = next(c for c in v.report.checklist if c.id == "engine_healthcheck")
    assert not item.present
    f = v.diagnosis.finding("lmcache_engine_unhealthy")
    assert f is not None and f.severity == "error" and f.level == "supported"
    assert (f"HTTP {status}" if status else "no answer") in f.message


class FakeVllm(RecordingServer):
    """vLLM's two read-only routes as 0.33.0 answers them; records every request."""

    def __init__(self, health: int) -> None:
        self.health = health
        super().__init__(self._answer)

    def _answer(self, path: str) -> Reply:
        if path == "/health":
            return Reply(self.health, b"", None)
        if path == "/version":
            return Reply(200, b'{"version":"0.33.0"}')
        return Reply(404, b'{"detail":"Not Found"}')


@pytest.mark.parametrize("health", [200, 503])
def test_live_collection_gets_only_health_and_version(tmp_path: Path, health: int) -> None:
    with FakeVllm(health) as srv:
        packet, _ = collect_lmcache(CollectOptions(
            output_dir=str(tmp_path / "p"), engine_http_base_url=srv.url))
    assert srv.requests == [("GET", "/health"), ("GET", "/version")]
    ev = packet.of_kind("engine_http")[0]
    assert isinstance(ev.facts, EngineHealthFacts)
    assert ev.facts.health_status == health and ev.facts.healthy is (health == 200)
    assert ev.facts.version == "0.33.0" and ev.source.url == srv.url
    codes = ig.judge_packet(packet).diagnosis.codes()
    assert ("lmcache_engine_unhealthy" in codes) is (health != 200)


def test_live_collection_no_answer(tmp_path: Path) -> None:
    with FakeVllm(200) as srv:
        url = srv.url
    packet, _ = collect_lmcache(CollectOptions(output_dir=str(tmp_path / "p"),
                                               engine_http_base_url=url, http_timeout=1.0))
    ev = packet.of_kind("engine_http")[0]
    assert isinstance(ev.facts, EngineHealthFacts) and ev.facts.healthy is False
    assert ev.facts.health_status is None and ev.facts.health_error
    assert "lmcache_engine_unhealthy" in ig.judge_packet(packet).diagnosis.codes()


def test_cli_collect_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeVllm(200) as srv:
        assert main(["collect-lmcache", "--output-dir", str(tmp_path / "p"),
                     "--engine-http-base-url", srv.url]) == 0
        assert main(["collect-lmcache", "--output-dir", str(tmp_path / "q"),
                     "--engine-http-capture-dir", str(_capture(tmp_path / "c", 503))]) == 0
    assert srv.requests == [("GET", "/health"), ("GET", "/version")]
    assert "engine_http" in capsys.readouterr().out
    again = Packet.load(tmp_path / "p")
    assert again.of_kind("engine_http")[0].facts.healthy is True
