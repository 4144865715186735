"""Judgement: the catalog (data) → `detect_mode` → `compat` → a typed `CompatReport`."""

from inferguard.judge._compat import CompatReport, compat
from inferguard.judge._mode import EvidenceRef, ModeCandidate, ModeDetection, detect_mode

__all__ = ["CompatReport", "EvidenceRef", "ModeCandidate", "ModeDetection", "compat",
           "detect_mode"]
