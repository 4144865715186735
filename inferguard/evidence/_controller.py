"""Controller evidence: the `lmcache_controller` app and an engine's internal API server.

Both are FastAPI apps built from LMCache's internal API registry (0.5.6): the controller
registers the `common` and `controller` categories (so it does serve `/metrics`: 13
`lmcache:cache_controller_*{role="controller"}` gauges), an engine's internal API server adds
the `vllm` category. The route tables below are data, as in `lmcache_http`: only `collect`
GETs are requested; every state-changing route (the controller's orchestration POSTs, the
internal API's store/clear/freeze/bypass/backends writes, `/metrics/reset`, `/run_script`)
and `/env` (the whole process environment) are recorded as skipped and never called.
`/conf` is only asked with `?names=` and an allow-list of keys (the full config may hold
credentials); JSON bodies keep no secret-looking value.

The facts say which workers the controller lists and how fresh their heartbeats are (against
the answer's own `Date`, the controller's clock), the full-sync gauges, key counts, periodic
thread health, and, from an internal API server, the P2P/controller settings of the engine.
A controller answer is control-plane state, never proof of cache performance.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from inferguard.evidence._capture import (
    BODY_LIMIT,
    Answer,
    as_int,
    as_num,
    as_str,
    capture_names,
    json_at,
    parse_json,
    read_capped,
    read_dir,
)
from inferguard.evidence._http import (
    RouteResult,
    RouteSpec,
    SkippedRoute,
    answer_problems,
    error_result,
    kept_result,
    sum_redactions,
    thread_facts,
    unknown_routes,
)
from inferguard.evidence._http import skipped_routes as http_skipped_routes
from inferguard.evidence._metrics import read_metrics_bytes
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, status_from
from inferguard.evidence._redact import Tally, redact

if TYPE_CHECKING:
    pass

Server = Literal["controller", "internal_api"]
SERVERS: tuple[str, ...] = ("controller", "internal_api")

# Config keys asked for with GET /conf?names=...: what the findings need (controller and P2P
# wiring, heartbeat interval), nothing that can carry a credential (remote_url, extra_config).
CONF_NAMES: tuple[str, ...] = (
    "chunk_size", "local_cpu", "max_local_cpu_size", "enable_blending", "enable_controller",
    "lmcache_instance_id", "controller_pull_url", "controller_reply_url", "lmcache_worker_ports",
    "lmcache_worker_ids", "lmcache_worker_heartbeat_delay_time",
    "lmcache_worker_heartbeat_time", "enable_p2p", "p2p_host", "p2p_init_ports",
    "p2p_lookup_ports", "transfer_channel", "enable_pd", "pd_role",
    "internal_api_server_enabled", "internal_api_server_port_start", "run_script_api_enabled",
    "enable_kv_events")
CONF_PATH = "/conf?names=" + ",".join(CONF_NAMES)

_COMMON: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/openapi.json", "read", True, "route table: detects version drift"),
    RouteSpec("GET", "/metrics", "read", True, "parsed into the facts; raw bytes kept"),
    RouteSpec("GET", "/periodic-threads", "read", True),
    RouteSpec("GET", "/periodic-threads-health", "read", True),
    RouteSpec("GET", "/periodic-threads/{thread_name}", "read", False,
              "covered by /periodic-threads"),
    RouteSpec("GET", "/loglevel", "read", True, "only without parameters (with them it sets)"),
    RouteSpec("GET", "/threads", "read", True, "only as ?name=<thread name> when one is given"),
    RouteSpec("GET", "/controller/workers", "read", True,
              "503 on an engine's internal API server (no controller manager there)",
              expected=(200, 503)),
    RouteSpec("GET", "/controller/key-stats", "read", True, "503 on an engine's server",
              expected=(200, 503)),
    RouteSpec("GET", "/env", "sensitive", False,
              "returns the whole process environment; never called"),
    RouteSpec("POST", "/metrics/reset", "mutating", False, "resets metrics"),
    RouteSpec("POST", "/run_script", "dangerous", False, "runs uploaded Python in the process"),
)

CONTROLLER_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/", "read", True, "HTML dashboard: identifies the controller"),
    *_COMMON,
    RouteSpec("POST", "/query_instance", "mutating", False,
              "orchestration request to the workers"),
    RouteSpec("POST", "/lookup", "mutating", False, "orchestration request to the workers"),
    RouteSpec("POST", "/clear", "destructive", False, "clears workers' KV caches"),
    RouteSpec("POST", "/pin", "mutating", False, "pins KV in the workers"),
    RouteSpec("POST", "/compress", "mutating", False, "compresses KV in the workers"),
    RouteSpec("POST", "/decompress", "mutating", False, "decompresses KV in the workers"),
    RouteSpec("POST", "/move", "mutating", False, "moves KV between workers"),
    RouteSpec("POST", "/health", "mutating", False, "sends a health message to the workers"),
    RouteSpec("POST", "/check_finish", "mutating", False, "orchestration event query"),
    RouteSpec("POST", "/query_worker_info", "mutating", False,
              "orchestration request (read-like, still not called)"),
)

INTERNAL_API_ROUTES: tuple[RouteSpec, ...] = (
    *_COMMON,
    RouteSpec("GET", "/version", "read", True),
    RouteSpec("GET", "/lmc_version", "read", True),
    RouteSpec("GET", "/commit_id", "read", True),
    RouteSpec("GET", "/conf", "sensitive", True,
              "only as ?names=<allow-listed keys>: the full config may hold credentials"),
    RouteSpec("GET", "/meta", "read", True),
    RouteSpec("GET", "/inference_info", "read", True, "secret-looking values redacted"),
    RouteSpec("GET", "/inference_version", "read", True, "500 without vLLM",
              expected=(200, 500)),
    RouteSpec("GET", "/lookup/info", "read", True),
    RouteSpec("GET", "/hot_cache/status", "read", True),
    RouteSpec("GET", "/bypass/list", "read", True),
    RouteSpec("GET", "/freeze/status", "read", True),
    RouteSpec("GET", "/chunk_statistics/status", "read", True, "503 when not enabled",
              expected=(200, 503)),
    RouteSpec("GET", "/cache/kvcache/info", "read", True),
    RouteSpec("GET", "/backends", "read", True),
    RouteSpec("GET", "/cache/kvcache/check", "sensitive", False,
              "checksums GPU KV memory; needs slot parameters"),
    RouteSpec("POST", "/conf", "mutating", False, "sets config values at runtime"),
    RouteSpec("POST", "/backends", "mutating", False, "creates a storage backend"),
    RouteSpec("POST", "/backends/{backend_name}/recreate", "mutating", False,
              "recreates a storage backend"),
    RouteSpec("DELETE", "/backends/{backend_name}", "destructive", False,
              "removes a storage backend"),
    RouteSpec("POST", "/cache/store", "mutating", False, "stores KV"),
    RouteSpec("POST", "/cache/retrieve", "mutating", False, "retrieves KV into GPU memory"),
    RouteSpec("POST", "/cache/kvcache/record_slot", "mutating", False, "records slots"),
    RouteSpec("DELETE", "/cache/clear", "destructive", False, "clears the cache"),
    RouteSpec("POST", "/cache/load-fs-chunks", "mutating", False, "loads chunks from disk"),
    RouteSpec("POST", "/chunk_statistics/start", "mutating", False, "starts statistics"),
    RouteSpec("POST", "/chunk_statistics/stop", "mutating", False, "stops statistics"),
    RouteSpec("POST", "/chunk_statistics/reset", "mutating", False, "resets statistics"),
    RouteSpec("POST", "/lookup/close", "mutating", False, "closes the lookup client"),
    RouteSpec("POST", "/lookup/create", "mutating", False, "creates a lookup client"),
    RouteSpec("POST", "/lookup/recreate", "mutating", False, "recreates the lookup client"),
    RouteSpec("PUT", "/bypass/add", "mutating", False, "adds a bypass rule"),
    RouteSpec("PUT", "/bypass/remove", "mutating", False, "removes a bypass rule"),
    RouteSpec("PUT", "/freeze/enable", "mutating", False, "freezes the cache"),
    RouteSpec("PUT", "/freeze/disable", "mutating", False, "unfreezes the cache"),
    RouteSpec("PUT", "/hot_cache/enable", "mutating", False, "enables the hot cache"),
    RouteSpec("PUT", "/hot_cache/disable", "mutating", False, "disables the hot cache"),
)

ROUTE_TABLES: dict[str, tuple[RouteSpec, ...]] = {
    "controller": CONTROLLER_ROUTES, "internal_api": INTERNAL_API_ROUTES}

# Thresholds of the controller's own dashboard (controller_app.js): a worker whose last
# heartbeat is under 60 s old is "Active", under 300 s "Warning", else "Inactive".
STALE_HEARTBEAT_S = 60.0
INACTIVE_HEARTBEAT_S = 300.0
# `/controller/workers`, `registered_workers_count` and the full-sync gauges read the
# registry through a TTL cache (0.5.6 `TTLListCache`, 30 s by default): a listing, and the
# heartbeat times in it, can be up to this old (seen live: tests/fixtures/.../controller).
WORKER_LIST_CACHE_S = 30.0
GAUGE_PREFIX = "lmcache:cache_controller_"




class ControllerWorker(msgspec.Struct, frozen=True, omit_defaults=True):
    """One worker as `/controller/workers` lists it, with its heartbeat age at collection
    (against the answer's `Date`; the listing itself may be up to `WORKER_LIST_CACHE_S` old).

    `heartbeat_seen` is False when the last heartbeat time is still the registration time:
    heartbeats are off unless `lmcache_worker_heartbeat_time` is set on the worker."""

    instance_id: str
    worker_id: int | None = None
    ip: str | None = None
    port: int | None = None
    peer_init_url: str | None = None
    registration_time: float | None = None
    last_heartbeat_time: float | None = None
    key_count: int | None = None
    heartbeat_age_s: float | None = None
    heartbeat_seen: bool | None = None


class ControllerFacts(msgspec.Struct, frozen=True, tag="controller", omit_defaults=True):
    """What a controller or an engine's internal API server answered. None: not answered."""

    server: str
    base_url: str | None = None
    routes: list[RouteResult] = msgspec.field(default_factory=list)
    skipped: list[SkippedRoute] = msgspec.field(default_factory=list)
    reachable: bool | None = None
    collected_at: float | None = None
    app: str | None = None
    version: str | None = None
    lmcache_version: str | None = None
    commit: str | None = None
    workers_route_status: int | None = None
    workers: list[ControllerWorker] = msgspec.field(default_factory=list)
    workers_listed: int | None = None
    total_key_count: int | None = None
    total_instance_count: int | None = None
    total_worker_count: int | None = None
    gauges: dict[str, float] = msgspec.field(default_factory=dict)
    metrics_families: int | None = None
    lmcache_families: int | None = None
    periodic_threads_healthy: bool | None = None
    unhealthy_threads: list[str] = msgspec.field(default_factory=list)
    periodic_threads: list[str] = msgspec.field(default_factory=list)
    thread_matches: dict[str, int] = msgspec.field(default_factory=dict)
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    instance_id: str | None = None
    route_table_paths: int | None = None
    unknown_routes: list[str] = msgspec.field(default_factory=list)
    # Everything redacted from the answers (names and counts; `_redact`), summed over routes.
    redactions: dict[str, int] = msgspec.field(default_factory=dict)

    def gauge(self, short: str) -> float | None:
        """A controller gauge by its short name (`registered_workers_count`)."""
        return self.gauges.get(GAUGE_PREFIX + short)


def skipped_routes(server: str) -> list[SkippedRoute]:
    """Every state-changing or environment-dumping route, with why it is never called."""
    return http_skipped_routes(ROUTE_TABLES[server])


def request_paths(server: str, thread_names: Iterable[str] = ()) -> list[str]:
    """The exact GETs collection makes, in order (the allow-list made concrete)."""
    out = []
    for r in ROUTE_TABLES[server]:
        if not r.collect or r.method != "GET" or r.path == "/threads":
            continue
        out.append(CONF_PATH if r.path == "/conf" else r.path)
    return out + [f"/threads?name={n}" for n in thread_names]


def filter_conf(conf: Any, tally: Tally | None = None) -> dict[str, Any]:
    """Only the allow-listed config keys (a full `/conf` answer may hold credentials)."""
    if not isinstance(conf, dict):
        return {}
    kept = {k: conf[k] for k in CONF_NAMES if k in conf}
    return dict(redact(kept, tally=tally))


def filtered_capture(name: str, raw: bytes) -> tuple[str, bytes] | None:
    """For a packet copying a capture directory: the name and bytes to write instead of a
    raw `GET_conf.body` / `GET_inference_info.body` / `GET_meta.body`; None to copy as is."""
    import json

    m = re.match(r"^GET_(conf|inference_info|meta)\.body$", name)
    if m is None:
        return None
    try:
        doc = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        doc = None
    kept = filter_conf(doc) if m.group(1) == "conf" else redact(doc)
    return f"{name}.filtered.json", json.dumps(kept, sort_keys=True).encode()


def _num(v: Any) -> float | None:
    return as_num(v, finite=True)


def _worker(w: Any, now: float | None) -> ControllerWorker | None:
    if not isinstance(w, dict) or not isinstance(w.get("instance_id"), str):
        return None
    reg, last = _num(w.get("registration_time")), _num(w.get("last_heartbeat_time"))
    return ControllerWorker(
        instance_id=w["instance_id"], worker_id=as_int(w.get("worker_id")), ip=as_str(w.get("ip")),
        port=as_int(w.get("port")), peer_init_url=as_str(w.get("peer_init_url")),
        registration_time=reg, last_heartbeat_time=last, key_count=as_int(w.get("key_count")),
        # The Date header has whole seconds: never report a negative age.
        heartbeat_age_s=round(max(0.0, now - last), 3) if now is not None and last is not None
        else None,
        heartbeat_seen=(last > reg) if last is not None and reg is not None else None)


def _metrics(text: str | None) -> tuple[dict[str, float], int | None, int | None]:
    """(controller gauges, families, lmcache:* families) of a /metrics answer."""
    if text is None:
        return {}, None, None
    import numpy as np  # on first use: a packet without a controller never loads it

    from inferguard.prom._model import exact_sum, parse_text

    exp = parse_text(text.encode(), path="<metrics>")
    gauges: dict[str, float] = {}
    lmc = 0
    for fam in exp.families:
        lmc += fam.name.startswith("lmcache:")
        if fam.name.startswith(GAUGE_PREFIX):
            vals = [s.value for s in fam.samples if math.isfinite(s.value)
                    and not s.name.endswith("_created")]
            gauges[fam.name] = exact_sum(np.array(vals, np.float64))
    return dict(sorted(gauges.items())), len(exp.families), lmc


def facts_from_routes(server: str, base_url: str | None, results: Iterable[RouteResult],
                      *, collected_at: float | None = None, metrics_text: str | None = None
                      ) -> tuple[ControllerFacts, list[Problem]]:
    """Turn collected answers into facts; odd answers become problems, never exceptions."""
    results = list(results)
    problems = [Problem(f"{r.method} {r.path}: {r.error}", where=r.path)
                for r in results if r.error is not None]
    problems += answer_problems(results, ROUTE_TABLES[server])
    by_path: dict[str, RouteResult] = {}
    for r in results:
        by_path.setdefault(r.path.split("?", 1)[0], r)

    def body(path: str) -> Any:
        r = by_path.get(path)
        return r.json if r is not None and r.status_code == 200 else None

    f: dict[str, Any] = {"server": server, "base_url": base_url, "routes": results,
                         "skipped": skipped_routes(server), "collected_at": collected_at}
    f["reachable"] = any(r.status_code is not None for r in results) if results else None
    f["redactions"] = sum_redactions(results)
    oa = json_at(body("/openapi.json"), "paths")
    if isinstance(oa, dict):
        f["route_table_paths"] = len(oa)
        f["app"] = ("controller" if "/query_worker_info" in oa else
                    "internal_api" if "/lmc_version" in oa or "/conf" in oa else
                    "mp_server" if "/healthcheck" in oa else None)
        f["unknown_routes"] = unknown_routes(
            oa, {(r.method, r.path) for r in ROUTE_TABLES[server]} | {("GET", "/")})
    root = by_path.get("/")
    if f.get("app") is None and root is not None and "Controller" in (root.text or ""):
        f["app"] = "controller"
    wr = by_path.get("/controller/workers")
    if wr is not None:
        f["workers_route_status"] = wr.status_code
    workers = body("/controller/workers")
    if isinstance(workers, dict) and isinstance(workers.get("workers"), list):
        ws = [_worker(w, collected_at) for w in workers["workers"]]
        f["workers"] = [w for w in ws if w is not None]
        f["workers_listed"] = as_int(workers.get("total_count"))
        if f["workers_listed"] is None:
            f["workers_listed"] = len(f["workers"])
    ks = body("/controller/key-stats")
    for key in ("total_key_count", "total_instance_count", "total_worker_count"):
        f[key] = as_int(json_at(ks, key))
    mr = by_path.get("/metrics")
    if mr is not None and mr.status_code == 200:
        f["gauges"], f["metrics_families"], f["lmcache_families"] = _metrics(metrics_text)
    f |= thread_facts(body("/periodic-threads-health"), body("/periodic-threads"))
    f["thread_matches"] = {r.path.split("=", 1)[1]: (r.text or "").count("Thread: <")
                           for r in results if r.path.startswith("/threads?name=")
                           and r.status_code == 200}
    conf = body("/conf")
    if isinstance(conf, dict):
        f["config"] = filter_conf(conf)
        f["instance_id"] = as_str(conf.get("lmcache_instance_id"))
    ver, lv, cid = body("/version"), body("/lmc_version"), body("/commit_id")
    f["version"] = as_str(ver)
    f["lmcache_version"] = as_str(lv) or (ver.split("-", 1)[0] if isinstance(ver, str) else None)
    f["commit"] = as_str(cid)
    return msgspec.convert(f, ControllerFacts), problems


def route_result(a: Answer) -> RouteResult:
    """One answer as kept: JSON parsed and redacted; /metrics without its body (the raw
    scrape is kept as a packet input instead)."""
    if a.error is not None:
        return error_result(a)
    parsed, text, truncated = parse_json(a.raw)
    if a.path == "/metrics":
        return RouteResult("GET", a.path, a.url, a.status, a.content_type, truncated=truncated,
                           elapsed_ms=a.elapsed_ms)
    tally = Tally()
    if a.path.startswith("/conf"):
        parsed = filter_conf(parsed, tally)
        text = ""
    elif parsed is not None:
        parsed = redact(parsed, tally=tally)
    return kept_result(a, parsed, text, truncated, tally)


def _capture_name(path: str) -> str:
    return path.split("?", 1)[0].strip("/").replace("/", "_") or "root"


def detect_server(names: Iterable[str]) -> str:
    """Which app a capture directory holds: an internal API server answers engine routes."""
    engine = {_capture_name(r.path) for r in INTERNAL_API_ROUTES if r.collect} - {
        _capture_name(r.path) for r in CONTROLLER_ROUTES}
    return "internal_api" if set(names) & engine else "controller"


def accepted_captures(server: str) -> dict[str, str]:
    """{capture name: route} of the GETs live collection makes on this server (the
    allow-list applies to captures: `/cache/kvcache/check`, `/env` are never read)."""
    return {_capture_name(r.path): r.path for r in ROUTE_TABLES[server]
            if r.method == "GET" and r.collect}


def read_controller_capture_dir(path: str | os.PathLike[str], server: str | None = None
                                ) -> Evidence:
    """A directory of captured answers (GET_<route>.body / .headers) as controller evidence.

    The heartbeat ages are taken against the `date:` header of the workers answer (the
    controller's own clock), else of any answer."""
    from pathlib import Path

    d = Path(path)
    found = capture_names(d)
    if isinstance(found, Problem):
        return Evidence(kind="controller", source=EvidenceSource(path=str(d)),
                        status="malformed", problems=[found])
    srv = server or detect_server(found)
    routes = accepted_captures(srv)
    answers, problems, digest = read_dir(d, found, routes)
    # /conf is only ever asked with its fixed ?names= list.
    answers = [a._replace(path=CONF_PATH) if a.path == "/conf" else a for a in answers]
    results = [route_result(a) for a in answers]
    dates = {a.path: a.date for a in answers if a.date is not None}
    metrics_text = next((a.raw.decode("utf-8", "replace") for a in answers
                         if a.path == "/metrics"), None)
    when = dates.get("/controller/workers") or (max(dates.values()) if dates else None)
    facts, more = facts_from_routes(srv, None, results, collected_at=when,
                                    metrics_text=metrics_text)
    problems += more
    if when is None and facts.workers:
        problems.append(Problem("no date header: heartbeat ages cannot be computed",
                                where="GET_controller_workers.headers"))
    src = EvidenceSource.of_bytes(digest, path=str(d))
    return Evidence(kind="controller", source=src,
                    status=status_from(problems, readable=bool(results)), facts=facts,
                    problems=problems)


def internal_api_scrape(path: str | os.PathLike[str]) -> list[Evidence]:
    """An internal API server's captured `/metrics` as `lmcache_metrics` evidence of its own
    (the engine's in-process `lmcache:*` registry), as a live collection makes it: none for a
    controller's directory (its gauges are its controller facts) or without the answer."""
    from pathlib import Path

    d = Path(path)
    body = d / "GET_metrics.body"
    found = capture_names(d)
    if isinstance(found, Problem) or detect_server(found) != "internal_api" \
            or "metrics" not in found:
        return []
    data, _ = read_capped(body, BODY_LIMIT, follow=False)
    if data is None or len(data) > BODY_LIMIT:  # as live: an over-cap scrape is not kept
        return []
    return [read_metrics_bytes(data, EvidenceSource.of_bytes(data, path=str(body)),
                               "lmcache_metrics")]
