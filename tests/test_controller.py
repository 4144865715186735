"""Controller and internal API evidence: read-only collection against fake servers on
127.0.0.1 that replay real 0.5.6 answers (tests/fixtures/lmcache-0.5.6/controller/README.md),
the captures read offline, and the controller findings."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferguard._packet import Packet, PacketSettings
from inferguard.cli._main import main
from inferguard.collect import CollectOptions, collect_lmcache
from inferguard.evidence._controller import (
    CONF_PATH,
    CONTROLLER_ROUTES,
    INTERNAL_API_ROUTES,
    ControllerFacts,
    read_controller_capture_dir,
    request_paths,
)
from inferguard.findings import diagnose
from inferguard.judge._compat import compat
from inferguard.judge._mode import detect_mode
from inferguard.verdict import judge_report

from .conftest import UPSTREAM
from .http_fake import RecordingServer, Reply

CTRL = UPSTREAM / "controller"
SECRET_CONF = {"remote_url": "redis://admin:pw_do_not_store@cache:6379",
               "extra_config": {"hf_token": "hf_do_not_store"}}


def _capture(path: str) -> str:
    return path.split("?", 1)[0].strip("/").replace("/", "_") or "root"


class FakeControlPlane(RecordingServer):
    """Replays a recorded capture directory; records every request. `/conf` answers with
    secrets added, as a server ignoring `?names=` would."""

    def __init__(self, capture: Path, *, date_now: bool = False) -> None:
        self.capture = capture
        self.date_now = date_now
        super().__init__(self._answer)

    def _answer(self, path: str) -> Reply:
        name = _capture(path)
        body_file = self.capture / f"GET_{name}.body"
        if not body_file.exists():
            return Reply(200, b'{"ok":true}')
        body = body_file.read_bytes()
        if name == "conf":
            body = json.dumps({**json.loads(body), **SECRET_CONF}).encode()
        head = (self.capture / f"GET_{name}.headers").read_text().splitlines()
        ctype = next(h.split(":", 1)[1].strip() for h in head
                     if h.lower().startswith("content-type"))
        date = next(h.split(":", 1)[1].strip() for h in head if h.lower().startswith("date"))
        return Reply(int(head[0].split()[1]), body, ctype, None if self.date_now else date)


@pytest.fixture
def controller() -> Iterator[FakeControlPlane]:
    with FakeControlPlane(CTRL / "c2_controller_with_worker") as s:
        yield s


@pytest.fixture
def internal_api() -> Iterator[FakeControlPlane]:
    with FakeControlPlane(CTRL / "c2_internal_api") as s:
        yield s


def _everything(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_controller_collection_is_read_only(tmp_path: Path,
                                            controller: FakeControlPlane) -> None:
    packet, path = collect_lmcache(CollectOptions(
        output_dir=str(tmp_path / "p"), lmcache_controller_url=controller.url,
        lmcache_http_thread_names=["lmcache-worker-thread"]))
    expected = {("GET", p) for p in (
        "/", "/openapi.json", "/metrics", "/periodic-threads", "/periodic-threads-health",
        "/loglevel", "/controller/workers", "/controller/key-stats",
        "/threads?name=lmcache-worker-thread")}
    assert set(controller.requests) == expected and len(controller.requests) == len(expected)
    ev = packet.of_kind("controller")[0]
    f = ev.facts
    assert isinstance(f, ControllerFacts) and ev.status == "ok"
    assert f.server == "controller" and f.app == "controller" and f.reachable
    assert [(w.instance_id, w.worker_id, w.port, w.peer_init_url) for w in f.workers] == [
        ("live-ctrl-inst-0", 0, 18500, None)]
    # The answer's Date has whole seconds: the 0.4 s "negative" age is reported as 0.
    assert f.workers[0].heartbeat_age_s == 0.0 and f.workers[0].heartbeat_seen
    assert f.gauge("registered_workers_count") == 1 and f.gauge("reply_socket_message_count") == 8
    assert f.gauge("full_sync_workers_completed") == 1 and len(f.gauges) == 13
    assert f.total_key_count == 0 and f.total_instance_count == 1
    # Every state-changing route, and /env, is recorded as skipped, none was called.
    skipped = {(s.method, s.path) for s in f.skipped}
    posts = {("POST", r.path) for r in CONTROLLER_ROUTES if r.method == "POST"}
    assert len(posts) == 12 and posts | {("GET", "/env")} <= skipped
    assert not [r for r in controller.requests if r[0] != "GET" or r[1].startswith("/env")]
    # The raw /metrics answer is kept byte for byte as a controller input, not as LMCache
    # metrics evidence (a controller is no cache).
    item = next(i for i in packet.inputs if i.original == controller.url + "/metrics")
    assert item.kind == "controller" and item.copied_as is not None
    body = (CTRL / "c2_controller_with_worker" / "GET_metrics.body").read_bytes()
    assert (path / item.copied_as).read_bytes() == body
    assert not packet.of_kind("lmcache_metrics")


def test_internal_api_collection_is_read_only_and_keeps_no_secret(
        tmp_path: Path, internal_api: FakeControlPlane) -> None:
    packet, path = collect_lmcache(CollectOptions(
        output_dir=str(tmp_path / "p"), lmcache_internal_api_url=internal_api.url))
    expected = ["/openapi.json", "/metrics", "/periodic-threads", "/periodic-threads-health",
                "/loglevel", "/controller/workers", "/controller/key-stats", "/version",
                "/lmc_version", "/commit_id", CONF_PATH, "/meta", "/inference_info",
                "/inference_version", "/lookup/info", "/hot_cache/status", "/bypass/list",
                "/freeze/status", "/chunk_statistics/status", "/cache/kvcache/info",
                "/backends"]
    assert internal_api.requests == [("GET", p) for p in expected]
    assert request_paths("internal_api") == expected
    never = {r.path for r in INTERNAL_API_ROUTES if r.method == "GET" and not r.collect}
    assert never == {"/periodic-threads/{thread_name}", "/env", "/cache/kvcache/check"}
    ctrl = packet.of_kind("controller")[0].facts
    assert isinstance(ctrl, ControllerFacts) and ctrl.server == "internal_api"
    assert ctrl.lmcache_families == 117 and ctrl.unknown_routes == []
    assert ctrl.periodic_threads == ["PinMonitor-thread", "health-monitor-thread"]
    assert ctrl.instance_id == "live-ctrl-inst-0" and ctrl.version == "0.5.6-g3e11e108"
    assert ctrl.workers_route_status == 503 and ctrl.workers == []
    assert ctrl.config["lmcache_worker_heartbeat_time"] == 2
    assert "remote_url" not in ctrl.config and "extra_config" not in ctrl.config
    assert {(s.method, s.path) for s in ctrl.skipped} >= {
        ("POST", "/cache/store"), ("DELETE", "/cache/clear"), ("PUT", "/freeze/enable"),
        ("POST", "/run_script"), ("GET", "/env"), ("GET", "/cache/kvcache/check")}
    # The engine's in-process lmcache:* registry becomes LMCache metrics evidence.
    lm = packet.of_kind("lmcache_metrics")[0]
    assert lm.status == "ok" and lm.source.url == internal_api.url + "/metrics"
    assert lm.facts.family("lmcache:lmcache_is_healthy").total == 1.0
    blob = _everything(path)
    assert b"pw_do_not_store" not in blob and b"hf_do_not_store" not in blob


def test_cli_flags_and_unreachable_servers(tmp_path: Path, controller: FakeControlPlane,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["collect-lmcache", "--output-dir", str(out), "--lmcache-controller-url",
                 controller.url, "--lmcache-internal-api-url", "http://127.0.0.1:9",
                 "--http-timeout", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "controller" in text and "malformed" in text
    packet = Packet.load(out)
    by_server = {e.facts.server: e for e in packet.of_kind("controller")}
    ctrl, engine = by_server["controller"], by_server["internal_api"]
    assert ctrl.status == "ok" and engine.status == "malformed"
    assert engine.facts.reachable is False and "ConnectError" in engine.problems[0].message


def test_worker_listed_after_its_internal_api_stopped(tmp_path: Path) -> None:
    """The live order: engine and controller answer; the engine stops; the controller still
    lists it. Only the listing taken after the engine went silent counts."""
    with FakeControlPlane(CTRL / "c2_internal_api") as engine, FakeControlPlane(
            CTRL / "c2_controller_with_worker", date_now=True) as ctrl:
        url = engine.url
        collect_lmcache(CollectOptions(output_dir=str(tmp_path / "a"),
                                       lmcache_internal_api_url=url,
                                       lmcache_controller_url=ctrl.url))
    time.sleep(2.1)  # the Date header has whole seconds: make the order observable
    with FakeControlPlane(CTRL / "c2_controller_after_worker_exit", date_now=True) as ctrl:
        packet, _ = collect_lmcache(CollectOptions(
            output_dir=str(tmp_path / "b"), base_packet=str(tmp_path / "a"),
            lmcache_internal_api_url=url, lmcache_controller_url=ctrl.url, http_timeout=0.5))
    silent = [e for e in packet.of_kind("controller") if e.facts.reachable is False]
    assert len(silent) == 1 and silent[0].facts.collected_at is not None
    report = compat(packet)
    found = {f.code: f for f in diagnose(report).findings}
    f = found["lmcache_controller_worker_listed_after_stop"]
    assert f.level == "supported" and "live-ctrl-inst-0/0" in f.message
    assert f.message.count("no longer answers") == 1


def test_captures_read_as_the_findings_describe() -> None:
    alone = read_controller_capture_dir(CTRL / "c1_controller_alone").facts
    assert alone.server == "controller" and alone.workers_listed == 0
    assert set(alone.gauges.values()) == {0.0} and len(alone.gauges) == 13
    assert alone.unknown_routes == [] and alone.route_table_paths == 22
    engine = read_controller_capture_dir(CTRL / "c2_internal_api").facts
    assert engine.server == "internal_api" and engine.app == "internal_api"
    assert engine.lmcache_families == 117 and engine.route_table_paths == 45
    assert engine.unknown_routes == [] and engine.config["enable_p2p"] is False
    # SIGINT at 04:07:07.95; the worker did not deregister this time, and the controller
    # lists it 3 s and 34 s later (the second answer is past the 30-s list cache), its last
    # heartbeat frozen at 04:07:06.40.
    after = read_controller_capture_dir(CTRL / "c2_controller_after_worker_exit").facts
    later = read_controller_capture_dir(CTRL / "c2_controller_after_cache_ttl").facts
    assert after.workers[0].heartbeat_age_s == pytest.approx(4.596)
    assert later.workers[0].heartbeat_age_s == pytest.approx(36.596)
    assert later.workers_listed == 1 and later.gauge("registered_workers_count") == 1
    # Run 1: the readiness probe filled the worker cache before the worker registered, so
    # 10 s later the listing and the gauges still say 0 although the log registered it.
    early = read_controller_capture_dir(CTRL / "c2_cache_filled_before_registration").facts
    assert early.workers_listed == 0 and early.gauge("registered_workers_count") == 0
    assert early.gauge("pull_socket_message_count") == 2


def _packet(*inputs: tuple[str, Path], **settings: object) -> Packet:
    return Packet.from_files(inputs, settings=PacketSettings(**settings))  # type: ignore[arg-type]


def test_controller_only_packet_is_reported_as_such() -> None:
    packet = _packet(("controller", CTRL / "c2_cache_filled_before_registration"),
                     ("log", CTRL / "controller_run1_deregistered.log"),
                     ("launch_config", CTRL / "controller_launch.txt"))
    det = detect_mode(packet)
    # Controller lines without a peer init URL are no P2P evidence.
    assert det.mode == "controller_only" and det.level == "partial"
    assert "not cache performance proof" in det.notes[0]
    top = det.candidates[0]
    assert top.mode == "controller_only" and "0 worker(s) listed" in top.evidence[0].detail
    # A controller launch line is no P2P evidence either (a controller also serves non-P2P
    # deployments), so there is no p2p candidate at all.
    assert not [c for c in det.candidates if c.mode == "p2p"]
    report = compat(packet)
    assert report.group("controller").status == "populated"  # type: ignore[union-attr]
    assert all(f.status == "not_applicable" for f in report.families
               if f.group not in ("controller",))
    # No cache claim at all: the controller's answers are no hit counter.
    claims = judge_report(report).claims
    assert not [c for c in claims.made if c.id == "cache_hits"]
    assert [w.id for w in claims.withheld] == ["cache_hits"]
    found = {f.code: f for f in diagnose(report).findings}
    assert "lmcache_controller_only_evidence" in found
    stuck = found["lmcache_controller_full_sync_gauge_stuck"]
    assert "a cache filled before" in stuck.message and stuck.level == "partial"
    assert "lmcache_log_p2p_evidence_present" not in found
    assert "lmcache_controller_worker_stale" not in found
    # Run 2 scraped after the sync: the gauge says 1 and nothing is flagged.
    fine = compat(_packet(("controller", CTRL / "c2_controller_with_worker"),
                          ("log", CTRL / "controller.log")))
    assert "lmcache_controller_full_sync_gauge_stuck" not in diagnose(fine).codes()


def test_stopped_worker_by_heartbeat_interval() -> None:
    r = compat(_packet(("controller", CTRL / "c2_internal_api"),
                       ("controller", CTRL / "c2_controller_after_cache_ttl")))
    f = next(f for f in diagnose(r).findings
             if f.code == "lmcache_controller_worker_listed_after_stop")
    assert f.level == "supported" and "heartbeat every 2 s, last one 36.6 s" in f.message
    code = "lmcache_controller_worker_listed_after_stop"
    # 3 s after the exit the listing may still be the 30-s cache: not flagged from the
    # heartbeat alone. While the worker ran, nothing is flagged either.
    for d in ("c2_controller_after_worker_exit", "c2_controller_with_worker"):
        quiet = compat(_packet(("controller", CTRL / "c2_internal_api"), ("controller", CTRL / d)))
        assert code not in diagnose(quiet).codes(), d
    # The interval from the worker's launch environment works as well.
    after = compat(_packet(("controller", CTRL / "c2_controller_after_cache_ttl"),
                           ("launch_config", CTRL / "worker_launch.txt")))
    assert code in diagnose(after).codes()


def _copy_with(tmp_path: Path, src: str, name: str, body: object | None = None,
               date: str | None = None) -> Path:
    d = tmp_path / src
    d.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(CTRL / src, d)
    if body is not None:
        (d / f"GET_{name}.body").write_text(json.dumps(body))
    if date is not None:
        head = d / f"GET_{name}.headers"
        head.write_text("\n".join(f"date: {date}" if h.startswith("date:") else h
                                  for h in head.read_text().splitlines()) + "\n")
    return d


def test_stale_worker(tmp_path: Path) -> None:
    d = _copy_with(tmp_path, "c2_controller_with_worker", "controller_workers",
                   date="Sat, 28 Nov 2026 04:09:06 GMT")  # two minutes after the capture
    r = compat(_packet(("controller", d)))
    f = next(f for f in diagnose(r).findings if f.code == "lmcache_controller_worker_stale")
    assert f.severity == "warning" and f.level == "supported"
    assert "last heartbeat 120 s" in f.message and "(stale)" in f.message
    # 80 s is within 60 s plus the 30-s list cache: not flagged.
    d2 = _copy_with(tmp_path / "b", "c2_controller_with_worker", "controller_workers",
                    date="Sat, 28 Nov 2026 04:08:26 GMT")
    assert "lmcache_controller_worker_stale" not in diagnose(compat(_packet(
        ("controller", d2)))).codes()


def test_peer_init_url_missing_when_p2p_expected() -> None:
    packet = _packet(("controller", CTRL / "c2_controller_with_worker"),
                     ("log", CTRL / "controller.log"))
    assert "lmcache_controller_peer_init_url_missing" not in diagnose(compat(packet)).codes()
    r = compat(packet.with_settings(expected_mode="p2p"))
    f = next(f for f in diagnose(r).findings
             if f.code == "lmcache_controller_peer_init_url_missing")
    assert f.level == "supported" and "--expect-mode p2p" in f.message
    assert "live-ctrl-inst-0/0 has no peer_init_url" in f.message


def test_unhealthy_threads_and_p2p_peers(tmp_path: Path) -> None:
    d = _copy_with(tmp_path, "c2_controller_with_worker", "periodic-threads-health", {
        "healthy": False, "unhealthy_count": 1,
        "unhealthy_threads": [{"name": "controller-health-thread", "level": "high"}]})
    workers = json.loads((d / "GET_controller_workers.body").read_text())
    workers["workers"][0]["peer_init_url"] = "127.0.0.1:18600"
    (d / "GET_controller_workers.body").write_text(json.dumps(workers))
    r = compat(_packet(("controller", d)))
    codes = diagnose(r).codes()
    assert "lmcache_controller_threads_unhealthy" in codes
    p2p = next(c for c in r.detected.candidates if c.mode == "p2p")
    assert p2p.confidence == 0.4 and "P2P init URL" in p2p.evidence[0].detail


def test_raw_conf_capture_is_filtered_in_the_packet(tmp_path: Path) -> None:
    d = tmp_path / "engine"
    shutil.copytree(CTRL / "c2_internal_api", d)
    conf = json.loads((d / "GET_conf.body").read_text())
    (d / "GET_conf.body").write_text(json.dumps({**conf, **SECRET_CONF}))
    packet, path = collect_lmcache(CollectOptions(output_dir=str(tmp_path / "p"),
                                                  internal_api_capture_dirs=[str(d)]))
    assert packet.of_kind("controller")[0].facts.config["lmcache_instance_id"] == (
        "live-ctrl-inst-0")
    blob = _everything(path)
    assert b"pw_do_not_store" not in blob and b"hf_do_not_store" not in blob
    copied = next(i for i in packet.inputs if i.kind == "controller").copied_as
    assert copied is not None and (path / copied / "GET_conf.body.filtered.json").exists()
    again = read_controller_capture_dir(path / copied)
    assert again.facts.config == packet.of_kind("controller")[0].facts.config


def test_cli_offline_captures_and_evidence_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    assert main(["collect-lmcache", "--output-dir", str(out),
                 "--lmcache-controller-capture-dir", str(CTRL / "c2_controller_after_cache_ttl"),
                 "--lmcache-internal-api-capture-dir", str(CTRL / "c2_internal_api")]) == 0
    capsys.readouterr()
    assert main(["diagnose-bottleneck", "--packet", str(out)]) == 0
    assert "lmcache_controller_worker_listed_after_stop" in capsys.readouterr().out
    evidence = out / "metrics" / "lmcache_controller_evidence.json"
    assert main(["lmcache-compat", "--lmcache-controller-evidence-file", str(evidence),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # The worker's internal API answered and no engine shows: a standalone LMCacheEngine
    # worker beside its controller (lmcache.v1.standalone, recorded in these captures).
    assert doc["report"]["detected"]["mode"] == "standalone_worker"
    assert [c["server"] for c in doc["report"]["facts"]["controller"]] == [
        "controller", "internal_api"]


def test_the_same_captures_give_the_same_verdict_by_every_road(tmp_path: Path) -> None:
    """Capture directories given as files, to collect-lmcache, or replayed as live servers:
    the same evidence kinds (the internal API's /metrics becomes lmcache_metrics evidence on
    every road, as docs/evidence.md says) and the same mode."""
    dirs = [("controller", CTRL / "c2_controller_with_worker"),
            ("controller", CTRL / "c2_internal_api")]
    as_files = Packet.from_files(dirs)
    collected, _ = collect_lmcache(CollectOptions(
        output_dir=str(tmp_path / "dirs"),
        controller_capture_dirs=[str(CTRL / "c2_controller_with_worker")],
        internal_api_capture_dirs=[str(CTRL / "c2_internal_api")]))
    with FakeControlPlane(CTRL / "c2_internal_api") as engine, FakeControlPlane(
            CTRL / "c2_controller_with_worker") as ctrl:
        live, _ = collect_lmcache(CollectOptions(
            output_dir=str(tmp_path / "live"), lmcache_internal_api_url=engine.url,
            lmcache_controller_url=ctrl.url))

    def shape(p: Packet) -> tuple[str, list[str], list[int]]:
        scrapes = sorted(len(e.facts.families) for e in p.of_kind("lmcache_metrics"))
        return detect_mode(p).mode, sorted(e.kind for e in p.evidence), scrapes

    assert shape(as_files) == shape(collected) == shape(live)
    assert shape(live)[0] == "standalone_worker"
