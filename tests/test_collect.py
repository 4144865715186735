"""collect-lmcache against a real HTTP server on 127.0.0.1 serving captured 0.5.6 answers."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from inferguard._packet import Packet, PacketSettings
from inferguard.cli._main import main
from inferguard.collect import CollectOptions, collect_lmcache
from inferguard.evidence._http import ROUTES
from inferguard.evidence._readers import read_evidence

from .conftest import FIXTURES, UPSTREAM
from .http_fake import RecordingServer, Reply

CAPTURES = {
    "/": "root", "/healthcheck": "healthcheck", "/status": "status", "/version": "version",
    "/lmc_version": "lmc_version", "/commit_id": "commit_id", "/config": "config",
    "/config/adapters": "config_adapters", "/periodic-threads": "periodic-threads",
    "/periodic-threads-health": "periodic-threads-health", "/quota": "quota",
    "/reconfigure/dax/l1/status": "reconfigure_dax_l1_status", "/openapi.json": "openapi.json",
    "/loglevel": "loglevel", "/threads": "threads",
}
METRICS = UPSTREAM / "metrics" / "mp-l1-storage-trace" / "metrics_after.txt"
SECRET_ENV = {"LMCACHE_CHUNK_SIZE": "16", "HF_TOKEN": "hf_do_not_store",
              "LMCACHE_REMOTE_PASSWORD": "pw_do_not_store", "HOME": "/root"}


class FakeMPServer(RecordingServer):
    """Serves the captured answers; records every request; can misbehave on demand."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        super().__init__(self._answer)

    def _answer(self, full_path: str) -> Reply:
        path = full_path.partition("?")[0]
        if self.broken and path == "/status":
            return Reply(500, b"Internal Server Error <html>", "text/html")
        if self.broken and path == "/config":
            time.sleep(1.5)  # beyond the client's timeout
            return Reply(200, b"{}")
        if path == "/metrics":
            return Reply(200, METRICS.read_bytes(), "text/plain")
        if path == "/env":
            return Reply(200, json.dumps(SECRET_ENV).encode())
        name = CAPTURES.get(path)
        if name is None:
            return Reply(404, b'{"detail":"Not Found"}')
        body = (UPSTREAM / "http" / f"GET_{name}.body").read_bytes()
        head = (UPSTREAM / "http" / f"GET_{name}.headers").read_text().splitlines()
        return Reply(int(head[0].split()[1]), body)


@pytest.fixture
def server() -> Iterator[FakeMPServer]:
    with FakeMPServer() as s:
        yield s


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_collect_calls_only_read_only_routes(tmp_path: Path, server: FakeMPServer) -> None:
    out = tmp_path / "packet"
    packet, path = collect_lmcache(CollectOptions(
        output_dir=str(out), lmcache_http_base_url=server.url,
        lmcache_http_thread_names=["eviction"], lmcache_metrics_urls=[server.url + "/metrics"],
        settings=PacketSettings(expected_mode="mp")))
    expected = {("GET", r.path) for r in ROUTES if r.collect and r.path != "/threads"}
    expected |= {("GET", "/threads?name=eviction"), ("GET", "/metrics")}
    assert set(server.requests) == expected
    assert len(server.requests) == len(expected)  # each route once
    assert all(m == "GET" for m, _ in server.requests)
    http = packet.of_kind("http")[0].facts
    assert http.healthy is True and http.version == "0.5.6-g3e11e108"
    assert http.thread_matches == {"eviction": 13}
    assert {(s.method, s.path) for s in http.skipped} >= {
        ("POST", "/cache/clear"), ("DELETE", "/cache/objects"), ("POST", "/metrics/reset"),
        ("POST", "/run_script"), ("PUT", "/quota/{cache_salt}")}
    scraped = packet.of_kind("lmcache_metrics")[0]
    assert scraped.status == "ok" and scraped.source.url == server.url + "/metrics"
    assert scraped.facts.service_instance_ids == ["live-packet-A"]
    # The scrape is kept byte for byte; /env is never stored raw.
    copy = next(i for i in packet.inputs if i.kind == "lmcache_metrics").copied_as
    assert copy is not None and (path / copy).read_bytes() == METRICS.read_bytes()
    everything = b"".join(p.read_bytes() for p in _all_files(path))
    assert b"hf_do_not_store" not in everything and b"pw_do_not_store" not in everything
    assert http.env == {"LMCACHE_CHUNK_SIZE": "16", "LMCACHE_REMOTE_PASSWORD": "<redacted>"}


def test_failures_are_evidence(tmp_path: Path) -> None:
    with FakeMPServer(broken=True) as srv:
        packet, _ = collect_lmcache(CollectOptions(
            output_dir=str(tmp_path / "p"), lmcache_http_base_url=srv.url, http_timeout=0.5,
            lmcache_metrics_urls=["http://127.0.0.1:9/metrics"]))
    http = packet.of_kind("http")[0]
    assert http.status == "partial"
    routes = {r.path: r for r in http.facts.routes}
    assert routes["/status"].status_code == 500 and routes["/status"].text is not None
    assert routes["/config"].error is not None and "Timeout" in routes["/config"].error
    assert http.facts.healthy is True  # /healthcheck still answered
    scrape = packet.of_kind("lmcache_metrics")[0]
    assert scrape.status == "malformed" and "ConnectError" in scrape.problems[0].message


def test_unreachable_server(tmp_path: Path) -> None:
    packet, _ = collect_lmcache(CollectOptions(output_dir=str(tmp_path / "p"),
                                               lmcache_http_base_url="http://127.0.0.1:9",
                                               http_timeout=0.5))
    ev = packet.of_kind("http")[0]
    assert ev.status == "malformed" and ev.facts.reachable is False


def _file_options(out: Path, **kw: object) -> CollectOptions:
    return CollectOptions(
        output_dir=str(out), lmcache_metrics_files=[str(METRICS)],
        lmcache_log_files=[str(UPSTREAM / "logs" / "mp_server.log")],
        lmcache_trace_files=[str(UPSTREAM / "storage.lct")],
        lmcache_otel_files=[str(UPSTREAM / "otel" / "mp_otlp_traces.jsonl")],
        lookup_hash_paths=[str(UPSTREAM / "lookup_hashes")],
        replay_files=[str(UPSTREAM / "replay" / "trace_replay_summary.json")],
        lmcache_http_capture_dirs=[str(UPSTREAM / "http")],
        launch_files=[str(UPSTREAM / "blend_cmd.txt")],
        settings=PacketSettings(expected_mode="mp", mp_metrics_sample_rate=1.0), **kw)  # type: ignore[arg-type]


def test_packet_from_files_roundtrip_and_inputs_untouched(tmp_path: Path) -> None:
    sources = [METRICS, UPSTREAM / "logs" / "mp_server.log", UPSTREAM / "storage.lct"]
    before = {p: _sha(p) for p in sources}
    packet, path = collect_lmcache(_file_options(tmp_path / "p"))
    assert {p: _sha(p) for p in sources} == before
    kinds = sorted({e.kind for e in packet.evidence})
    assert kinds == ["http", "launch_config", "lmcache_metrics", "log", "lookup_hash", "otel",
                     "trace", "trace_replay"]
    assert all(e.status == "ok" for e in packet.evidence), [
        (e.kind, e.problems) for e in packet.evidence if e.status != "ok"]
    for item in packet.inputs:
        if item.kind == "lookup_hash":
            assert item.copied_as is None and item.note and "raw chunk hashes" in item.note
        elif item.kind == "trace":  # a scrubbed copy (#21): the original by path/size/sha256
            assert item.sha256 == _sha(Path(item.original))
            assert item.copy_sha256 == _sha(path / item.copied_as) != item.sha256
        elif item.kind != "http":
            assert item.copy_sha256 is None, item  # nothing to redact: byte-identical
            assert _sha(path / item.copied_as) == item.sha256 == _sha(Path(item.original))
    again = Packet.load(path)
    for kind, src in (("trace", UPSTREAM / "storage.lct"), ("lmcache_metrics", METRICS),
                      ("lookup_hash", UPSTREAM / "lookup_hashes")):
        fresh, loaded = read_evidence(kind, src), again.of_kind(kind)[0]
        assert loaded.facts == fresh.facts and loaded.source.sha256 == fresh.source.sha256
    manifest = json.loads((path / "packet.json").read_text())
    assert manifest["schema"] == "inferguard.packet/1"
    assert manifest["settings"] == {"expected_mode": "mp", "mp_metrics_sample_rate": 1.0}
    assert (path / "metrics" / "lmcache_http_evidence.json").exists()
    assert (path / "metrics" / "lmcache_trace_evidence.json").exists()
    # No raw chunk hash from the lookup-hash logs appears anywhere in the packet.
    raw = {h.removeprefix("0x") for f in (UPSTREAM / "lookup_hashes").iterdir()
           for line in f.read_text().splitlines() for h in json.loads(line)["chunk_hashes"]}
    blob = b"".join(p.read_bytes() for p in _all_files(path)).decode("utf-8", "replace")
    assert not any(h in blob for h in raw)


def test_rerun_never_overwrites_silently(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    _, path = collect_lmcache(_file_options(out))
    snapshot = {p: p.read_bytes() for p in _all_files(path)}
    with pytest.raises(FileExistsError):
        collect_lmcache(_file_options(out))
    assert {p: p.read_bytes() for p in _all_files(path)} == snapshot
    args = ["collect-lmcache", "--output-dir", str(out), "--lmcache-log-file",
            str(UPSTREAM / "logs" / "mp_server.log")]
    assert main(args) == 2 and "refusing to overwrite" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert [e.kind for e in Packet.load(out).evidence] == ["log"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> dict[str, str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Packet, "_write_evidence", staticmethod(boom))
    with pytest.raises(KeyboardInterrupt):
        collect_lmcache(_file_options(tmp_path / "p"))
    assert list(tmp_path.iterdir()) == []


def test_damaged_trace_does_not_abort_the_packet(tmp_path: Path) -> None:
    bad = tmp_path / "bad.lct"
    bad.write_bytes((UPSTREAM / "storage.lct").read_bytes()[:30000])
    notatrace = tmp_path / "x.lct"
    notatrace.write_bytes(b"hello")
    packet, _ = collect_lmcache(CollectOptions(
        output_dir=str(tmp_path / "p"), lmcache_trace_files=[str(bad), str(notatrace)],
        lmcache_log_files=[str(UPSTREAM / "logs" / "mp_server.log")]))
    statuses = [(e.kind, e.status) for e in packet.evidence]
    assert statuses == [("log", "ok"), ("trace", "partial"), ("trace", "malformed")]
    partial = packet.of_kind("trace")[0]
    assert partial.facts.summary.total_records > 0
    assert partial.problems[0].offset is not None


def test_cli_collect_prints_and_writes(tmp_path: Path, server: FakeMPServer,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-packet"
    code = main(["collect-lmcache", "--output-dir", str(out), "--lmcache-http-base-url",
                 server.url, "--lmcache-http-thread-name", "EventBus", "--lmcache-metrics-file",
                 str(METRICS), "--expect-mode", "mp", "--mp-tracing-enabled"])
    assert code == 0
    text = capsys.readouterr().out
    assert f"packet written: {out}" in text and "http" in text
    packet = Packet.load(out)
    assert packet.settings.expected_mode == "mp" and packet.settings.mp_tracing_enabled is True
    assert packet.settings.http_thread_names == ["EventBus"]
    assert ("GET", "/threads?name=EventBus") in server.requests
    assert msgspec.json.decode((out / "packet.json").read_bytes())["inputs"]


def test_base_packet_carries_live_evidence_and_adds_closed_files(
        tmp_path: Path, server: FakeMPServer, capsys: pytest.CaptureFixture[str]) -> None:
    """The live flow: HTTP and /metrics while the server runs, then the trace and log once it
    has stopped and closed them, in one packet (scripts/live-lmcache-packet does this)."""
    live = tmp_path / "live"
    collect_lmcache(CollectOptions(
        output_dir=str(live), lmcache_http_base_url=server.url,
        lmcache_metrics_urls=[server.url + "/metrics"],
        settings=PacketSettings(expected_mode="mp", mp_metrics_sample_rate=1.0)))
    requests_before = list(server.requests)
    out = tmp_path / "final"
    code = main(["collect-lmcache", "--output-dir", str(out), "--base-packet", str(live),
                 "--lmcache-log-file", str(UPSTREAM / "logs" / "mp_server.log"),
                 "--lmcache-trace-file", str(UPSTREAM / "storage.lct"),
                 "--mp-trace-recording-enabled"])
    assert code == 0, capsys.readouterr().err
    assert server.requests == requests_before  # nothing live is asked again
    packet = Packet.load(out)
    assert [e.kind for e in packet.evidence] == ["lmcache_metrics", "http", "log", "trace"]
    assert packet.settings.expected_mode == "mp" and packet.settings.mp_metrics_sample_rate == 1.0
    assert packet.settings.mp_trace_recording_enabled is True
    scrape = next(i for i in packet.inputs if i.kind == "lmcache_metrics")
    assert scrape.original == server.url + "/metrics"
    assert scrape.copied_as is not None
    assert (out / scrape.copied_as).read_bytes() == METRICS.read_bytes()
    trace = next(i for i in packet.inputs if i.kind == "trace")
    assert trace.copied_as is not None and _sha(out / trace.copied_as) == trace.copy_sha256
    report = json.loads((out / "metrics" / "lmcache_compat_report.json").read_text())
    assert report["detected"]["mode"] == "mp"
    assert [t["records"] for t in report["facts"]["traces"]] == [74]
    # The earlier packet is untouched and nothing is left beside the new one.
    assert Packet.load(live).of_kind("http")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "live"]


def test_base_packet_missing_is_a_usage_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["collect-lmcache", "--output-dir", str(tmp_path / "out"), "--base-packet",
                 str(tmp_path / "nope"), "--lmcache-log-file",
                 str(UPSTREAM / "logs" / "mp_server.log")])
    err = capsys.readouterr().err
    assert code == 2 and "--base-packet" in err and "no such file" in err
    assert err.count("\n") == 1  # one line naming the flag and the path
    assert not (tmp_path / "out").exists()


def test_read_judges_the_copies_not_the_stored_evidence(tmp_path: Path) -> None:
    """A packet written by an older InferGuard keeps that reader's facts in its evidence
    files; `Packet.read` (what judging uses) reads the packet's own copies again, so the same
    bytes give today's verdict. Evidence without a copy is taken as stored."""
    import shutil

    src = FIXTURES / "lmcache_live" / "vllm_live_mp" / "packet"
    pkt = tmp_path / "packet"
    shutil.copytree(src, pkt)
    log_file = pkt / "metrics" / "lmcache_log_evidence.json"
    doc = json.loads(log_file.read_text())
    for ev in doc["evidence"]:
        ev["facts"]["hints"] = []  # what an older reader might have found: nothing
    log_file.write_text(json.dumps(doc))
    stored = Packet.load(pkt)
    assert all(not e.facts.hints for e in stored.of_kind("log"))
    fresh = Packet.read(pkt)
    logs = fresh.of_kind("log")
    assert logs and all(e.facts.hints for e in logs)
    assert [e.source.copied_as for e in logs] == [e.source.copied_as
                                                  for e in stored.of_kind("log")]
    # The live HTTP answers have no copy: stored, unchanged.
    assert fresh.of_kind("http") == stored.of_kind("http")
