"""Judgement: the catalog (data) → `detect_mode` → `compat` → a typed `CompatReport`."""

from inferguard.judge._compat import compat
from inferguard.judge._mode import EvidenceRef, ModeCandidate, ModeDetection, detect_mode
from inferguard.judge._rates import Rate, RateWindow, packet_rates
from inferguard.judge._report import CompatReport

__all__ = ["CompatReport", "EvidenceRef", "ModeCandidate", "ModeDetection", "Rate",
           "RateWindow", "compat", "detect_mode", "packet_rates"]
