"""HTTP evidence from an LMCache MP server: the route catalog, read-only collection, facts.

The catalog below is the 0.5.6 route table (`openapi.json`) as data: which routes are read
and collected, and which change state and are only ever recorded as skipped. Collection
calls nothing outside the allow-list. `/env` returns the whole process environment and is
never stored raw: only LMCache-relevant keys are kept, secret-looking values redacted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from inferguard.evidence._capture import (
    Answer,
    as_bool,
    as_int,
    capture_names,
    json_at,
    parse_json,
    read_dir,
)
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, status_from
from inferguard.evidence._redact import Tally, filter_env, redact, redact_text

if TYPE_CHECKING:
    pass

Access = Literal["read", "sensitive", "mutating", "destructive", "dangerous"]


class RouteSpec(msgspec.Struct, frozen=True):
    """One route of the MP server's HTTP API and what InferGuard does with it."""

    method: str
    path: str
    access: Access
    collect: bool
    note: str = ""
    query: tuple[str, ...] = ()  # query parameters the route's handler declares
    # Statuses upstream answers when all is as it should be (anything else is a problem).
    expected: tuple[int, ...] = (200,)


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/", "read", True),
    RouteSpec("GET", "/healthcheck", "read", True),
    RouteSpec("GET", "/status", "read", True),
    RouteSpec("GET", "/version", "read", True),
    RouteSpec("GET", "/lmc_version", "read", True),
    RouteSpec("GET", "/commit_id", "read", True),
    RouteSpec("GET", "/config", "read", True),
    RouteSpec("GET", "/config/adapters", "read", True),
    RouteSpec("GET", "/periodic-threads", "read", True),
    RouteSpec("GET", "/periodic-threads-health", "read", True),
    RouteSpec("GET", "/quota", "read", True),
    RouteSpec("GET", "/reconfigure/dax/l1/status", "read", True,
              "409 when L1 is not Device-DAX backed", expected=(200, 409)),
    RouteSpec("GET", "/openapi.json", "read", True, "route table: detects version drift"),
    RouteSpec("GET", "/loglevel", "read", True, "only without parameters (with them it sets)",
              ("logger_name", "level")),
    RouteSpec("GET", "/threads", "read", True, "only as ?name=<thread name> when one is given",
              ("name", "thread_id")),
    RouteSpec("GET", "/env", "sensitive", True, "filtered to LMCache keys, secrets redacted"),
    RouteSpec("GET", "/metrics", "read", False, "collected as metrics evidence, not here"),
    RouteSpec("GET", "/cache/objects", "read", False, "lists raw cache keys; not collected",
              ("tier", "adapter", "model_name", "page_size", "page_token")),
    RouteSpec("GET", "/cache/prefetches/{request_id}", "read", False, "needs a request id"),
    RouteSpec("GET", "/periodic-threads/{thread_name}", "read", False,
              "covered by /periodic-threads"),
    RouteSpec("GET", "/quota/{cache_salt}", "read", False, "covered by /quota"),
    RouteSpec("GET", "/reconfigure/{backend}/l2/status", "read", False, "needs a backend name"),
    RouteSpec("POST", "/cache/clear", "destructive", False, "clears the L1 cache"),
    RouteSpec("DELETE", "/cache/objects", "destructive", False, "deletes cached objects"),
    RouteSpec("POST", "/cache/prefetches", "mutating", False, "starts an L2->L1 prefetch"),
    RouteSpec("POST", "/cache/checksums", "mutating", False, "reads GPU KV memory"),
    RouteSpec("POST", "/metrics/reset", "mutating", False, "resets metrics"),
    RouteSpec("POST", "/run_script", "dangerous", False, "runs uploaded Python in the server"),
    RouteSpec("PUT", "/quota/{cache_salt}", "mutating", False, "sets a quota"),
    RouteSpec("DELETE", "/quota/{cache_salt}", "destructive", False, "evicts a salt's data"),
    RouteSpec("POST", "/reconfigure/dax/l1/add", "mutating", False, "reconfigures L1"),
    RouteSpec("POST", "/reconfigure/dax/l1/remove", "mutating", False, "reconfigures L1"),
    RouteSpec("POST", "/reconfigure/{backend}/l2/{operation}", "mutating", False,
              "adds or removes L2 adapters"),
)

# /status keys only a CacheBlend server (--engine-type blend) adds (its BlendModule).
CB_STATUS_KEYS = ("registered_cb_rope_instances", "cb_rope_meta", "active_cb_lookups")


class RouteResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """One GET as collected: status, body (JSON parsed when it is JSON), or the error."""

    method: str
    path: str
    url: str | None = None
    status_code: int | None = None
    content_type: str | None = None
    json: Any = None
    text: str | None = None
    truncated: bool = False
    error: str | None = None
    elapsed_ms: float | None = None
    # What was redacted from this answer: rule / key names and counts, never values.
    redacted: dict[str, int] = msgspec.field(default_factory=dict)


class SkippedRoute(msgspec.Struct, frozen=True):
    method: str
    path: str
    access: str
    reason: str


class HttpFacts(msgspec.Struct, frozen=True, tag="http", omit_defaults=True):
    """What the MP server's HTTP answers say. None means "not answered / not present"."""

    base_url: str | None = None
    routes: list[RouteResult] = msgspec.field(default_factory=list)
    skipped: list[SkippedRoute] = msgspec.field(default_factory=list)
    reachable: bool | None = None
    healthy: bool | None = None
    health_reason: str | None = None
    version: str | None = None
    lmcache_version: str | None = None
    commit: str | None = None
    engine_type: str | None = None
    chunk_size: int | None = None
    hash_algorithm: str | None = None
    active_sessions: int | None = None
    l1_capacity_bytes: int | None = None
    l1_used_bytes: int | None = None
    l1_usage_ratio: float | None = None
    l1_object_count: int | None = None
    l2_adapters: list[str] = msgspec.field(default_factory=list)
    num_l2_adapters: int | None = None
    p2p_enabled: bool | None = None
    kv_events_enabled: bool | None = None
    periodic_threads_healthy: bool | None = None
    unhealthy_threads: list[str] = msgspec.field(default_factory=list)
    periodic_threads: list[str] = msgspec.field(default_factory=list)
    thread_matches: dict[str, int] = msgspec.field(default_factory=dict)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    env_dropped_keys: int = 0
    route_table_paths: int | None = None
    unknown_routes: list[str] = msgspec.field(default_factory=list)
    cb_status_keys: list[str] = msgspec.field(default_factory=list)
    active_cb_lookups: int | None = None
    # `/config` -> observability.metrics_sample_rate: the rate the running server samples its
    # lifecycle and reuse histograms at (0.5.6 `ObservabilityConfig`, (0, 1], default 0.01).
    metrics_sample_rate: float | None = None
    # `/config` mp.null_block_id: the engine block id the server treats as absent KV.
    null_block_id: int | None = None
    # `/config` observability.token_trace_enabled (0.5.7: --enable-token-trace).
    token_trace_enabled: bool | None = None
    # The prefetch in-flight limit and the key it was found under: /status
    # storage_manager.prefetch_controller `max_in_flight` (0.5.6, a count) or
    # `inflight_watermark` (0.5.7, a fraction).
    prefetch_inflight: float | None = None
    prefetch_inflight_key: str | None = None
    # `/config` storage_manager.l2_adapter_config.adapters entries that are a Python repr
    # string ("<…FSL2AdapterConfig object at 0x…>", 0.5.7) instead of a dict: unreadable.
    l2_adapter_config_reprs: int = 0
    # Everything redacted from the answers (names and counts; `_redact`), summed over routes.
    redactions: dict[str, int] = msgspec.field(default_factory=dict)
    # Capture files of routes live collection never GETs: neither read nor copied.
    ignored_captures: list[str] = msgspec.field(default_factory=list)


def skipped_routes(routes: Iterable[RouteSpec] = ROUTES) -> list[SkippedRoute]:
    """Every state-changing route, and every sensitive one not collected, recorded with the
    reason it is never called."""
    return [SkippedRoute(r.method, r.path, r.access, f"{r.access}: {r.note}")
            for r in routes if r.access in ("mutating", "destructive", "dangerous")
            or (r.access == "sensitive" and not r.collect)]


def thread_facts(health: Any, threads: Any) -> dict[str, Any]:
    """The facts of `/periodic-threads-health` and `/periodic-threads` answers (LMCache's
    shared internal API routes): overall health, the unhealthy and the listed threads."""
    f: dict[str, Any] = {}
    if isinstance(health, dict):
        f["periodic_threads_healthy"] = as_bool(health.get("healthy"))
        bad = health.get("unhealthy_threads")
        if isinstance(bad, list):
            f["unhealthy_threads"] = [str(json_at(t, "name") or t) for t in bad]
    pt = json_at(threads, "threads")
    if isinstance(pt, list):
        f["periodic_threads"] = [str(json_at(t, "name")) for t in pt
                                 if json_at(t, "name") is not None]
    return f


def unknown_routes(paths: dict[Any, Any], known: set[tuple[str, str]]) -> list[str]:
    """`METHOD /path` of every operation an `openapi.json` `paths` table lists that the
    route table does not know (version drift)."""
    return sorted(f"{m.upper()} {p}" for p, ops in paths.items() if isinstance(ops, dict)
                  for m in ops if (m.upper(), p) not in known)


def facts_from_routes(base_url: str | None, results: Iterable[RouteResult],
                      skipped: list[SkippedRoute]) -> tuple[HttpFacts, list[Problem]]:
    """Turn collected answers into facts; odd answers become problems, never exceptions."""
    by_path: dict[str, RouteResult] = {}
    results = list(results)
    problems: list[Problem] = []
    for r in results:
        by_path.setdefault(r.path.split("?", 1)[0], r)
        if r.error is not None:
            problems.append(Problem(f"{r.method} {r.path}: {r.error}", where=r.path))
    f: dict[str, Any] = {"base_url": base_url, "routes": results, "skipped": skipped}
    f["reachable"] = any(r.status_code is not None for r in results) if results else None
    problems += answer_problems(results)
    f["redactions"] = sum_redactions(results)

    def body(path: str) -> Any:
        r = by_path.get(path)
        return None if r is None else r.json

    hc = by_path.get("/healthcheck")
    if hc is not None and hc.status_code is not None:
        status = json_at(hc.json, "status")
        f["healthy"] = hc.status_code == 200 and status == "healthy"
        reason = json_at(hc.json, "reason")
        f["health_reason"] = str(reason) if reason is not None else (
            None if f["healthy"] else f"HTTP {hc.status_code}")
    st = body("/status")
    if isinstance(st, dict):
        if f.get("healthy") is None and isinstance(st.get("is_healthy"), bool):
            f["healthy"] = st["is_healthy"]
        f["engine_type"] = st.get("engine_type") if isinstance(st.get("engine_type"), str) else None
        f["chunk_size"] = as_int(st.get("chunk_size"))
        ha = st.get("hash_algorithm")
        f["hash_algorithm"] = ha if isinstance(ha, str) else None
        f["active_sessions"] = as_int(st.get("active_sessions"))
        f["p2p_enabled"] = as_bool(st.get("p2p_enabled"))
        f["kv_events_enabled"] = as_bool(json_at(st, "kv_events", "enabled"))
        sm = st.get("storage_manager")
        l1s = json_at(sm, "l1_managers")
        if isinstance(l1s, dict) and l1s:
            caps = [as_int(json_at(m, "memory_total_bytes")) for m in l1s.values()]
            used = [as_int(json_at(m, "memory_used_bytes")) for m in l1s.values()]
            objs = [as_int(json_at(m, "total_object_count")) for m in l1s.values()]
            if all(c is not None for c in caps):
                f["l1_capacity_bytes"] = sum(c for c in caps if c is not None)
            if all(u is not None for u in used):
                f["l1_used_bytes"] = sum(u for u in used if u is not None)
            if all(o is not None for o in objs):
                f["l1_object_count"] = sum(o for o in objs if o is not None)
            if f.get("l1_capacity_bytes"):
                f["l1_usage_ratio"] = (f.get("l1_used_bytes") or 0) / f["l1_capacity_bytes"]
        f["num_l2_adapters"] = as_int(json_at(sm, "num_l2_adapters"))
        f["cb_status_keys"] = [k for k in CB_STATUS_KEYS if k in st]
        f["active_cb_lookups"] = as_int(st.get("active_cb_lookups"))
    ver = body("/version")
    if isinstance(ver, str):
        f["version"] = ver
    lv = body("/lmc_version")
    if isinstance(lv, str):
        f["lmcache_version"] = lv
    elif isinstance(ver, str) and "-" in ver:
        f["lmcache_version"] = ver.split("-", 1)[0]
    cid = body("/commit_id")
    if isinstance(cid, str):
        f["commit"] = cid
    elif isinstance(ver, str) and "-" in ver:
        f["commit"] = ver.split("-", 1)[1]
    adapters = json_at(body("/config/adapters"), "adapters")
    if isinstance(adapters, list):
        f["l2_adapters"] = [str(json_at(a, "type_name") or "?") for a in adapters]
        if f.get("num_l2_adapters") is None:
            f["num_l2_adapters"] = len(adapters)
    f |= thread_facts(body("/periodic-threads-health"), body("/periodic-threads"))
    matches: dict[str, int] = {}
    for r in results:
        if r.path.startswith("/threads") and r.text is not None and r.status_code == 200:
            name = r.path.split("=", 1)[1] if "?name=" in r.path else "*"
            matches[name] = r.text.count("Thread: <")
    f["thread_matches"] = matches
    env_r = by_path.get("/env")
    if env_r is not None and env_r.json is not None:
        f["env"], f["env_dropped_keys"] = filter_env(env_r.json)
    cfg = body("/config")
    f["null_block_id"] = as_int(json_at(cfg, "mp", "null_block_id"))
    f["token_trace_enabled"] = as_bool(json_at(cfg, "observability", "token_trace_enabled"))
    ads = json_at(cfg, "storage_manager", "l2_adapter_config", "adapters")
    if isinstance(ads, list):
        f["l2_adapter_config_reprs"] = sum(1 for a in ads if isinstance(a, str)
                                           and a.startswith("<") and "object at 0x" in a)
    pc = json_at(body("/status"), "storage_manager", "prefetch_controller")
    for key in ("inflight_watermark", "max_in_flight"):
        val = json_at(pc, key)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            f["prefetch_inflight"], f["prefetch_inflight_key"] = float(val), key
            break
    rate = json_at(body("/config"), "observability", "metrics_sample_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 < rate <= 1:
        f["metrics_sample_rate"] = float(rate)
    elif rate is not None:
        problems.append(Problem(f"/config observability.metrics_sample_rate={rate!r} is not a "
                                "rate in (0, 1]", where="/config"))
    oa = json_at(body("/openapi.json"), "paths")
    if isinstance(oa, dict):
        f["route_table_paths"] = len(oa)
        f["unknown_routes"] = unknown_routes(oa, {(r.method, r.path) for r in ROUTES})
    return msgspec.convert(f, HttpFacts, from_attributes=False), problems


def route_result(a: Answer) -> RouteResult:
    """One answer as kept: JSON parsed when it is JSON, every value redacted (`/config`
    included); /env filtered to LMCache keys."""
    tally = Tally()
    if a.error is not None:
        return error_result(a)
    parsed, text, truncated = parse_json(a.raw)
    if a.path == "/env":  # never keep the raw environment
        env, _ = filter_env(parsed, tally)
        return RouteResult("GET", a.path, a.url, a.status, a.content_type, json=env,
                           truncated=truncated, elapsed_ms=a.elapsed_ms,
                           redacted=tally.as_dict())
    return kept_result(a, redact(parsed, tally=tally), text, truncated, tally)


def error_result(a: Answer) -> RouteResult:
    """A GET that got no answer, its error redacted."""
    return RouteResult("GET", a.path, a.url, error=redact_text(a.error or ""),
                       elapsed_ms=a.elapsed_ms)


def kept_result(a: Answer, parsed: Any, text: str, truncated: bool, tally: Tally
                ) -> RouteResult:
    """An answer as kept: its already redacted JSON, or else its text redacted into `tally`,
    and what was redacted."""
    return RouteResult("GET", a.path, a.url, a.status, a.content_type, json=parsed,
                       text=None if parsed is not None else redact_text(text, tally),
                       truncated=truncated, elapsed_ms=a.elapsed_ms, redacted=tally.as_dict())


# Routes whose answer is text, not JSON (every other collected route answers JSON).
TEXT_ROUTES = ("/threads", "/metrics", "/", "/loglevel")


def answer_problems(results: Iterable[RouteResult],
                    routes: Iterable[RouteSpec] = ROUTES) -> list[Problem]:
    """What an answer itself says went wrong: a status upstream does not answer when all is
    well (a 500, a redirect, which is never followed), a JSON route whose body is not JSON,
    a body cut at the size cap."""
    expected = {r.path: r.expected for r in routes if r.method == "GET"}
    out: list[Problem] = []
    for r in results:
        if r.error is not None:
            continue
        base = r.path.split("?", 1)[0]
        if r.status_code is None:  # a capture without headers: judge the body only
            if r.truncated:
                out.append(Problem(f"{r.method} {r.path}: body larger than the cap; "
                                   "truncated", where=r.path))
            continue
        if r.status_code not in expected.get(base, (200,)):
            kind = "a redirect (not followed)" if 300 <= r.status_code < 400 else "an error"
            out.append(Problem(f"{r.method} {r.path}: answered HTTP {r.status_code}, {kind}",
                               where=r.path))
        elif r.truncated:
            out.append(Problem(f"{r.method} {r.path}: body larger than the cap; truncated",
                               where=r.path))
        elif r.json is None and base not in TEXT_ROUTES and r.text is not None:
            out.append(Problem(f"{r.method} {r.path}: answer is not valid JSON", where=r.path))
    return out


def answered(results: Iterable[RouteResult]) -> bool:
    """Did any route give a usable answer (2xx, or captured without headers; not cut)?"""
    return any(r.error is None and not r.truncated
               and (r.status_code is None or 200 <= r.status_code < 300) for r in results)


def sum_redactions(results: Iterable[RouteResult]) -> dict[str, int]:
    tally = Tally()
    for r in results:
        tally.merge(r.redacted)
    return tally.as_dict()


# Capture files as harnesses save them: GET_<name>.body + GET_<name>.headers.
_CAPTURE_NAMES = {
    "root": "/", "healthcheck": "/healthcheck", "status": "/status", "version": "/version",
    "lmc_version": "/lmc_version", "commit_id": "/commit_id", "config": "/config",
    "config_adapters": "/config/adapters", "periodic-threads": "/periodic-threads",
    "periodic-threads-health": "/periodic-threads-health", "quota": "/quota",
    "reconfigure_dax_l1_status": "/reconfigure/dax/l1/status", "openapi.json": "/openapi.json",
    "loglevel": "/loglevel", "threads": "/threads", "env": "/env",
    "cache_objects": "/cache/objects", "metrics": "/metrics",
}


def _capture_form(path: str) -> str:
    """How a harness names a route's capture: `/a/b` → `a_b`, `/` → `root`."""
    return path.strip("/").replace("/", "_") or "root"


# GET routes with one path parameter, as (capture prefix, capture suffix, path template).
_TEMPLATES = sorted(
    ((_capture_form(r.path).split("{", 1)[0], _capture_form(r.path).split("}", 1)[1], r.path)
     for r in ROUTES if r.method == "GET" and "{" in r.path),
    key=lambda t: -len(t[0]) - len(t[1]))
_QUERY = {r.path: r.query for r in ROUTES if r.method == "GET" and r.query}


def capture_path(name: str) -> str | None:
    """The concrete GET path a capture name stands for, or None when no 0.5.6 route does.

    A static route by its name (`config_adapters`); a templated one with its value in place
    (`periodic-threads_<thread>` → `/periodic-threads/<thread>`, `quota_<salt>`,
    `reconfigure_<backend>_l2_status`, `cache_prefetches_<request id>`); a query string
    either literally (`threads?name=x`) or as `_<param>_<value>` after the route's name
    (`cache_objects_tier_l1` → `/cache/objects?tier=l1`), for parameters the route's
    handler declares."""
    from urllib.parse import parse_qsl, quote

    base, q, qs = name.partition("?")
    if q:
        path = capture_path(base)
        params = parse_qsl(qs, keep_blank_values=True)
        if path is None or "?" in path or not params or any(
                k not in _QUERY.get(path, ()) for k, _ in params):
            return None
        return f"{path}?{qs}"
    if base in _CAPTURE_NAMES:
        return _CAPTURE_NAMES[base]
    for static, path in sorted(_CAPTURE_NAMES.items(), key=lambda kv: -len(kv[0])):
        if path in _QUERY and base.startswith(static + "_"):
            rest = base[len(static) + 1:]
            for param in sorted(_QUERY[path], key=len, reverse=True):
                if rest.startswith(param + "_") and len(rest) > len(param) + 1:
                    return f"{path}?{param}={quote(rest[len(param) + 1:], safe='')}"
    for prefix, suffix, template in _TEMPLATES:
        if (base.startswith(prefix) and base.endswith(suffix)
                and len(base) > len(prefix) + len(suffix)):
            value = base[len(prefix):len(base) - len(suffix)]
            return template.split("{", 1)[0] + value + template.split("}", 1)[1]
    return None


def collected(path: str) -> bool:
    """Would live collection GET this concrete path? (The allow-list, for captures too.)"""
    base, _, query = path.partition("?")
    if base == "/threads":
        return query.startswith("name=") and "&" not in query
    if base == "/loglevel" and query:
        return False
    return any(r.method == "GET" and r.collect and r.path == base and base != "/metrics"
               for r in ROUTES)


def accepted_captures(found: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """({capture name: route} the live collector would also fetch, [names it would not]):
    a capture of `/cache/objects` (raw cache keys), all-thread stacks or `/metrics` is
    neither read nor copied."""
    routes = {cap: p for cap in found if (p := capture_path(cap)) is not None}
    return ({c: p for c, p in routes.items() if collected(p)},
            sorted(found[c] for c, p in routes.items() if not collected(p)))


def read_http_capture_dir(path: str | os.PathLike[str]) -> Evidence:
    """Read a directory of captured answers (GET_<route>.body / .headers) into evidence:
    only the routes live collection would GET, only regular files, each body capped."""
    from pathlib import Path

    d = Path(path)
    found = capture_names(d)
    if isinstance(found, Problem):
        return Evidence(kind="http", source=EvidenceSource(path=str(d)), status="malformed",
                        problems=[found])
    routes, ignored = accepted_captures(found)
    answers, problems, digest = read_dir(d, {c: f for c, f in found.items()
                                             if c in routes or capture_path(c) is None},
                                         routes)
    results = [route_result(a) for a in answers]
    facts, more = facts_from_routes(None, results, skipped_routes())
    facts = msgspec.structs.replace(facts, ignored_captures=ignored)
    problems += more
    src = EvidenceSource.of_bytes(digest, path=str(d))
    return Evidence(kind="http", source=src,
                    status=status_from(problems, readable=answered(results)),
                    facts=facts, problems=problems)
