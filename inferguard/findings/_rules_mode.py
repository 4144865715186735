"""Mode: the detected mode against the declared one."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._mode import INFERRED, MISSING_SIGNAL, SUPPORTED
from inferguard.judge._report import CompatReport


@rule(emits=("lmcache_mode_mismatch", "lmcache_mode_undetermined", "lmcache_not_configured"))
def mode_mismatch(r: CompatReport) -> Iterator[Finding]:
    if r.expected_mode and r.mode_match is False and r.detected.mode != "unknown":
        yield finding("lmcache_mode_mismatch",
                      f"expected {r.expected_mode}, the evidence shows {r.detected.mode} "
                      f"(confidence {r.detected.confidence:g})", r.detected.level,
                      [e.detail for c in r.detected.candidates[:1] for e in c.evidence[:3]])
    if r.detected.mode == "unknown" and r.facts.no_lmcache_configured:
        ev = r.facts.no_lmcache_configured
        measured = any("launch line" not in x for x in ev)
        yield finding("lmcache_not_configured",
                      "no LMCache connector is configured: " + "; ".join(ev[:3]),
                      SUPPORTED if measured else INFERRED, ev)
    elif r.detected.mode == "unknown":
        yield finding("lmcache_mode_undetermined",
                      "no LMCache mode reaches the detection threshold", MISSING_SIGNAL, [])


