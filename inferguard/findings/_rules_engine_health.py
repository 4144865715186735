"""The engine itself: did it start (engine logs), and is it healthy (vLLM's /health)."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._mode import INFERRED, SUPPORTED
from inferguard.judge._report import CompatReport


@rule(emits=("lmcache_engine_failed_to_start",))
def failed_to_start(r: CompatReport) -> Iterator[Finding]:
    """A startup traceback (or vLLM's startup-failure line) and no serving line in the same
    log, with no measured evidence of the engine serving. Log-only: inferred; with an engine
    /health that did not answer 200 as well: supported."""
    sf = r.facts.engine_start_failure
    if sf is None:
        return
    ev = [f"log: {sf.source} line {sf.line}: {sf.exception}"]
    if sf.marker is not None and sf.marker_line is not None and sf.marker_line != sf.line:
        ev.append(f"log: {sf.source} line {sf.marker_line}: {sf.marker}")
    ev += sf.corroborated_by
    where = f" (traceback from line {sf.traceback_line})" if sf.traceback_line else ""
    yield finding("lmcache_engine_failed_to_start",
                  f"{sf.source} line {sf.line}{where}: {sf.exception}; no serving line follows",
                  SUPPORTED if sf.corroborated_by else INFERRED, ev)


@rule(emits=("lmcache_engine_unhealthy",))
def engine_unhealthy(r: CompatReport) -> Iterator[Finding]:
    """vLLM's /health answers 200 while the engine core is alive, 503 on EngineDeadError; no
    answer means the API server is not listening. Measured, so supported."""
    health = r.facts.engine_health
    # an address that also answered 200 (an earlier collection, then a later one) is not down
    bad = [h for h in health if not h.healthy
           and not any(o.healthy and o.source == h.source for o in health)]
    if not bad:
        return
    ev = [f"{h.source}: /health " + (f"HTTP {h.status}" if h.status is not None
                                     else f"no answer ({h.error})") for h in bad]
    yield finding("lmcache_engine_unhealthy", "; ".join(ev), SUPPORTED, ev)
