"""Evidence: one module per evidence kind turns bytes into typed facts and problems (never an
exception on bad input); `read_evidence(kind, path)` is the one entry point.

Names load on first access: a command reading one kind loads only that reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferguard import _lazy

if TYPE_CHECKING:
    from inferguard.evidence._controller import ControllerFacts
    from inferguard.evidence._engine_http import EngineHealthFacts
    from inferguard.evidence._http import HttpFacts
    from inferguard.evidence._launch import LaunchFacts
    from inferguard.evidence._logs import LogFacts
    from inferguard.evidence._lookup_hashes import LookupHashFacts
    from inferguard.evidence._metrics import FamilyStats, MetricsFacts
    from inferguard.evidence._model import (
        EVIDENCE_KINDS,
        Evidence,
        EvidenceKind,
        EvidenceSource,
        ParseStatus,
        Problem,
    )
    from inferguard.evidence._otel import OtelFacts
    from inferguard.evidence._readers import (
        Facts,
        decode_evidence,
        load_evidence_file,
        load_evidence_set,
        read_evidence,
    )
    from inferguard.evidence._replay import ReplayFacts
    from inferguard.evidence._trace import TraceFacts

__all__ = [
    "EVIDENCE_KINDS",
    "ControllerFacts",
    "EngineHealthFacts",
    "Evidence",
    "EvidenceKind",
    "EvidenceSource",
    "Facts",
    "FamilyStats",
    "HttpFacts",
    "LaunchFacts",
    "LogFacts",
    "LookupHashFacts",
    "MetricsFacts",
    "OtelFacts",
    "ParseStatus",
    "Problem",
    "ReplayFacts",
    "TraceFacts",
    "decode_evidence",
    "load_evidence_file",
    "load_evidence_set",
    "read_evidence",
]

_WHERE: dict[str, str] = {
    "ControllerFacts": "._controller",
    "EVIDENCE_KINDS": "._model",
    "EngineHealthFacts": "._engine_http",
    "Evidence": "._model",
    "EvidenceKind": "._model",
    "EvidenceSource": "._model",
    "Facts": "._readers",
    "FamilyStats": "._metrics",
    "HttpFacts": "._http",
    "LaunchFacts": "._launch",
    "LogFacts": "._logs",
    "LookupHashFacts": "._lookup_hashes",
    "MetricsFacts": "._metrics",
    "OtelFacts": "._otel",
    "ParseStatus": "._model",
    "Problem": "._model",
    "ReplayFacts": "._replay",
    "TraceFacts": "._trace",
    "decode_evidence": "._readers",
    "load_evidence_file": "._readers",
    "load_evidence_set": "._readers",
    "read_evidence": "._readers",
}


__getattr__, __dir__ = _lazy.exports(__name__, _WHERE, __all__)
