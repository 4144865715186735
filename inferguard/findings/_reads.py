"""Small typed reads of a `CompatReport` shared by the rules."""

from __future__ import annotations

from inferguard.judge._mode import INFERRED, SUPPORTED
from inferguard.judge._report import CompatReport


def total_of(r: CompatReport, name: str) -> float:
    """A family's total, 0 when absent or without samples."""
    f = r.family(name)
    return (f.total or 0.0) if f is not None and f.total is not None else 0.0


def hints_of(r: CompatReport) -> dict[str, int]:
    """Log hint id → how many lines matched it."""
    return r.facts.log_hints


def has_mp_scrape(r: CompatReport) -> bool:
    """A readable LMCache scrape is in the packet."""
    return any(e.kind == "lmcache_metrics" and e.status in ("ok", "partial") for e in r.evidence)


def is_measured(r: CompatReport) -> bool:
    """Measured evidence (metrics, HTTP or a trace) is in the packet, not only logs."""
    return any(e.kind in ("lmcache_metrics", "engine_metrics", "http", "trace")
               and e.status in ("ok", "partial") for e in r.evidence)


def measured_or_log(ev: list[str]) -> str:
    """supported when any evidence line is measured (not a log line), else inferred."""
    return SUPPORTED if any(not e.startswith("log:") for e in ev) else INFERRED
