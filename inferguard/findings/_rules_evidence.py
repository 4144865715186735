"""Evidence that could not be read."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._mode import SUPPORTED
from inferguard.judge._report import CompatReport


@rule(emits=("lmcache_evidence_malformed",))
def malformed(r: CompatReport) -> Iterator[Finding]:
    """Inputs that did not parse: named, with their first problem."""
    bad = r.facts.malformed_evidence
    if bad:
        yield finding("lmcache_evidence_malformed",
                      "; ".join(f"{b.kind} {b.source}: {b.problem[:120]}" for b in bad[:5]),
                      SUPPORTED, [b.source for b in bad])


