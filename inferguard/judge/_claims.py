"""Claims with evidence levels: what the packet supports saying about the cache."""

from __future__ import annotations

from inferguard._packet import Packet
from inferguard.evidence._logs import LogFacts
from inferguard.judge._catalog import FAMILIES
from inferguard.judge._facts import EngineStartFailure, readable, src
from inferguard.judge._index import MetricsIndex
from inferguard.judge._mode import (
    INFERRED,
    MISSING_SIGNAL,
    PARTIAL,
    SUPPORTED,
    ModeDetection,
)
from inferguard.judge._report import (
    Claim,
    FamilyResult,
)

# Hit counters that show the cache (LMCache itself, or vLLM's count of connector hits)
# served tokens; the engine's own local prefix cache is not LMCache.
_CACHE_HITS = frozenset(f.name for f in FAMILIES if f.hit_scope in ("lmcache", "connector"))


def claims(packet: Packet, rs: list[FamilyResult], det: ModeDetection, mode: str,
            m: MetricsIndex, *, start_failure: EngineStartFailure | None = None) -> list[Claim]:
    if start_failure is not None:
        # The same fact as `lmcache_engine_failed_to_start`: nothing runs, whatever was configured.
        sf = start_failure
        claims = [Claim("mode", f"the engine did not start ({sf.exception}): LMCache does not "
                        f"run, in {det.mode} mode or any other", MISSING_SIGNAL,
                        [f"{sf.source} line {sf.line}: {sf.exception}", *sf.corroborated_by])]
    else:
        claims = [Claim("mode", f"LMCache runs in {det.mode} mode", det.level,
                        [r.detail for c in det.candidates[:1] for r in c.evidence[:4]])]
    hits = [r for r in rs if r.name in _CACHE_HITS]
    populated = [r for r in hits if r.status == "populated"]
    logs_hits = [e for e in readable(packet, "log") if isinstance(e.facts, LogFacts)
                 and (e.facts.count("mp_prefetch_completed") or e.facts.count("mp_retrieved")
                      or e.facts.count("embedded_retrieved"))]
    if populated:
        claims.append(Claim("cache_hits", "the cache served hits", SUPPORTED,
                            [f"{r.name}={r.total:g}" for r in populated]))
    elif logs_hits:
        claims.append(Claim("cache_hits", "the cache served hits", INFERRED,
                            [src(e) for e in logs_hits]))
    elif any(r.status == "zero" for r in hits):
        claims.append(Claim("cache_hits", "the cache served hits", PARTIAL,
                            [f"{r.name}=0" for r in hits if r.status == "zero"]))
    else:
        claims.append(Claim("cache_hits", "the cache served hits", MISSING_SIGNAL))
    l2 = [r for r in rs if r.group in ("mp_l2", "mp_l2_throughput") and r.status == "populated"]
    if l2:
        claims.append(Claim("l2_in_use", "an L2 adapter stored or loaded data", SUPPORTED,
                            [r.name for r in l2[:4]]))
    spans = readable(packet, "otel")
    traces = readable(packet, "trace")
    if spans or traces:
        claims.append(Claim("request_level_evidence", "request-level spans or trace records",
                            SUPPORTED, [src(e) for e in spans + traces]))
    return claims
