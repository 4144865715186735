"""HTTP evidence from a vLLM OpenAI server: `GET /health` and `GET /version`, nothing else.

vLLM 0.33.0 (`vllm/entrypoints/serve/instrumentator/health.py::health`) answers `/health`
with 200 and an empty body while `EngineClient.check_health()` passes, and 503 when it raises
`EngineDeadError`; the API server only listens once the engine core has started
(`launchers/api_server/entry.py` logs `Starting vLLM server on ...` after engine startup), so
no answer at all means not started, stopped, or a wrong address. `/version`
(`instrumentator/basic.py::show_version`) answers `{"version": "<vllm version>"}`. Both are
read-only GETs; collection asks for exactly these two paths.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from inferguard.evidence._capture import Answer, as_str, capture_names, parse_json, read_dir
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, status_from

if TYPE_CHECKING:
    pass

ENGINE_HTTP_PATHS: tuple[str, ...] = ("/health", "/version")
_CAPTURE_NAMES = {"health": "/health", "version": "/version"}


class EngineHealthFacts(msgspec.Struct, frozen=True, tag="engine_http", omit_defaults=True):
    """What the engine's /health and /version answered. `healthy` is True only on a 200,
    False on any other status or no answer, None when /health was not asked."""

    base_url: str | None = None
    health_status: int | None = None
    health_error: str | None = None
    healthy: bool | None = None
    version: str | None = None
    version_status: int | None = None
    routes: list[str] = msgspec.field(default_factory=list)


def engine_facts(base_url: str | None, answers: list[Answer]) -> tuple[EngineHealthFacts,
                                                                        list[Problem]]:
    """Facts from the answers to GET /health and GET /version (live or captured)."""
    problems: list[Problem] = []
    by = {a.path: a for a in answers}
    h = by.get("/health")
    status = h.status if h is not None else None
    error = None
    healthy: bool | None = None
    if h is not None:
        healthy = status == 200
        if status is None:
            error = h.error or "no answer"
            problems.append(Problem(f"/health did not answer: {error}", where="/health"))
        elif status != 200:
            problems.append(Problem(f"/health answered HTTP {status}", where="/health"))
    version = None
    v = by.get("/version")
    if v is not None and v.status == 200:
        parsed, _, _ = parse_json(v.raw)
        version = as_str(parsed.get("version")) if isinstance(parsed, dict) else None
        if version is None:
            problems.append(Problem("/version answer has no version string", where="/version"))
    facts = EngineHealthFacts(base_url=base_url, health_status=status, health_error=error,
                              healthy=healthy, version=version,
                              version_status=v.status if v is not None else None,
                              routes=[a.path for a in answers])
    return facts, problems


def engine_evidence(base_url: str | None, answers: list[Answer], source: EvidenceSource,
                    extra: list[Problem] | None = None) -> Evidence:
    facts, problems = engine_facts(base_url, answers)
    problems = (extra or []) + problems
    return Evidence(kind="engine_http", source=source,
                    status=status_from(problems, readable=bool(answers)), facts=facts,
                    problems=problems)


def read_engine_capture_dir(path: str | os.PathLike[str]) -> Evidence:
    """A directory of captured answers: GET_health.body/.headers, GET_version.body/.headers.
    A health capture without a status line is read as no answer."""
    from pathlib import Path

    d = Path(path)
    found = capture_names(d)
    if isinstance(found, Problem):
        return Evidence(kind="engine_http", source=EvidenceSource(path=str(d)),
                        status="malformed", problems=[found])
    answers, problems, digest = read_dir(d, found, _CAPTURE_NAMES)
    answers = [a if a.status is not None else a._replace(error="no status line captured")
               for a in answers]
    return engine_evidence(None, answers, EvidenceSource.of_bytes(digest, path=str(d)), problems)
