"""One entry point per evidence kind: `read_evidence(kind, path)` -> `Evidence`.

The low-level readers (`inferguard.prom`, `inferguard.trace`) raise or return their own
models; the adapters here turn them into evidence (damage becomes problems and a status,
never an exception), and the registry maps every kind to its reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from inferguard._threads import beside
from inferguard.evidence._controller import (
    ControllerFacts,
    internal_api_scrape,
    read_controller_capture_dir,
)
from inferguard.evidence._engine_http import EngineHealthFacts, read_engine_capture_dir
from inferguard.evidence._http import HttpFacts, read_http_capture_dir
from inferguard.evidence._launch import LaunchFacts, read_launch
from inferguard.evidence._logs import LogFacts, read_log
from inferguard.evidence._lookup_hashes import LookupHashFacts, read_lookup_hashes
from inferguard.evidence._metrics import MetricsFacts, read_metrics
from inferguard.evidence._model import (
    Evidence,
    Problem,
    read_source,
)
from inferguard.evidence._otel import OtelFacts, read_otel
from inferguard.evidence._replay import ReplayFacts, read_replay
from inferguard.evidence._trace import TraceFacts

Facts = (HttpFacts | LogFacts | OtelFacts | LookupHashFacts | ReplayFacts | LaunchFacts
         | MetricsFacts | TraceFacts | ControllerFacts | EngineHealthFacts)


def _http(path: str | os.PathLike[str]) -> Evidence:
    if os.path.isdir(path):
        return read_http_capture_dir(path)
    return load_evidence_file(path, "http")


def _controller(path: str | os.PathLike[str]) -> Evidence:
    """A controller or internal API capture directory, or an evidence JSON file."""
    if os.path.isdir(path):
        return read_controller_capture_dir(path)
    return load_evidence_file(path, "controller")


def _trace(path: str | os.PathLike[str]) -> Evidence:
    """A `.lct` trace (its reader loads the scanner, numpy and the C core: on first use)."""
    from inferguard.evidence._trace_read import read_trace

    return read_trace(path)


def _engine_http(path: str | os.PathLike[str]) -> Evidence:
    """A vLLM /health + /version capture directory, or an evidence JSON file."""
    if os.path.isdir(path):
        return read_engine_capture_dir(path)
    return load_evidence_file(path, "engine_http")


READERS: dict[str, Callable[[str | os.PathLike[str]], Evidence]] = {
    "engine_metrics": lambda p: read_metrics(p, "engine_metrics"),
    "lmcache_metrics": lambda p: read_metrics(p, "lmcache_metrics"),
    "http": _http,
    "log": read_log,
    "trace": _trace,
    "otel": read_otel,
    "lookup_hash": read_lookup_hashes,
    "trace_replay": read_replay,
    "launch_config": read_launch,
    "controller": _controller,
    "engine_http": _engine_http,
}


# Inputs that hold a second kind of evidence: an internal API server's capture directory
# holds the engine's `/metrics` too (a live collection returns it the same way).
COMPANIONS: dict[str, Callable[[str | os.PathLike[str]], list[Evidence]]] = {
    "controller": lambda p: internal_api_scrape(p) if os.path.isdir(p) else [],
}


def read_evidence_all(kind: str, path: str | os.PathLike[str]) -> list[Evidence]:
    """`read_evidence`, then any evidence of another kind the same input holds."""
    companion = COMPANIONS.get(kind)
    return [read_evidence(kind, path), *(companion(path) if companion else [])]


def read_evidence_many(items: Sequence[tuple[str, str | os.PathLike[str]]]) -> list[Evidence]:
    """`read_evidence` of each (kind, path), in the order given. With two or more inputs
    the second half is read by a second thread: the C parsers, the file digests and the
    reads release the GIL, so they overlap on two cores (docs/performance.md, compat_two)."""
    if len(items) < 2:
        return [read_evidence(kind, path) for kind, path in items]
    half = (len(items) + 1) // 2
    rest = beside(lambda: [read_evidence(kind, path) for kind, path in items[half:]],
                  "inferguard-read")
    try:
        first = [read_evidence(kind, path) for kind, path in items[:half]]
    finally:
        later = rest()
    return first + later


def read_evidence(kind: str, path: str | os.PathLike[str]) -> Evidence:
    """Read one input of the given kind. Unknown kinds are a ValueError (a caller bug)."""
    try:
        reader = READERS[kind]
    except KeyError:
        known = sorted(READERS)
        raise ValueError(f"no reader for evidence kind {kind!r}; known: {known}") from None
    return reader(path)


def decode_evidence(obj: Any) -> Evidence:
    """An Evidence from its JSON form, with typed facts restored."""
    ev = msgspec.convert(obj, Evidence)
    if isinstance(ev.facts, dict):
        ev = msgspec.structs.replace(ev, facts=msgspec.convert(ev.facts, Facts))
    return ev


def load_evidence_set(path: str | os.PathLike[str], kind: str) -> list[Evidence]:
    """Every Evidence in an InferGuard evidence JSON file (a set, or a single one)."""
    data, source, problem = read_source(path, max_bytes=256 << 20)
    k: Any = kind
    if data is None:
        assert problem is not None
        return [Evidence(kind=k, source=source, status="malformed", problems=[problem])]
    try:
        doc = msgspec.json.decode(data)
        items = doc["evidence"] if isinstance(doc, dict) and "evidence" in doc else [doc]
        return [decode_evidence(e) for e in items]
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, KeyError,
            TypeError) as exc:
        return [Evidence(kind=k, source=source, status="malformed",
                         problems=[Problem(f"not an InferGuard evidence file: {exc}")])]


def load_evidence_file(path: str | os.PathLike[str], kind: str | None = None) -> Evidence:
    """Read an evidence JSON file written by InferGuard (one Evidence, or a set of them:
    the first is returned). Never raises on bad content."""
    data, source, problem = read_source(path, max_bytes=256 << 20)
    k: Any = kind or "http"
    if data is None:
        assert problem is not None
        return Evidence(kind=k, source=source, status="malformed", problems=[problem])
    try:
        doc = msgspec.json.decode(data)
        if isinstance(doc, dict) and isinstance(doc.get("evidence"), list) and doc["evidence"]:
            doc = doc["evidence"][0]
        return decode_evidence(doc)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        return Evidence(kind=k, source=source, status="malformed",
                        problems=[Problem(f"not an InferGuard evidence file: {exc}")])
