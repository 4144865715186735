"""What a live LMCache packet must show: shared by the live end-to-end test
(tests/live/test_live_lmcache.py, INFERGUARD_LIVE=1) and the offline tests over the recorded
packets (tests/test_live_fixtures.py). docs/live-packet.md explains each expectation."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from inferguard._packet import Packet
from inferguard.evidence._http import ROUTES
from inferguard.evidence._otel import OtelFacts
from inferguard.evidence._trace import TraceFacts
from inferguard.judge._report import CompatReport
from inferguard.verdict import judge_report

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "live-lmcache-packet"
SCENARIOS = ("l1", "l2", "otel")
THREAD_NAMES = ("eviction",)


@cache
def script() -> ModuleType:
    """scripts/live-lmcache-packet as a module (its parsers are checked offline too)."""
    loader = importlib.machinery.SourceFileLoader("live_lmcache_packet", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = mod
    loader.exec_module(mod)
    return mod


def allowed_requests() -> set[tuple[str, str]]:
    """Every request the server may see: InferGuard's read-only GETs, its /metrics scrape,
    and the script's readiness probe (GET /healthcheck)."""
    out = {("GET", r.path) for r in ROUTES if r.collect and r.path != "/threads"}
    out |= {("GET", f"/threads?name={n}") for n in THREAD_NAMES}
    return out | {("GET", "/metrics"), ("GET", "/healthcheck")}


def check_http_requests(requests: list[dict[str, Any]]) -> None:
    """Only GETs to allow-listed routes; every InferGuard route asked; nothing failed 5xx."""
    assert requests, "the access log shows no request at all"
    seen = {(r["method"], r["path"]) for r in requests}
    assert {m for m, _ in seen} == {"GET"}, seen
    assert seen == allowed_requests(), seen ^ allowed_requests()
    assert all(r["status"] < 500 for r in requests), requests


def upstream_trace_info(text: str) -> dict[str, Any]:
    """The counts upstream `lmcache trace info` prints: total_records, ops, event batches
    and entries (each section is a header line, then `name: count` lines indented deeper)."""
    out: dict[str, Any] = {"ops": {}, "batches": {}, "entries": {}}
    headers = {"ops:": "ops", "batches (type/tier/backend/shared):": "batches",
               "entries:": "entries"}
    section, depth = None, 0
    for line in text.splitlines():
        s, indent = line.strip(), len(line) - len(line.lstrip())
        if s.startswith("total_records:"):
            out["total_records"] = int(s.split(":", 1)[1])
        if s in headers:
            section, depth = headers[s], indent
            continue
        m = re.match(r"^(\S+): (\d+)$", s)
        if section is not None and indent > depth and m:
            out[section][m.group(1)] = int(m.group(2))
        else:
            section = None
    return out


def check_trace(packet: Packet, upstream_text: str) -> None:
    """The trace parsed with no integrity finding, and its counts are upstream's."""
    [ev] = packet.of_kind("trace")
    assert ev.status == "ok" and not ev.problems, ev.problems
    assert isinstance(ev.facts, TraceFacts) and ev.facts.summary is not None
    s = ev.facts.summary
    assert s.integrity.ok and not s.integrity.findings, s.integrity
    assert s.integrity.malformed_frames == 0 and s.integrity.skipped_bytes == 0
    up = upstream_trace_info(upstream_text)
    assert up["ops"], upstream_text
    assert s.total_records == up["total_records"]
    assert {o.qualname: o.count for o in s.ops} == up["ops"]
    if s.header.level == "events":
        assert s.events is not None
        batches = {f"{b.event_type}/{b.tier}/{b.backend or '-'}/{b.scope}": b.count
                   for b in s.events.batches}
        assert batches == up["batches"] and dict(s.events.entries) == up["entries"]


def check_trace_against_upstream(run: dict[str, Any], res: dict[str, Any],
                                 packet: Packet) -> None:
    """The packet's trace input, read by the run venv's own `lmcache trace info` (in the
    scenario's isolated environment), agrees with InferGuard's summary (`check_trace`)."""
    import subprocess

    trace = Path(next(i.original for i in packet.inputs if i.kind == "trace"))
    lmcache = Path(run["venv"]) / "bin" / "lmcache"
    env = script().server_env(Path(res["work"]) / "home", Path(res["work"]) / "tmp")
    info = subprocess.run([str(lmcache), "trace", "info", str(trace)], capture_output=True,
                          text=True, env=env, timeout=120, stdin=subprocess.DEVNULL, check=True)
    check_trace(packet, info.stdout)


def check_verdict(r: CompatReport, scenario: str) -> None:
    """Mode mp, nothing required missing, the families the traffic must populate."""
    assert r.detected.mode == "mp" and r.mode_match is True, r.detected
    assert r.detected.level == "supported"
    assert r.missing_required == [] and r.zero_required == []
    groups = {g.id: g.status for g in r.groups}
    must = {"mp_l1", "mp_lookup_tokens", "mp_gauges", "mp_real_reuse", "mp_transfer",
            "mp_l0_l1_throughput", "mp_engine_loaded"}
    if scenario == "l2":
        must |= {"mp_l2", "mp_l2_throughput", "mp_l1_lifecycle", "mp_health"}
    assert {g: groups[g] for g in must} == dict.fromkeys(must, "populated"), groups
    claims = {c.id: c.level for c in judge_report(r).claims.made}
    assert claims["cache_hits"] == "supported" and claims["request_level_evidence"] == "supported"
    fam = {f.name: f for f in r.families}
    if scenario == "l2":
        assert claims["l2_in_use"] == "supported"
        for name in ("lmcache_mp_lookup_hit_l2_tokens_total", "lmcache_mp_l1_evicted_chunks_total",
                     "lmcache_mp_l1_allocation_failure_chunks_total",
                     "lmcache_mp_l2_prefetch_load_completed_chunks_total"):
            assert fam[name].status == "populated", fam[name]
        obs = r.lmcache_mp_observability
        assert obs is not None and obs.l2_adapter_labels == ["fs"]
    else:
        assert r.group("mp_l2").status == "not_applicable"  # type: ignore[union-attr]
    # L0 needs a GPU engine: never on this CPU-only run.
    assert groups["mp_l0_lifecycle"] == "not_applicable"
    if scenario == "otel":
        hit = fam["lmcache_mp_lookup_hit_tokens_total"]
        assert hit.found_as == "lmcache_mp.lookup_hit" and "OTLP" in (hit.explanation or "")


def check_bench_totals(r: CompatReport, bench: dict[str, Any]) -> None:
    """The lookup counters equal what the client saw, chunk for chunk."""
    fam = {f.name: f for f in r.families}
    chunk = bench["chunk_size"]
    assert bench["lookups"] > 0 and bench["hit_chunks"] > 0 and bench["misses"] > 0
    assert fam["lmcache_mp_lookups_requests_total"].total == bench["lookups"]
    assert fam["lmcache_mp_lookup_hit_tokens_total"].total == bench["hit_chunks"] * chunk
    assert fam["lmcache_mp_lookup_requested_tokens_total"].total == (
        bench["requested_chunks"] * chunk)


def check_spans(packet: Packet, bench: dict[str, Any]) -> None:
    """One `request` span per lookup, with the MP child spans of both transfer paths."""
    facts = [e.facts for e in packet.of_kind("otel") if isinstance(e.facts, OtelFacts)
             and e.facts.span_count]
    assert len(facts) == 1, facts
    f = facts[0]
    req, look = f.span("request"), f.span("mp.lookup_prefetch")
    assert req is not None and look is not None
    assert req.count == look.count == bench["lookups"] and req.errors == 0
    edges = {(e.parent, e.child) for e in f.edges}
    assert {("request", "mp.lookup_prefetch"), ("request", "mp.store"),
            ("request", "mp.retrieve")} <= edges
    assert f.service_instance_ids == ["inferguard-live-otel"]


def check_isolation(result: dict[str, Any]) -> None:
    """Nothing but loopback: no remote address, no listener beyond 127.0.0.1, no telemetry
    identity written under the temporary HOME."""
    net = result["net"]
    assert net["polls"] > 0 and net["sockets_seen"] > 0
    assert net["non_loopback_remote"] == [] and net["non_loopback_listen"] == []
    assert net["machine_id_written"] is False and net["home_files"] == []
    if result["netns"]:
        assert result["interfaces_besides_lo"] == []


class LiveMpServer:
    """A real `lmcache server` (0.5.6, the script's cached venv) on 127.0.0.1 for the live
    tests that drive it themselves (watch, Prometheus): free ports, readiness polled on
    `/healthcheck`, `bench(tokens, end)` for `lmcache bench server` traffic, stopped by PID
    with its log tail printed. Use as a context manager."""

    def __init__(self, instance_id: str, prefix: str) -> None:
        import tempfile

        self.mod = mod = script()
        self.lmcache = str(mod.ensure_env() / "bin" / "lmcache")
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        (self.work / "home").mkdir()
        (self.work / "tmp").mkdir()
        self.env = mod.server_env(self.work / "home", self.work / "tmp")
        self.procs = mod.Procs(self.work / "pids.txt")
        self.zmq_port, self.http_port = mod.free_port(), mod.free_port()
        while self.http_port == self.zmq_port:
            self.http_port = mod.free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.log = self.work / "server.log"
        self.instance_id = instance_id
        self._benches = 0

    def __enter__(self) -> LiveMpServer:
        import time

        mod = self.mod
        self.server = self.procs.start("lmcache-server", [
            self.lmcache, "server", "--instance-id", self.instance_id, "--host", "127.0.0.1",
            "--port", str(self.zmq_port), "--http-host", "127.0.0.1",
            "--http-port", str(self.http_port), "--eviction-policy", "LRU",
            "--chunk-size", str(mod.CHUNK_SIZE), "--supported-transfer-mode", "auto",
            "--metrics-sample-rate", "1.0", "--l1-size-gb", "0.25"],
            env=self.env, log_path=self.log)
        try:
            deadline = time.monotonic() + mod.READY_TIMEOUT_S
            while mod._get(self.base + "/healthcheck") != 200:
                assert self.server.poll() is None, self.log.read_text()[-3000:]
                assert time.monotonic() < deadline, "lmcache server not ready"
                time.sleep(0.3)
        except BaseException:
            self.__exit__()
            raise
        return self

    def bench(self, tokens: int, end: int) -> None:
        """One `lmcache bench server` run (engine-driven, CPU), bounded by the script's cap."""
        mod, i = self.mod, self._benches
        self._benches += 1
        out = self.work / f"bench{i}.out"
        rc = self.procs.run(f"bench{i}", [
            self.lmcache, "bench", "server", "--rpc-url", f"tcp://127.0.0.1:{self.zmq_port}",
            "--url", mod.DEAD_URL, "--mode", "cpu", "--transfer-mode", "engine_driven",
            "--kvcache-shape-spec", mod.KV_SPEC, "--num-tokens", str(tokens),
            "--start", "0", "--end", str(end), "--interval", "0.1"],
            env=self.env, log_path=out, timeout=mod.BENCH_TIMEOUT_S)
        assert rc == 0, out.read_text()[-3000:]

    def __exit__(self, *_exc: object) -> None:
        self.mod.Procs.stop(self.server)
        print("---- lmcache server log (tail) ----\n"
              + self.log.read_text(errors="replace")[-3000:])


def run_script(args: list[str], out: Path, timeout_s: float) -> dict[str, Any]:
    """Run scripts/live-lmcache-packet with `args --out OUT` in its own session, bounded by
    `timeout_s` (then every PID it recorded is killed); its summary.json plus `exit`."""
    import json
    import os
    import signal
    import subprocess

    import pytest

    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args, "--out", str(out)],
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        for pids in out.glob("*/pids.txt"):  # everything it started, by PID
            script().kill_recorded(pids)
        pytest.fail(f"{SCRIPT.name} did not finish within {timeout_s:.0f} s")
    if not (out / "summary.json").exists():
        pytest.fail(f"{SCRIPT.name} exited {proc.returncode} without a summary (its output "
                    "above says why: the environment build or a scenario's server log)")
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    summary["exit"] = proc.returncode
    return summary


def scenario_result(run: dict[str, Any], name: str) -> dict[str, Any]:
    """One scenario's entry of the script's summary, which must have succeeded."""
    res: dict[str, Any] = next(r for r in run["scenarios"] if r["scenario"] == name)
    assert res["ok"], res.get("error")
    return res


def scenario_report(res: dict[str, Any]) -> CompatReport:
    """The verdict `lmcache-compat --fail-on missing-required --json` printed in the run."""
    import json

    import msgspec

    doc = json.loads((Path(res["work"]) / "compat.out").read_text())
    return msgspec.convert(doc["report"], CompatReport)
