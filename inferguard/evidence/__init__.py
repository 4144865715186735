"""Evidence: one module per evidence kind turns bytes into typed facts and problems (never an
exception on bad input); `read_evidence(kind, path)` is the one entry point."""

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
