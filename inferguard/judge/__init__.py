"""Judgement: the catalog (data) → `detect_mode` → `compat` → a typed `CompatReport`."""

from inferguard.judge._compat import compat
from inferguard.judge._mode import EvidenceRef, ModeCandidate, ModeDetection, detect_mode
from inferguard.judge._report import CompatReport

__all__ = ["CompatReport", "EvidenceRef", "ModeCandidate", "ModeDetection", "compat",
           "detect_mode"]
