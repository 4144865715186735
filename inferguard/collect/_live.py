"""Live collection: the MP server's read-only HTTP API, a controller or an engine's internal
API server, and `/metrics` scrapes — each answer turned into evidence by the same code that
reads capture directories, so a live URL and its capture give the same facts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec

from inferguard.collect._fetch import Deadline, fetch
from inferguard.evidence._capture import BODY_LIMIT
from inferguard.evidence._controller import SERVERS, request_paths
from inferguard.evidence._controller import facts_from_routes as controller_facts
from inferguard.evidence._controller import route_result as controller_route_result
from inferguard.evidence._engine_http import ENGINE_HTTP_PATHS, engine_evidence
from inferguard.evidence._http import ROUTES, answered, facts_from_routes, skipped_routes
from inferguard.evidence._http import route_result as http_route_result
from inferguard.evidence._metrics import MAX_METRICS_BYTES, read_metrics_bytes
from inferguard.evidence._model import Evidence, EvidenceKind, EvidenceSource, Problem, status_from
from inferguard.evidence._redact import redact_text, redact_url

MAX_SCRAPE_BYTES = MAX_METRICS_BYTES  # a scrape is read like a metrics file


def collect_http(base_url: str, *, thread_names: Iterable[str] = (), timeout: float = 5.0,
                 transport: Any = None, deadline: Deadline | None = None) -> Evidence:
    """GET every allow-listed route of a live MP server; record the rest as skipped.

    Failures (refused, timeout, 4xx/5xx, non-JSON) are evidence, never exceptions."""
    base = base_url.rstrip("/")
    paths = [r.path for r in ROUTES if r.collect and r.method == "GET" and r.path != "/threads"]
    paths += [f"/threads?name={n}" for n in thread_names]
    answers = fetch(base, paths, timeout=timeout, transport=transport, deadline=deadline)
    base = redact_url(base)
    results = [http_route_result(a) for a in answers]
    facts, problems = facts_from_routes(base, results, skipped_routes())
    reachable = answered(results)
    src = EvidenceSource.of_bytes(msgspec.json.encode(results), url=base)
    return Evidence(kind="http", source=src,
                    status=status_from(problems, readable=reachable), facts=facts,
                    problems=problems)


def collect_engine_http(base_url: str, *, timeout: float = 5.0, transport: Any = None,
                        deadline: Deadline | None = None) -> Evidence:
    """GET /health and /version of a live vLLM server, nothing else. No answer is evidence
    (the engine is not listening), never an exception."""
    base = base_url.rstrip("/")
    answers = fetch(base, ENGINE_HTTP_PATHS, timeout=timeout, transport=transport,
                    deadline=deadline)
    base = redact_url(base)
    summary = [{"path": a.path, "status": a.status, "error": a.error,
                "body": redact_text(a.raw[:256].decode("utf-8", "replace"))} for a in answers]
    return engine_evidence(base, answers,
                           EvidenceSource.of_bytes(msgspec.json.encode(summary), url=base))


class ControlPlaneCapture(NamedTuple):
    """What one live collection produced: evidence, and (kind, url, bytes) packet inputs."""

    evidence: list[Evidence]
    inputs: list[tuple[str, str, bytes]]


def collect_control_plane(base_url: str, server: str, *, thread_names: Iterable[str] = (),
                          timeout: float = 5.0, transport: Any = None,
                          clock: Any = time.time, deadline: Deadline | None = None
                          ) -> ControlPlaneCapture:
    """GET every allow-listed route of a live controller or internal API server.

    Failures (refused, timeout, 4xx/5xx, non-JSON) are evidence, never exceptions. The raw
    `/metrics` answer is returned as a packet input; an internal API server's scrape also
    becomes `lmcache_metrics` evidence (the engine's in-process `lmcache:*` registry)."""

    if server not in SERVERS:
        raise ValueError(f"unknown control-plane server {server!r}; known: {SERVERS}")
    base = base_url.rstrip("/")
    answers = fetch(base, request_paths(server, thread_names), timeout=timeout,
                    transport=transport, deadline=deadline)
    base = redact_url(base)
    results = [controller_route_result(a) for a in answers]
    # An answer's own date (the server's clock); when it did not answer, when we asked.
    dates = {a.path: a.date if a.date is not None else float(clock()) for a in answers}
    metrics_raw = next((a.raw for a in answers if a.path == "/metrics" and a.status == 200
                        and len(a.raw) <= BODY_LIMIT), None)
    when = dates.get("/controller/workers") or (max(dates.values()) if dates else None)
    text = metrics_raw.decode("utf-8", "replace") if metrics_raw is not None else None
    facts, problems = controller_facts(server, base, results, collected_at=when,
                                        metrics_text=text)
    src = EvidenceSource.of_bytes(msgspec.json.encode(results), url=base)
    evidence = [Evidence(kind="controller", source=src,
                         status=status_from(problems, readable=bool(facts.reachable)),
                         facts=facts, problems=problems)]
    inputs: list[tuple[str, str, bytes]] = []
    if metrics_raw is not None:
        murl = base + "/metrics"
        if server == "internal_api":
            ev = read_metrics_bytes(metrics_raw, EvidenceSource.of_bytes(metrics_raw, url=murl),
                                    "lmcache_metrics")
            evidence.append(ev)
            inputs.append(("lmcache_metrics", murl, metrics_raw))
        else:
            inputs.append(("controller", murl, metrics_raw))
    return ControlPlaneCapture(evidence, inputs)


def scrape_metrics(url: str, kind: EvidenceKind, *, timeout: float = 5.0,
                   transport: Any = None, clock: Any = time.time,
                   deadline: Deadline | None = None) -> tuple[Evidence, bytes | None]:
    """GET a /metrics URL; returns the evidence and the bytes (None when nothing came).
    The scrape's time (`MetricsFacts.scraped_at`) is this machine's clock when the answer
    came (sub-second, unlike the server's `date:` header). The URL is recorded without
    userinfo."""
    (a,) = fetch(url, [""], timeout=timeout, transport=transport, limit=MAX_SCRAPE_BYTES,
                 deadline=deadline)
    when = float(clock())
    url = redact_url(url)
    if a.status is None:
        return Evidence(kind=kind, source=EvidenceSource(url=url), status="malformed",
                        problems=[Problem(f"scrape failed: {a.error}", where=url)]), None
    source = EvidenceSource.of_bytes(a.raw, url=url)
    if a.status != 200:
        return Evidence(kind=kind, source=source, status="malformed",
                        problems=[Problem(f"scrape answered HTTP {a.status}", where=url)]), a.raw
    if len(a.raw) > MAX_SCRAPE_BYTES:
        return Evidence(kind=kind, source=source, status="malformed",
                        problems=[Problem(f"scrape larger than {MAX_SCRAPE_BYTES} bytes",
                                          where=url)]), None
    return read_metrics_bytes(a.raw, source, kind, when), a.raw
