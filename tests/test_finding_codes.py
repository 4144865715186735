"""Every finding code, through the public pipeline only: for each code one minimal packet on
which it fires and one near miss (the smallest meaningful change) on which it stays quiet.

Inputs are real bytes written into `tmp_path` (Prometheus text, log lines, OTLP JSON lines,
launch commands, HTTP/controller capture directories, lookup-hash JSONL, replay outputs,
`.lct` traces from `tests/lct_writer.py`) or fixture files, read with `ig.read_evidence`,
packed into an `ig.Packet` and judged with `ig.judge_packet`. Nothing here builds a compat
report or its facts by hand, so these tests hold across rewrites of the judge's internals.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import inferguard as ig
from inferguard.findings import FINDING_CODES

from . import lct_writer as w
from .conftest import FIXTURES, UPSTREAM

Builder = Callable[[Path], ig.Packet]
LEVELS = {"supported", "partial", "missing_signal", "inferred_without_engine_metrics"}
CTRL = UPSTREAM / "controller"
T0 = 1_795_838_816.0  # a 2026 wall clock, as in the controller captures


# -- writing inputs -----------------------------------------------------------------------------


def _write(tmp: Path, name: str, data: str | bytes) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data)
    return p


def packet(*evidence: ig.Evidence, **settings: Any) -> ig.Packet:
    return ig.Packet(settings=ig.PacketSettings(**settings), evidence=list(evidence))


def read(kind: str, path: Path) -> ig.Evidence:
    return ig.read_evidence(kind, path)


def prom_text(rows: dict[str, Any]) -> str:
    """Prometheus 0.0.4 text as prometheus_client writes it. Keys are sample names (labels
    allowed: `x_total{reason="a"}`); values are numbers (counter when the name ends in
    `_total`, else gauge) or `(type, value)`."""
    out: list[str] = []
    typed: set[str] = set()
    for sample, v in rows.items():
        typ, value = v if isinstance(v, tuple) else (
            "counter" if sample.split("{", 1)[0].endswith("_total") else "gauge", v)
        fam = sample.split("{", 1)[0]
        if fam not in typed:
            typed.add(fam)
            out.append(f"# HELP {fam} test family\n# TYPE {fam} {typ}")
        out.append(f"{sample} {float(value)!r}")
    return "\n".join(out) + "\n"


def histogram(name: str, buckets: list[tuple[float, int]], total: int, sum_: float) -> str:
    lines = [f"# HELP {name} test histogram", f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{le="{le!r}"}} {float(c)!r}' for le, c in buckets]
    lines += [f'{name}_bucket{{le="+Inf"}} {float(total)!r}', f"{name}_count {float(total)!r}",
              f"{name}_sum {sum_!r}"]
    return "\n".join(lines) + "\n"


def scrape(tmp: Path, rows: dict[str, Any], kind: str = "lmcache_metrics",
           name: str | None = None, extra: str = "") -> ig.Evidence:
    return read(kind, _write(tmp, name or f"{kind}.txt", prom_text(rows) + extra))


PROCESS_ONLY = {"process_cpu_seconds_total": 1.5, "process_open_fds": 12}

# An MP server (lmcache server, 0.5.6) after a cold and a warm request on the engine-driven
# path: L1 reads/writes, lookups with hits, the startup gauges and the EventBus drop counter.
MP = {
    "lmcache_mp_l1_read_chunks_total": 4,
    "lmcache_mp_l1_write_chunks_total": 8,
    "lmcache_mp_lookups_requests_total": 4,
    "lmcache_mp_lookup_requested_tokens_total": 512,
    "lmcache_mp_lookup_hit_tokens_total": 256,
    "lmcache_mp_l1_memory_usage_bytes": 1_048_576,
    "lmcache_mp_l1_usage_ratio": 0.1,
    "lmcache_mp_l1_eviction_loop_ticks_total": 30,
    "lmcache_mp_event_bus_dropped_events_total": 0,
}
# The same server before any request: only the families present from startup.
MP_IDLE = {k: v for k, v in MP.items()
           if k.endswith(("_bytes", "_ratio", "ticks_total", "dropped_events_total"))}


def mp(tmp: Path, *, drop: tuple[str, ...] = (), base: dict[str, Any] | None = None,
       **changes: Any) -> ig.Evidence:
    """The MP scrape with families dropped or set (`changes` keys without `lmcache_mp_`)."""
    rows = {k: v for k, v in (MP if base is None else base).items() if k not in drop}
    rows.update({f"lmcache_mp_{k}": v for k, v in changes.items()})
    return scrape(tmp, rows)


def log(tmp: Path, *messages: str, name: str = "server.log") -> ig.Evidence:
    """Log lines in LMCache's own format (`[time] LMCache INFO: message (file:line:module)`)."""
    text = "".join(f"[2026-11-28 04:06:{i % 60:02d},374] LMCache INFO: {m} "
                   "(server.py:1:lmcache.test)\n" for i, m in enumerate(messages))
    return read("log", _write(tmp, name, text))


def launch(tmp: Path, text: str, name: str = "launch.txt") -> ig.Evidence:
    return read("launch_config", _write(tmp, name, text))


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def capture(tmp: Path, name: str, answers: dict[str, Any], date: float = T0,
            kind: str = "controller") -> ig.Evidence:
    """A capture directory as lab harnesses save it: GET_<route>.body + .headers. Values are
    JSON bodies, text bodies (str), or `(status, body)`."""
    d = tmp / name
    d.mkdir(parents=True)
    for route, answer in answers.items():
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        raw = body if isinstance(body, str) else json.dumps(body)
        ctype = "text/plain; version=0.0.4" if isinstance(body, str) else "application/json"
        (d / f"GET_{route}.body").write_text(raw)
        reason = {200: "OK", 503: "Service Unavailable"}.get(status, "X")
        (d / f"GET_{route}.headers").write_text(
            f"HTTP/1.1 {status} {reason}\ndate: {http_date(date)}\nserver: uvicorn\n"
            f"content-length: {len(raw)}\ncontent-type: {ctype}\n")
    return read(kind, d)


def worker(*, heartbeat_after_s: float = 10.0, peer_init_url: str | None = None
           ) -> dict[str, Any]:
    return {"instance_id": "inst-0", "worker_id": 0, "ip": "127.0.0.1", "port": 18500,
            "peer_init_url": peer_init_url, "registration_time": T0,
            "last_heartbeat_time": T0 + heartbeat_after_s, "key_count": 0}


def controller(tmp: Path, *, workers: list[dict[str, Any]] | None = None,
               age_s: float = 2.0, **answers: Any) -> ig.Evidence:
    """A controller's answers; the listing's Date is `age_s` after the last heartbeat.
    `answers` add or replace routes by capture name (`metrics=...`, and
    `periodic_threads_health=...` for GET_periodic-threads-health)."""
    ws = [worker()] if workers is None else workers
    last = max((x["last_heartbeat_time"] for x in ws), default=T0)
    base: dict[str, Any] = {
        "root": "<html><title>LMCache Controller</title></html>",
        "controller_workers": {"workers": ws, "total_count": len(ws)},
        "controller_key-stats": {"total_key_count": 0, "total_instance_count": 1,
                                 "total_worker_count": len(ws)},
        "periodic-threads-health": {"healthy": True, "unhealthy_count": 0,
                                    "unhealthy_threads": []},
    }
    base.update({k.replace("_", "-") if k.startswith("periodic") else k: v
                 for k, v in answers.items()})
    return capture(tmp, "controller", base, date=last + age_s)


def controller_gauges(completed: float) -> str:
    p = "lmcache:cache_controller_"
    rows = {f'{p}registered_workers_count{{role="controller"}}': 1,
            f'{p}full_sync_workers_syncing{{role="controller"}}': 0,
            f'{p}full_sync_workers_completed{{role="controller"}}': completed}
    return prom_text(rows)


# OTLP JSON lines (what an OTel collector's file exporter writes).


def span(name: str, sid: int, parent: int | None = None, *, start_ms: float = 0.0,
         dur_ms: float | None = 1.0, **attrs: Any) -> dict[str, Any]:
    start = int((T0 * 1000 + start_ms) * 1e6)
    sp: dict[str, Any] = {"traceId": "ab" * 16, "spanId": f"{sid:016x}", "name": name,
                          "kind": 1, "startTimeUnixNano": str(start),
                          "endTimeUnixNano": "0" if dur_ms is None
                          else str(start + int(dur_ms * 1e6)),
                          "attributes": [{"key": k, "value": {"intValue": str(v)}
                                          if isinstance(v, int) else {"stringValue": str(v)}}
                                         for k, v in attrs.items()],
                          "status": {}}
    if parent is not None:
        sp["parentSpanId"] = f"{parent:016x}"
    return sp


def otel(tmp: Path, spans: list[dict[str, Any]], scope: str = "lmcache.blend") -> ig.Evidence:
    doc = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "lmcache-server"}}]},
        "scopeSpans": [{"scope": {"name": scope}, "spans": spans}]}]}
    return read("otel", _write(tmp, "spans.jsonl", json.dumps(doc) + "\n"))


# .lct traces (storage level, and events level).


def lct(tmp: Path, *bodies: bytes, head: bytes | None = None, name: str = "trace.lct"
        ) -> ig.Evidence:
    return read("trace", _write(tmp, name, w.trace(*bodies, head=head)))


def rec(op: str, t: float, key: int = 0, nkeys: int = 1) -> bytes:
    return w.storage_record(op, nkeys, t, key)


def stored(key: int, t: float) -> list[bytes]:
    """A complete write of one key: reserve_write then finish_write."""
    return [rec("reserve_write", t, key), rec("finish_write", t + 0.01, key)]


def read_back(key: int, t: float) -> list[bytes]:
    """A complete warm read: lookup/prefetch, read context, finish_read_prefetched."""
    return [rec("submit_prefetch_task", t, key),
            rec("read_prefetched_results.__enter__", t + 0.01, key),
            rec("read_prefetched_results.__exit__", t + 0.02, key),
            rec("finish_read_prefetched", t + 0.03, key)]


def events_head() -> bytes:
    meta = {"instance_id": "srv-a", "cache_event_schema_version": 1, "lmcache_version": "0.5.6"}
    return w.header("schema1", level="events", level_meta=meta)


def lifecycle(phase: str, t: float, incarnation: int = 1) -> bytes:
    args: dict[str, Any] = {"phase": phase, "instance_id": "srv-a"}
    if phase == "start":
        args |= {"incarnation": incarnation, "ip": "127.0.0.1", "http_port": 1, "mq_port": 2}
    return w.record("events.lifecycle", args, t, 1.8e9 + t)


def batch(seq: int, etype: str, keys: list[int], t: float, incarnation: int = 1) -> bytes:
    entries = [{"key": {"chunk_hash_hex": f"{k:064x}", "model_name": "m", "kv_rank": 0,
                        "object_group_id": 0, "cache_salt": None},
                "size_bytes": 100, "token_ids": [], "token_offset": -1} for k in keys]
    args = {"instance_id": "srv-a", "incarnation": incarnation, "seq": seq, "event_type": etype,
            "tier": "l1", "backend": None, "entries": entries, "shared": False,
            "ts": 1.8e9 + t, "capacity_bytes": 10, "capacity_revision": 0}
    return w.record("events.batch", args, t, 1.8e9 + t)


def many_keys_trace(n: int) -> bytes:
    """finish_write records over `n` distinct keys (built from one packed key, fast)."""
    proto = w.object_key(0, model="m", hash_len=8)
    h = proto["v"]["chunk_hash"]
    packed = w.pack(proto)
    i = packed.index(h)
    pre, post = packed[:i], packed[i + len(h):]
    bodies = []
    per = 8192
    for start in range(0, n, per):
        k = min(per, n - start)
        keys = b"".join(pre + j.to_bytes(8, "big") + post for j in range(start, start + k))
        head = {"type": "record", "t_mono": 1.0 + start * 1e-6, "t_wall": 1.8e9,
                "qualname": w.STORAGE_PREFIX + "finish_write"}
        body = b"\x85" + b"".join(w.pack(a) + w.pack(b) for a, b in head.items())
        body += w.pack("args") + b"\x81" + w.pack("keys") + b"\xdd" + k.to_bytes(4, "big") + keys
        bodies.append(body)
    return w.trace(*bodies)


BIG_TRACE = 1 << 19  # the default exact-key limit of the trace analytics (DEFAULT_MAX_KEYS)


# -- the cases ----------------------------------------------------------------------------------
# Each pair: (fires, stays quiet). The comment on the quiet builder says what differs.

CASES: dict[str, tuple[Builder, Builder]] = {}


def case(code: str) -> Callable[[Callable[[Path, bool], ig.Packet]], None]:
    """Register `fn(tmp, fire)` as the case of `code`: fire=True fires, False is the near miss."""
    def register(fn: Callable[[Path, bool], ig.Packet]) -> None:
        assert code not in CASES, code
        CASES[code] = (lambda tmp: fn(tmp, True), lambda tmp: fn(tmp, False))
    return register


# mode


@case("lmcache_mode_mismatch")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the operator expected the mode the MP scrape shows.
    return packet(mp(tmp), expected_mode="embedded_vllm" if fire else "mp")


@case("lmcache_mode_undetermined")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the same log has the MP server's start line.
    lines = ["Loading config from env", "Setting up workers"]
    if not fire:
        lines.append("Starting LMCache HTTP server on http://0.0.0.0:8080")
    return packet(log(tmp, *lines))


@case("lmcache_not_configured")
def _(tmp: Path, fire: bool) -> ig.Packet:
    """Plain vLLM, as the live control run had it (live-vllm-findings.md, run0): the launch has
    no KV connector and the scrape exports vllm:external_prefix_cache_* at 0 with no
    lmcache:* family. Near miss: the same launch with --kv-transfer-config naming
    LMCacheMPConnector (LMCache is configured: the mode rules take over)."""
    conn = "" if fire else (" --kv-transfer-config "
                            "'{\"kv_connector\":\"LMCacheMPConnector\",\"kv_role\":\"kv_both\"}'")
    return packet(
        launch(tmp, f"vllm serve /models/tiny --port 8000{conn}\n"),
        scrape(tmp, {"vllm:prefix_cache_queries_total": 5120, "vllm:prefix_cache_hits_total": 1280,
                     "vllm:external_prefix_cache_queries_total": 0,
                     "vllm:external_prefix_cache_hits_total": 0,
                     "vllm:prompt_tokens_total": 5232}, kind="engine_metrics"))


# MP metric surface


@case("lmcache_mp_metrics_missing")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the scrape carries one lmcache_mp_* family besides the process metrics.
    rows = dict(PROCESS_ONLY)
    if not fire:
        rows["lmcache_mp_l1_usage_ratio"] = 0.0
    return packet(scrape(tmp, rows), expected_mode="mp")


@case("lmcache_mp_metrics_via_otlp")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Only the server log, no pull scrape: its MeterProvider line as 0.5.6 writes it
    # (otel_init.py). Near miss: the line says Prometheus fallback (pull mode).
    resource = ("resource={'telemetry.sdk.language': 'python', 'telemetry.sdk.name': "
                "'opentelemetry', 'telemetry.sdk.version': '1.40.0', 'service.instance.id': "
                "'srv-a', 'service.name': 'unknown_service'}")
    how = ("OTLP exporter (http://127.0.0.1:14317)" if fire else
           "Prometheus fallback (standalone metrics HTTP server disabled; /metrics must be "
           "exposed by the caller)")
    return packet(log(tmp, f"OTel MeterProvider initialised with {how}, {resource}"),
                  expected_mode="mp")


@case("lmcache_required_family_missing")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the scrape after traffic also has the required lookup hit-token counter.
    return packet(mp(tmp, drop=("lmcache_mp_lookup_hit_tokens_total",) if fire else ()))


@case("lmcache_mp_lookup_counters_missing")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # L1 traffic without any lmcache_mp_lookup_* family. Near miss: the lookup request
    # counter appeared (lookups did go through the MP connector).
    look = ("lmcache_mp_lookup_requested_tokens_total", "lmcache_mp_lookup_hit_tokens_total")
    return packet(mp(tmp, drop=look + (("lmcache_mp_lookups_requests_total",) if fire else ())))


@case("lmcache_families_not_created_yet")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A scrape before any request. Near miss: one chunk was written to L1 (traffic).
    written: dict[str, Any] = {} if fire else {"l1_write_chunks_total": 1}
    return packet(mp(tmp, base=MP_IDLE, **written))


@case("lmcache_transfer_path_families_absent")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Engine-driven traffic. Near miss: a store/retrieve counter shows the lmcache-driven
    # transfer path ran.
    stores: dict[str, Any] = {} if fire else {"num_submitted_stores_total": 2}
    return packet(mp(tmp, **stores))


@case("lmcache_zero_hits_after_warmup")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Lookups ran. Near miss: some looked-up tokens hit.
    return packet(mp(tmp, lookup_hit_tokens_total=0 if fire else 256))


@case("lmcache_hash_seed_risk")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A PD pair (producer and consumer vLLM), each launch script setting its environment with
    # one multi-assignment `export`. Near miss: both export the same seed (a reader that
    # missed the multi-assignment form would see no seed at all and warn).
    cmd = ("export VLLM_NO_USAGE_STATS=1 PYTHONHASHSEED={} LMCACHE_CHUNK_SIZE=256\n"
           "vllm serve Qwen/Qwen3-0.6B --kv-transfer-config "
           "'{{\"kv_connector\":\"LMCacheConnectorV1\",\"kv_role\":\"{}\"}}'\n")
    return packet(launch(tmp, cmd.format(0, "kv_producer"), "prefill.txt"),
                  launch(tmp, cmd.format(1 if fire else 0, "kv_consumer"), "decode.txt"))


@case("lmcache_l1_pressure")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the eviction counter exists but reads 0.
    return packet(mp(tmp, l1_evicted_chunks_total=12 if fire else 0))


@case("lmcache_l2_stall")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: every submitted L2 store completed.
    return packet(mp(tmp, l2_store_submitted_requests_total=4,
                     l2_store_completed_requests_total=1 if fire else 4), l2_configured=True)


@case("lmcache_event_bus_drop_risk")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the drop counter reads 0.
    return packet(mp(tmp, event_bus_dropped_events_total=7 if fire else 0))


@case("lmcache_event_bus_drops_unobservable")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the scrape has the drop counter (at 0).
    return packet(mp(tmp, drop=("lmcache_mp_event_bus_dropped_events_total",) if fire else ()))


@case("lmcache_mp_server_unhealthy")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: /healthcheck answers 200 healthy.
    hc = (503, {"status": "unhealthy", "reason": "L1 manager not ready"}) if fire else (
        200, {"status": "healthy"})
    return packet(mp(tmp), capture(tmp, "http", {"healthcheck": hc, "version": "0.5.6-g3e11e108"},
                                   kind="http"))


@case("lmcache_tracing_evidence_missing")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # --mp-tracing-enabled declared. Near miss: the exported spans are in the packet.
    ev = [mp(tmp)]
    if not fire:
        ev.append(otel(tmp, [span("mp.lookup", 1)], scope="lmcache.mp"))
    return packet(*ev, mp_tracing_enabled=True)


@case("lmcache_trace_recording_missing")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # --mp-trace-recording-enabled declared. Near miss: the .lct is in the packet.
    ev = [mp(tmp)]
    if not fire:
        ev.append(lct(tmp, *stored(0, 1.0), *read_back(0, 2.0)))
    return packet(*ev, mp_trace_recording_enabled=True)


@case("lmcache_trace_damaged")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A complete cold/warm pair, then one more read whose frame the file cuts short (the
    # server was killed mid-write). Near miss: that last frame is whole.
    data = w.trace(*stored(0, 1.0), *read_back(0, 2.0), rec("finish_read_prefetched", 3.0))
    return packet(read("trace", _write(tmp, "t.lct", data[:-5] if fire else data)))


@case("lmcache_trace_no_reads")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Writes only. Near miss: a warm read of the written key follows.
    return packet(lct(tmp, *stored(0, 1.0), *([] if fire else read_back(0, 2.0))))


@case("lmcache_sampled_histograms_sparse")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Traffic, and nothing in the packet says the rate: upstream's default 0.01. Near miss:
    # the server's real /config answer is in the packet and says metrics_sample_rate 1.0.
    ev = [mp(tmp)]
    if not fire:
        ev.append(read("http", UPSTREAM / "http"))
    return packet(*ev)


# embedded vLLM / SGLang and the engine's view

V1_LAUNCH = ("vllm serve Qwen/Qwen3-0.6B --kv-transfer-config "
             "'{\"kv_connector\":\"LMCacheConnectorV1\",\"kv_role\":\"kv_both\"}'\n")


@case("lmcache_embedded_metrics_not_exported")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # vLLM with the in-process connector. Near miss: the engine /metrics has lmcache:*.
    rows: dict[str, Any] = {"vllm:num_requests_running": 0, "vllm:prompt_tokens_total": 640}
    if not fire:
        rows["lmcache:num_hit_tokens"] = ("counter", 128)
    return packet(launch(tmp, V1_LAUNCH), scrape(tmp, rows, "engine_metrics"))


@case("lmcache_configured_but_not_working")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The connector is configured, lmcache:* are declared and all zero, vLLM queried the
    # connector for 1000 tokens. Near miss: vLLM saw connector hits.
    rows = {"vllm:prompt_tokens_total": 1000, "vllm:external_prefix_cache_queries_total": 1000,
            "vllm:external_prefix_cache_hits_total": 0 if fire else 256,
            "lmcache:num_hit_tokens": ("counter", 0),
            "lmcache:num_requested_tokens": ("counter", 0)}
    return packet(launch(tmp, V1_LAUNCH), scrape(tmp, rows, "engine_metrics"))


@case("lmcache_vllm_hits_reconciled")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # vLLM and LMCache both count hits. Near miss: the LMCache scrape has no hit-token
    # counter, so there is nothing to reconcile.
    engine = scrape(tmp, {
        'vllm:external_prefix_cache_queries_total{model_name="qwen"}': 512,
        'vllm:external_prefix_cache_hits_total{model_name="qwen"}': 128}, "engine_metrics")
    return packet(engine, mp(tmp, drop=() if fire else ("lmcache_mp_lookup_hit_tokens_total",)))


@case("lmcache_sglang_hicache_only")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # SGLang's server_args line. Near miss: enable_lmcache=True in the same line.
    return packet(log(tmp, f"server_args=ServerArgs(model_path='Qwen/Qwen3-0.6B', "
                           f"enable_lmcache={not fire}, enable_hierarchical_cache=True, "
                           "hicache_ratio=2.0)"))


@case("lmcache_log_p2p_evidence_present")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A P2P serving line (0.5.6 p2p_backend: "P2P transfer finished for request ...") beside a
    # controller registration. Near miss: the registration alone — a controller also serves
    # non-P2P deployments, so registering is no P2P evidence.
    lines = ["Registered instance-worker ('inst-0', 0) with URL 127.0.0.1:18500"]
    if fire:
        lines.append("P2P transfer finished for request req-1 in 0.012 seconds")
    return packet(log(tmp, *lines))


@case("lmcache_log_pd_evidence_present")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # LMCache's config dump. Near miss: enable_pd is False.
    return packet(log(tmp, f"LMCache Configuration: {{'chunk_size': 256, 'enable_pd': {fire}}}"))


@case("lmcache_log_stale_connector")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: vLLM creates the V1 connector.
    name = "LMCacheConnector" if fire else "LMCacheConnectorV1"
    return packet(log(tmp, f"Creating v1 connector with name: {name} and engine_id: e-0"))


# CacheBlend (lmcache server --engine-type blend)

BLEND = {"lmcache_blend_lookup_requests_total": 4, "lmcache_blend_retrieve_requests_total": 3}


def blend(tmp: Path, extra: str = "", **rows: Any) -> ig.Evidence:
    return scrape(tmp, {**BLEND, **{f"lmcache_blend_{k}": v for k, v in rows.items()}},
                  extra=extra)


@case("lmcache_blend_retrieve_failures")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: no retrieve failed.
    return packet(blend(tmp, retrieve_failures_total=1 if fire else 0))


@case("lmcache_blend_no_gpu_context")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the error counter reads 0.
    return packet(blend(tmp, lookup_no_gpu_context_errors_total=2 if fire else 0))


@case("lmcache_blend_scatter_counts_attempts")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A retrieve failed. Near miss: the scatter counter did not rise for it.
    return packet(blend(tmp, retrieve_failures_total=1,
                        scatter_tokens_total=96 if fire else 0))


@case("lmcache_blend_stale_fingerprints")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: no stale chunk among the fingerprint matches.
    return packet(blend(tmp, lookup_stale_chunks_total=6 if fire else 0))


@case("lmcache_blend_retrieve_noops")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the no-op counter's only series reads 0.
    noops: dict[str, Any] = {'retrieve_noops_total{reason="matches_straddle_alloc"}':
                             1 if fire else 0}
    return packet(blend(tmp, **noops))


@case("lmcache_blend_lookup_spans_held_open")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A cb.request whose lookup matched lasted 30 s. Near miss: it was retrieved.
    spans = [span("cb.request", 1, start_ms=0, dur_ms=30_000),
             span("cb.lookup", 2, 1, start_ms=1, dur_ms=3, fingerprint_hits=4)]
    if not fire:
        spans.append(span("cb.retrieve", 3, 1, start_ms=29_000, dur_ms=5, success="True"))
    return packet(otel(tmp, spans))


@case("lmcache_blend_sparse_prefetch_l2_keys_not_l2")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the counter reads 0.
    return packet(blend(tmp, sparse_prefetch_l2_keys_total=8 if fire else 0))


@case("lmcache_blend_fingerprint_match_jit_outlier")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # 13 matches, fast except the first (JIT). Near miss: two slow matches (no lone outlier).
    under = 12 if fire else 11
    h = histogram("lmcache_blend_fingerprint_match_duration_milliseconds",
                  [(5.0, under), (100.0, under), (250.0, 13)], 13, 290.0)
    return packet(blend(tmp, extra=h))


# controller and engines' internal API servers


@case("lmcache_controller_only_evidence")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The controller's answers. Near miss: the MP server's /metrics is in the packet too.
    ev = [controller(tmp)]
    if not fire:
        ev.append(mp(tmp))
    return packet(*ev)


@case("lmcache_controller_worker_stale")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: 80 s since the last heartbeat (within 60 s plus the 30-s list cache).
    return packet(controller(tmp, age_s=120.0 if fire else 80.0))


@case("lmcache_controller_worker_listed_after_stop")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Real 0.5.6 captures: the engine heartbeats every 2 s; after it exited (SIGINT, no
    # deregistration) the controller still listed it. Near miss: the listing taken 3 s after
    # the exit (still inside the 30-s list cache) instead of 34 s after.
    later = "c2_controller_after_cache_ttl" if fire else "c2_controller_after_worker_exit"
    return packet(read("controller", CTRL / "c2_internal_api"), read("controller", CTRL / later))


@case("lmcache_controller_full_sync_gauge_stuck")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The log completed a full sync. Near miss: the gauge shows the completed worker.
    return packet(controller(tmp, metrics=controller_gauges(0.0 if fire else 1.0)),
                  log(tmp, "Completed full sync for worker ('inst-0', 0): sync_id=inst-0_0_f0, "
                           "received_keys=0, batches=1"))


@case("lmcache_controller_peer_init_url_missing")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # P2P expected. Near miss: the worker registered with its peer init URL.
    url = None if fire else "127.0.0.1:18600"
    return packet(controller(tmp, workers=[worker(peer_init_url=url)]), expected_mode="p2p")


@case("lmcache_controller_threads_unhealthy")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: /periodic-threads-health says healthy.
    health = ({"healthy": False, "unhealthy_count": 1, "unhealthy_threads": [
        {"name": "controller-health-thread", "level": "high"}]} if fire else
        {"healthy": True, "unhealthy_count": 0, "unhealthy_threads": []})
    return packet(controller(tmp, periodic_threads_health=health))


# trace replay and lookup-hash logs


@case("lmcache_trace_replay_failures")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # trace_replay_ops.csv. Near miss: no handler raised (errors 0).
    text = ("qualname,count,errors,mean_ms,p50_ms,p90_ms,p99_ms,min_ms,max_ms\r\n"
            f"{w.STORAGE_PREFIX}finish_write,9,{2 if fire else 0},0.163468,0.178575,0.225706,"
            "0.225706,0.076648,0.225706\r\n")
    return packet(read("trace_replay", _write(tmp, "trace_replay_ops.csv", text)))


@case("lmcache_trace_replay_config_mismatch")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The real replay stdout (MISMATCH). Near miss: the digest line reads match.
    text = (UPSTREAM / "replay" / "replay_stdout.txt").read_text()
    if not fire:
        text = text.replace("MISMATCH (rec=c87838bb, run=7c43bbd9)",
                            "match (rec=c87838bb, run=c87838bb)")
    return packet(read("trace_replay", _write(tmp, "replay_stdout.txt", text)))


# Upstream's own log lines for what replay's `failed` does not count (0.5.6 format strings:
# memory_management.py, storage_manager.py read_prefetched_results, l1_manager.py finish_read;
# ObjectKey reprs shortened), in the LMCache log format the real replay log uses.
HIDDEN_FAILURES = (
    "[2026-12-01 22:18:42,420] LMCache WARNING: Failed to batched allocate 4 memory blocks of "
    "size 4096 because no enough memory is available (short by 2 blocks) "
    "(memory_management.py:1541:lmcache.v1.memory_management)\n"
    "[2026-12-01 22:18:42,421] LMCache ERROR: Failed to read prefetched object "
    "ObjectKey(chunk_hash=b'\\x01', model_name='m') from L1 storage: The specified key does "
    "not exist. (storage_manager.py:489:lmcache.v1.distributed.storage_manager)\n"
    "[2026-12-01 22:18:42,422] LMCache WARNING: L1Manager: finish read on non-existing key "
    "ObjectKey(chunk_hash=b'\\x01', model_name='m'), potential inconsistent data might be read "
    "(l1_manager.py:414:lmcache.v1.distributed.l1_manager)\n")


@case("lmcache_trace_replay_hidden_failures")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The real 0.5.7rc2 replay output (log and table together, 74 replayed, 0 failed) with
    # the three upstream lines added after record 7. Near miss: the real output as it is.
    text = (FIXTURES / "lmcache-0.5.7rc2" / "replay" / "replay_stdout.txt").read_text()
    if fire:
        i = text.index("[8/74]")
        i = text.rindex("\n", 0, i) + 1
        text = text[:i] + HIDDEN_FAILURES + text[i:]
    return packet(read("trace_replay", _write(tmp, "replay_stdout.txt", text)))


@case("lmcache_lookup_hash_rotation_gap")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The real rotation sequence 000000..000006. Near miss: no file missing.
    d = tmp / "lookup_hashes"
    d.mkdir()
    for f in sorted((UPSTREAM / "lookup_hashes").iterdir()):
        if not (fire and f.name.endswith("_000003.jsonl")):
            shutil.copy(f, d / f.name)
    return packet(read("lookup_hash", d))


def _lookup_dir(tmp: Path, names: dict[str, str]) -> Path:
    """Real 0.5.6 lookup-hash files (fixtures/lmcache-0.5.6/lookup_hashes) copied under the
    names a rotation or a restart would leave: {real counter suffix: name in the copy}."""
    d = tmp / "lookup_hashes"
    d.mkdir()
    real = {f.name[-12:-6]: f for f in (UPSTREAM / "lookup_hashes").iterdir()}
    for counter, name in names.items():
        shutil.copy(real[counter], d / name)
    return d


RUN1 = {f"{i:06d}": f.name for i, f in enumerate(sorted((UPSTREAM / "lookup_hashes").iterdir()))}


@case("lmcache_lookup_hash_files_rotated_away")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Built from upstream behaviour on the real files: with --lookup-hash-log-max-files 4,
    # _rotate_file unlinks the oldest beyond 4, leaving 000003..000006. Near miss: all seven.
    keep = {k: v for k, v in RUN1.items() if not fire or int(k) >= 3}
    return packet(read("lookup_hash", _lookup_dir(tmp, keep)))


@case("lmcache_lookup_hash_counter_reused")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # The restart seen live (reference notes, listing_after_run2): run 1's _024250_000005
    # kept, run 2 found 3 files and wrote _024308_000003 and _024309_000004 (real file
    # contents, upstream's names). Near miss: run 2 numbered 000006, 000007 (above run 1's).
    a, b = ("000003", "000004") if fire else ("000006", "000007")
    return packet(read("lookup_hash", _lookup_dir(tmp, {
        "000005": "lookup_hashes_20261128_024250_000005.jsonl",
        "000003": f"lookup_hashes_20261128_024308_{a}.jsonl",
        "000004": f"lookup_hashes_20261128_024309_{b}.jsonl"})))


LOGGER_START = ("LookupHashLoggingSubscriber started: output_dir=/data/lookup_hashes, "
                "rotation_interval=20s, rotation_max_size=1500, max_files=3, existing_files={}")


def test_lookup_hash_restart_from_the_log(tmp_path: Path) -> None:
    """Files whose names do not show the reuse (only run 2's are left: 000003, 000004) with
    the server log's start line: a start on 3 existing files and lost files (counters 0..2)
    is reported, partial (which came first cannot be told); a start on an empty directory is
    not. Counts over lost files say 'at least'."""
    files = {"000003": "lookup_hashes_20261128_024308_000003.jsonl",
             "000004": "lookup_hashes_20261128_024309_000004.jsonl"}
    lh = read("lookup_hash", _lookup_dir(tmp_path, files))
    assert lh.facts is not None and lh.facts.files_lost_at_least == 3
    assert lh.facts.counts_at_least and lh.facts.reused_counters == []
    for existing, fires in ((3, True), (0, False)):
        lg = log(tmp_path, LOGGER_START.format(existing), name=f"server{existing}.log")
        fs = {f.code: f for f in ig.judge_packet(packet(lh, lg)).diagnosis.findings}
        assert ("lmcache_lookup_hash_counter_reused" in fs) is fires
        if fires:
            assert fs["lmcache_lookup_hash_counter_reused"].level == "partial"
        assert fs["lmcache_lookup_hash_files_rotated_away"].message.count("at least")
        assert "max_files=3" in fs["lmcache_lookup_hash_files_rotated_away"].message


def _lookup_line(req: str, hashes: list[str]) -> str:
    return json.dumps({"timestamp": T0, "request_id": req, "model_name": "test-model",
                       "chunk_size": 16, "seq_len": 16 * len(hashes) + 1,
                       "dtypes": ["torch.float16"], "shapes": [[2, 2, 16, 32]],
                       "chunk_hashes": hashes}) + "\n"


@case("lmcache_lookup_hash_evidence_present")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A cold and a warm lookup. Near miss: the second prompt shares no chunk with the first.
    h = [f"0x{hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(4)]
    text = _lookup_line("req-0-cold", h[:2]) + _lookup_line("req-0-warm", h[:2] if fire else h[2:])
    return packet(read("lookup_hash", _write(tmp, "lookup_hashes_20261128_023922_000000.jsonl",
                                             text)))


# trace analytics (.lct): "trace_<x>" arrives as "lmcache_trace_<x>"


@case("lmcache_trace_no_object_keys")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # StorageManager records. Near miss: one of them carries an ObjectKey.
    keys = [] if fire else [w.object_key(0)]
    return packet(lct(tmp, w.record(w.STORAGE_PREFIX + "finish_write", {"keys": []}, 1.0, 1.0),
                      w.record(w.STORAGE_PREFIX + "finish_write", {"keys": keys}, 2.0, 2.0)))


def test_events_level_trace_is_not_keyless() -> None:
    """A real events-level trace (0.5.6 L2 run) keys its entries by chunk_hash_hex: no
    `lmcache_trace_no_object_keys` (it used to fire on every events trace)."""
    ev = read("trace", FIXTURES / "lmcache_live" / "mp_live_l2" / "packet" / "inputs" / "trace"
              / "events.lct")
    assert "lmcache_trace_no_object_keys" not in ig.judge_packet(packet(ev)).diagnosis.codes()


def test_trace_counts_are_measured() -> None:
    """The real 0.5.6 lookup-replay trace: no rewrite (its re-reserves were refused), and its
    exact unserved-prefetch count on a cleanly ending trace is supported, not inferred."""
    ev = read("trace", UPSTREAM / "lookup-replay-storage.lct")
    fs = {f.code: f for f in ig.judge_packet(packet(ev)).diagnosis.findings}
    assert "lmcache_trace_write_amplification" not in fs
    assert fs["lmcache_trace_unserved_prefetches"].level == "supported"


@case("lmcache_trace_malformed_object_keys")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the second ObjectKey wrapper holds a real key.
    bad = w.wrap("ObjectKey", "not a key") if fire else w.object_key(1)
    return packet(lct(tmp, w.record(w.STORAGE_PREFIX + "finish_write",
                                    {"keys": [w.object_key(0), bad]}, 1.0, 1.0)))


@case("lmcache_trace_key_stats_sampled")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # One key more than the exact limit. Near miss: exactly at the limit.
    data = many_keys_trace(BIG_TRACE + 1 if fire else BIG_TRACE)
    return packet(read("trace", _write(tmp, "big.lct", data)))


@case("lmcache_trace_reads_of_unwritten_keys")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A warm read. Near miss: the key's write is in the trace, before the read.
    return packet(lct(tmp, *([] if fire else stored(0, 1.0)), *read_back(0, 2.0)))


@case("lmcache_trace_leaked_read_contexts")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A read context entered, then more traffic. Near miss: the context was exited.
    bodies = [*stored(0, 1.0), rec("submit_prefetch_task", 2.0),
              rec("read_prefetched_results.__enter__", 2.01)]
    if not fire:
        bodies.append(rec("read_prefetched_results.__exit__", 2.02))
    return packet(lct(tmp, *bodies, rec("finish_read_prefetched", 2.03), *stored(1, 5.0)))


@case("lmcache_trace_exit_without_enter")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the matching __enter__ is in the trace.
    bodies = [*stored(0, 1.0), rec("submit_prefetch_task", 2.0)]
    if not fire:
        bodies.append(rec("read_prefetched_results.__enter__", 2.01))
    return packet(lct(tmp, *bodies, rec("read_prefetched_results.__exit__", 2.02),
                      rec("finish_read_prefetched", 2.03)))


@case("lmcache_trace_unfinished_writes")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A reserve_write, then other traffic for seconds. Near miss: the write finished.
    bodies = [rec("reserve_write", 1.0)] + ([] if fire else [rec("finish_write", 1.01)])
    return packet(lct(tmp, *bodies, *stored(1, 5.0), *read_back(1, 6.0)))


@case("lmcache_trace_finish_without_reserve")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Near miss: the reserve_write is in the trace.
    bodies = ([] if fire else [rec("reserve_write", 1.0)]) + [rec("finish_write", 1.01)]
    return packet(lct(tmp, *bodies, *read_back(0, 2.0)))


@case("lmcache_trace_write_amplification")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Two complete writes of key 0. Near miss: the second store of key 0 is only re-reserved
    # (upstream's L1Manager.reserve_write refuses a resident key: KEY_NOT_WRITABLE), so
    # nothing is rewritten; key 1 is written instead.
    again = stored(0, 2.0) if fire else [rec("reserve_write", 2.0), *stored(1, 2.1)]
    return packet(lct(tmp, *stored(0, 1.0), *again, *read_back(0, 3.0)))


@case("lmcache_trace_unserved_prefetches")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A written key is looked up (prefetched). Near miss: the prefetched key is then read.
    tail = [rec("submit_prefetch_task", 2.0)] if fire else read_back(0, 2.0)
    return packet(lct(tmp, *stored(0, 1.0), *tail, *stored(1, 5.0), *read_back(1, 6.0)))


@case("lmcache_mp_first_chunk_never_stored")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Real 0.5.7rc2 storage traces (tests/fixtures/lmcache-0.5.7rc2): run A, the server's
    # default --null-block-id 0 (lmcache_driven_transfer.py::all_null_chunk_masks skips chunk
    # 0 of the bench's sequential allocation); near miss: run A2, --null-block-id -1.
    run = "mp-l1-storage-trace" if fire else "mp-lmcache-driven"
    return packet(read("trace", FIXTURES / "lmcache-0.5.7rc2" / run / "storage.lct"))


def test_first_chunk_gap_read_back_stays_quiet(tmp_path: Path) -> None:
    """Near miss by construction: lookups stored without their first key whose first key is
    then read back are not the null-block miss (the prefix was served after all)."""
    gap = [rec("submit_prefetch_task", 1.0, 0, 4), rec("reserve_write", 1.1, 1, 3),
           rec("finish_write", 1.2, 1, 3)]
    fired = ig.judge_packet(packet(lct(tmp_path, *gap, name="a.lct"))).diagnosis.codes()
    assert "lmcache_mp_first_chunk_never_stored" in fired
    served = [*gap, rec("submit_prefetch_task", 2.0, 0, 4),
              rec("finish_read_prefetched", 2.1, 0, 4)]
    quiet = ig.judge_packet(packet(lct(tmp_path, *served, name="b.lct"))).diagnosis.codes()
    assert "lmcache_mp_first_chunk_never_stored" not in quiet


@case("lmcache_trace_events_restarts")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Events level. Near miss: the server ran once (one incarnation).
    bodies = [lifecycle("start", 0.0), batch(1, "store", [1, 2], 1.0), lifecycle("stop", 2.0)]
    if fire:
        bodies += [lifecycle("start", 3.0, incarnation=2),
                   batch(1, "store", [3], 4.0, incarnation=2)]
    return packet(lct(tmp, *bodies, head=events_head()))


@case("lmcache_trace_events_delete_without_store")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Events level: a delete of key 7. Near miss: key 7's store is in the trace.
    stores = [1, 2] if fire else [1, 2, 7]
    return packet(lct(tmp, lifecycle("start", 0.0), batch(1, "store", stores, 1.0),
                      batch(2, "delete", [7], 2.0), head=events_head()))


# any evidence


@case("lmcache_evidence_malformed")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # A file given as a .lct. Near miss: it is one (a header-only trace).
    data = b"not an LMCache trace\n" if fire else w.trace()
    return packet(mp(tmp), read("trace", _write(tmp, "given.lct", data)))


# the engine itself


FAILED_START = Path(__file__).parent / "fixtures" / "engine_start_failure" / "vllm_importerror.log"


@case("lmcache_engine_failed_to_start")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # vLLM 0.33.0's startup-failure text (see the fixture's README). Near miss: the same log
    # with vLLM's serving line after it (the engine came up after all).
    text = FAILED_START.read_text()
    if not fire:
        text += ("(APIServer pid=4071) INFO 12-02 09:15:10 [entry.py:139] Starting vLLM server "
                 "on http://127.0.0.1:8000\n")
    return packet(read("log", _write(tmp, "vllm.log", text)))


@case("lmcache_engine_unhealthy")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # vLLM's /health answering 503 (EngineDeadError). Near miss: 200 with its empty body.
    return packet(mp(tmp), capture(tmp, "engine", {"health": (503 if fire else 200, "")},
                                   kind="engine_http"))


# why hits are zero, which hit counter to trust (findings/_rules_hits.py)


@case("lmcache_mp_unreachable")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # lmcache 0.5.6 integration/vllm/vllm_multi_process_adapter.py,
    # LMCacheMPSchedulerAdapter._mark_lookup_timed_out. Near miss: the server answered (the
    # adapter's own "became healthy" line, no timeout).
    line = ("LOOKUP to tcp://127.0.0.1:5555 timed out after 30.0s. Marking server as "
            "unhealthy." if fire else "LMCache MP server became healthy")
    return packet(mp(tmp), log(tmp, line, name="vllm.log"))


@case("lmcache_mp_shm_fallback")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # lmcache 0.5.6 v1/multiprocess/server.py, run_cache_server. Near miss: only the check's
    # own info line (the capacity was enough).
    lines = ["Checking if shm capacity is larger than L1 request"]
    if fire:
        lines.append("Insufficient /dev/shm capacity: need 21474836480 bytes, have 67108864 "
                     "bytes. Disabling SHM, falling back to pickle.")
    return packet(mp(tmp), log(tmp, *lines))


@case("lmcache_prefix_already_local")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Embedded counters (lmcache 0.5.6 observability.py: num_lookup_hits from
    # on_lookup_finished, num_hit_tokens from on_retrieve_finished). Near miss: the lookups'
    # hits were retrieved.
    rows = {"lmcache:num_lookup_tokens": ("counter", 512),
            "lmcache:num_lookup_hits": ("counter", 256),
            "lmcache:num_requested_tokens": ("counter", 512),
            "lmcache:num_hit_tokens": ("counter", 0 if fire else 256),
            "lmcache:num_vllm_hit_tokens": ("counter", 256)}
    return packet(launch(tmp, V1_LAUNCH), scrape(tmp, rows, "engine_metrics"))


@case("lmcache_embedded_hits_reconciled")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # Embedded LMCache and vLLM both count loaded tokens, and agree. Near miss: no vLLM
    # external-hit counter in the scrape (nothing to reconcile).
    rows: dict[str, Any] = {"lmcache:num_lookup_hits": ("counter", 256),
                            "lmcache:num_requested_tokens": ("counter", 512),
                            "lmcache:num_hit_tokens": ("counter", 128)}
    if fire:
        rows.update({"vllm:external_prefix_cache_queries_total": 512,
                     "vllm:external_prefix_cache_hits_total": 128})
    return packet(launch(tmp, V1_LAUNCH), scrape(tmp, rows, "engine_metrics"))


@case("lmcache_hit_counters_disagree")
def _(tmp: Path, fire: bool) -> ig.Packet:
    # vLLM says the connector loaded 128 tokens, embedded LMCache says it retrieved none.
    # Near miss: both say 128.
    rows = {"lmcache:num_lookup_hits": ("counter", 256),
            "lmcache:num_requested_tokens": ("counter", 512),
            "lmcache:num_hit_tokens": ("counter", 0 if fire else 128),
            "vllm:external_prefix_cache_queries_total": 512,
            "vllm:external_prefix_cache_hits_total": 128}
    return packet(launch(tmp, V1_LAUNCH), scrape(tmp, rows, "engine_metrics"))


# Codes no packet can produce (none today): code -> why.
UNREACHABLE: dict[str, str] = {}


# -- the tests ----------------------------------------------------------------------------------


def test_every_code_has_a_case() -> None:
    assert not set(UNREACHABLE) & set(CASES)
    assert set(CASES) | set(UNREACHABLE) == set(FINDING_CODES), {
        "without a case": sorted(set(FINDING_CODES) - set(CASES) - set(UNREACHABLE)),
        "not a code": sorted(set(CASES) | set(UNREACHABLE) - set(FINDING_CODES))}
    assert set(CASES) == set(FINDING_CODES) - set(UNREACHABLE)


@pytest.mark.parametrize("code", sorted(CASES))
def test_fires(code: str, tmp_path: Path) -> None:
    verdict = ig.judge_packet(CASES[code][0](tmp_path))
    assert code in verdict.diagnosis.codes(), verdict.diagnosis.codes()
    for f in verdict.diagnosis.findings:
        if f.code == code:
            assert f.severity == FINDING_CODES[code].severity
            assert f.level in LEVELS, f.level


@pytest.mark.parametrize("code", sorted(CASES))
def test_stays_quiet(code: str, tmp_path: Path) -> None:
    verdict = ig.judge_packet(CASES[code][1](tmp_path))
    assert code not in verdict.diagnosis.codes(), [
        f.message for f in verdict.diagnosis.findings if f.code == code]
