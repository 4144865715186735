"""Claims: what the packet supports saying, derived from the findings and measured values.

Three rules hold for every claim (docs/compatibility.md, "Claims"):
- a claim never stands beside a finding that contradicts it: it is withheld instead, and the
  withheld claim names the codes that stopped it;
- a zero is evidence against, not for: a hit counter that reads 0 after lookups is the claim
  `no_cache_hits`, never a weak `cache_hits`;
- each claim says which evidence decided it (`decided_by`: a metric, an HTTP answer, a span,
  a trace, or only a log / launch line), and its level follows from that.
"""

from __future__ import annotations

import msgspec

from inferguard.findings._codes import FINDING_CODES
from inferguard.findings._reads import total_of
from inferguard.findings._registry import Diagnosis
from inferguard.judge._catalog import FAMILIES
from inferguard.judge._mode import INFERRED, MEASURED_KINDS, SUPPORTED
from inferguard.judge._report import CompatReport


class Claim(msgspec.Struct, frozen=True, omit_defaults=True):
    """One thing the evidence supports saying, at an evidence level, and what decided it."""

    id: str
    statement: str
    level: str
    evidence: list[str] = msgspec.field(default_factory=list)
    decided_by: str | None = None


class WithheldClaim(msgspec.Struct, frozen=True, omit_defaults=True):
    """A claim the evidence would otherwise suggest, not made, and why."""

    id: str
    statement: str
    reason: str
    codes: list[str] = msgspec.field(default_factory=list)


class Claims(msgspec.Struct, frozen=True):
    made: list[Claim]
    withheld: list[WithheldClaim]


# Findings that contradict "LMCache runs": the engine or LMCache is configured but does not
# work, or reports itself unhealthy.
RUNS_CONTRADICTED_BY: tuple[str, ...] = (
    "lmcache_configured_but_not_working",
    "lmcache_engine_failed_to_start",
    "lmcache_engine_unhealthy",
    "lmcache_mp_server_unhealthy",
)
# Findings that contradict "the cache served hits" whatever the hit counters say.
HITS_CONTRADICTED_BY: tuple[str, ...] = ("lmcache_configured_but_not_working",
                                         "lmcache_engine_failed_to_start")
_CHECK = [c for c in RUNS_CONTRADICTED_BY + HITS_CONTRADICTED_BY if c not in FINDING_CODES]
assert not _CHECK, f"claim rules name unknown finding codes: {_CHECK}"

# Hit counters whose positive total means the cache served tokens (LMCache's own, or vLLM's
# count of tokens a KV connector loaded), with their denominators.
_HITS = tuple(f for f in FAMILIES if f.hit_scope in ("lmcache", "connector"))
_LOG_HITS = ("mp_retrieved", "mp_prefetch_completed", "embedded_retrieved", "embedded_lookup")
_BLEND_HITS = "lmcache_blend_lookup_hit_tokens_total"


def _decided_by(kinds: list[str]) -> str:
    measured = [k for k in kinds if k in MEASURED_KINDS]
    return measured[0] if measured else (kinds[0] if kinds else "none")


def _mode(r: CompatReport, contradicted: list[str]) -> tuple[list[Claim], list[WithheldClaim]]:
    det = r.detected
    if det.mode == "unknown":
        return [], [WithheldClaim("mode", "LMCache runs in a known mode",
                                  "no mode reaches the detection threshold")]
    top = next((c for c in det.candidates if c.mode == det.mode), None)
    refs = [f"{e.kind}: {e.detail}" for e in (top.evidence[:4] if top else [])]
    decided = _decided_by(top.evidence_kinds if top else [])
    if contradicted:
        return ([Claim("mode_configured", f"LMCache is configured for {det.mode} mode",
                       det.level, refs, decided)],
                [WithheldClaim("mode", f"LMCache runs in {det.mode} mode",
                               "contradicted by " + ", ".join(contradicted), contradicted)])
    return [Claim("mode", f"LMCache runs in {det.mode} mode", det.level, refs, decided)], []


def _blend_served(r: CompatReport) -> bool:
    """CacheBlend hits count only when some retrieve succeeded: every retrieve failing means
    the engine recomputed every request (lookup hits are fingerprint matches, not KV)."""
    req = total_of(r, "lmcache_blend_retrieve_requests_total")
    failed = total_of(r, "lmcache_blend_retrieve_failures_total")
    spans = r.facts.blend.retrieve_success_spans if r.facts.blend is not None else {}
    if spans.get("False") and not spans.get("True"):
        return False
    return not (req > 0 and failed >= req)


def _hits(r: CompatReport, d: Diagnosis) -> tuple[list[Claim], list[WithheldClaim]]:
    statement = "the cache served hits"
    stop = [c for c in HITS_CONTRADICTED_BY if d.finding(c) is not None]
    counters = [(spec, r.family(spec.name)) for spec in _HITS]
    present = [(spec, fam) for spec, fam in counters if fam is not None
               and fam.status in ("populated", "zero")]
    positive = [(spec, fam) for spec, fam in present if (fam.total or 0) > 0]
    if any(spec.name == _BLEND_HITS for spec, _ in positive) and not _blend_served(r):
        positive = [(s, f) for s, f in positive if s.name != _BLEND_HITS]
        if not positive:
            stop.append("lmcache_blend_retrieve_failures")
    if stop:
        return [], [WithheldClaim("cache_hits", statement,
                                  "contradicted by " + ", ".join(sorted(set(stop))),
                                  sorted(set(stop)))]
    if positive:
        return [Claim("cache_hits", statement, SUPPORTED,
                      [f"{fam.name}={fam.total:g}" for _, fam in positive], "metric")], []
    # A zero after lookups is a measurement of no hits.
    zeros = [(spec, fam) for spec, fam in present if total_of(r, spec.hits_of) > 0]
    if zeros:
        ev = [f"{fam.name}=0 with {spec.hits_of}={total_of(r, spec.hits_of):g}"
              for spec, fam in zeros]
        return [Claim("no_cache_hits", "no cache hit was measured", SUPPORTED, ev, "metric")], []
    logs = {h: n for h in _LOG_HITS if (n := r.facts.log_positive.get(h, 0)) > 0}
    if logs:
        return [Claim("cache_hits", statement, INFERRED,
                      [f"log: {h} x{n} with a positive amount" for h, n in logs.items()],
                      "log")], []
    why = ("hit counters read 0 and no lookup was counted" if present
           else "no hit counter and no retrieve log line in the evidence")
    return [], [WithheldClaim("cache_hits", statement, why)]


def derive_claims(r: CompatReport, d: Diagnosis) -> Claims:
    """Every claim the report and its findings support, and the ones withheld."""
    runs_stop = [c for c in RUNS_CONTRADICTED_BY if d.finding(c) is not None]
    made, withheld = _mode(r, runs_stop)
    m2, w2 = _hits(r, d)
    made += m2
    withheld += w2
    l2 = [f for f in r.families if f.group in ("mp_l2", "mp_l2_throughput")
          and f.status == "populated"]
    if l2:
        made.append(Claim("l2_in_use", "an L2 adapter stored or loaded data", SUPPORTED,
                          [f"{f.name}={f.total:g}" for f in l2[:4]], "metric"))
    req = _request_level(r)
    if req:
        made.append(Claim("request_level_evidence", "request-level spans or trace records",
                          SUPPORTED, req, "span" if r.facts.otel.span_count else "trace"))
    return Claims(made, withheld)


def _request_level(r: CompatReport) -> list[str]:
    out = [f"{r.facts.otel.span_count} spans"] if r.facts.otel.span_count else []
    out += [f"{t.source}: {t.records} records" for t in r.facts.traces if t.records]
    return out
