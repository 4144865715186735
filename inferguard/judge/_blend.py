"""CacheBlend (`lmcache server --engine-type blend`): what shows a blend server, and the
facts the blend findings read, gathered from every evidence kind.

A blend server is an MP server whose `BlendModule` answers CB lookups and retrieves, so the
mode stays `mp` with the flavour `blend` (decided in `docs/compatibility.md`). Its telemetry
has traps the findings name, all observed on 0.5.6 (`live-blend-controller-findings.md`):
scatter/retrieve counters count attempts, `sparse_prefetch_l2_keys` counts every submitted
key, no-op retrieves are counted for one reason only, `cb.request` roots stay open when a
lookup with matches is never retrieved, and the first fingerprint match pays a JIT compile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._metrics import FamilyStats, MetricsFacts
from inferguard.evidence._model import Evidence, source_label
from inferguard.evidence._otel import OtelFacts

FLAVOR = "blend"
NOOP_FAMILY = "lmcache_blend_retrieve_noops_total"
FINGERPRINT_HIST = "lmcache_blend_fingerprint_match_duration_milliseconds"
# A fingerprint-match observation this slow, alone among fast ones, is the JIT outlier
# (0.5.6: the first CB lookup of a process took ~260 ms in the matcher, later ones 1-3 ms).
JIT_OUTLIER_MS = 100.0


def blend_signals(ev: Evidence) -> Iterator[str]:
    """What in one readable evidence shows a CacheBlend server (details for the mode note)."""
    f = ev.facts
    if isinstance(f, MetricsFacts):
        names = [fam.name for fam in f.families if fam.name.startswith("lmcache_blend")]
        if names:
            yield f"{len(names)} lmcache_blend_* families"
    elif isinstance(f, OtelFacts):
        cb = sorted({s.name for s in f.spans if s.name.startswith("cb.")})
        if cb:
            yield "CacheBlend spans: " + ", ".join(cb[:4])
        if any(m.startswith("lmcache_blend.") for m in f.metric_names):
            yield "lmcache_blend.* OTLP metrics"
    elif isinstance(f, HttpFacts):
        if f.cb_status_keys:
            yield "/status has " + ", ".join(f.cb_status_keys)
        if f.thread_matches.get("cb-fingerprint-worker"):
            yield "/threads shows cb-fingerprint-worker"
    elif isinstance(f, LogFacts):
        ids = sorted(h.id for h in f.hints if h.category == "blend")
        if ids:
            yield "CacheBlend log lines: " + ", ".join(ids[:4])
    elif isinstance(f, LaunchFacts):
        for launch in f.launches:
            if launch.program == "lmcache_server" and launch.flags.get("engine-type") == "blend":
                yield f"launch line {launch.line}: --engine-type blend"


class SpanDurations(msgspec.Struct, frozen=True, omit_defaults=True):
    count: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    max_ms: float | None = None


class BlendDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    """The blend facts diagnose() reads, merged over the packet's evidence."""

    signals: list[str] = msgspec.field(default_factory=list)
    noop_reasons_metric: dict[str, float] = msgspec.field(default_factory=dict)
    noop_reasons_spans: dict[str, int] = msgspec.field(default_factory=dict)
    noop_reasons_log: list[str] = msgspec.field(default_factory=list)
    fingerprint_match_buckets: list[tuple[float, float]] = msgspec.field(default_factory=list)
    fingerprint_match_count: float | None = None
    fingerprint_match_spans: SpanDurations | None = None
    retrieve_success_spans: dict[str, int] = msgspec.field(default_factory=dict)
    scatter_success_spans: dict[str, int] = msgspec.field(default_factory=dict)
    scatter_tokens_spans: float | None = None
    lookup_no_gpu_context_spans: int = 0
    lookup_stale_chunks_spans: float | None = None
    sparse_l2_keys_spans: float | None = None
    sparse_keys_spans: float | None = None
    lookups_awaiting_retrieve: int = 0
    lookups_held_over_1s: int = 0
    awaiting_retrieve_max_ms: float | None = None
    orphan_cb_spans: dict[str, int] = msgspec.field(default_factory=dict)
    span_sources: list[str] = msgspec.field(default_factory=list)


def _best(fams: list[FamilyStats]) -> FamilyStats | None:
    """Of several scrapes of one family, the one with the most data (the latest)."""
    return max(fams, key=lambda f: (f.nonzero_samples, f.total), default=None)


def blend_digest(packet: Packet) -> BlendDigest | None:
    """Blend facts from metrics, spans, logs, HTTP and launch lines (typed report facts).
    None when nothing in the packet shows a blend server."""
    readable = [e for e in packet.evidence if e.status in ("ok", "partial")
                and e.facts is not None]
    signals = [f"{e.kind}:{source_label(e)} {s}" for e in readable for s in blend_signals(e)]
    if not signals:
        return None
    d: dict[str, Any] = {"signals": signals}
    fams: dict[str, list[FamilyStats]] = {}
    for e in readable:
        if isinstance(e.facts, MetricsFacts):
            for fam in e.facts.families:
                fams.setdefault(fam.name, []).append(fam)
    noop = _best(fams.get(NOOP_FAMILY, []))
    if noop is not None:
        d["noop_reasons_metric"] = noop.label_totals.get("reason", {})
    hist = _best(fams.get(FINGERPRINT_HIST, []))
    if hist is not None:
        d["fingerprint_match_buckets"] = hist.buckets
        d["fingerprint_match_count"] = hist.total
    spans = [(e, e.facts) for e in readable if isinstance(e.facts, OtelFacts)
             and any(s.name.startswith("cb.") for s in e.facts.spans)]
    if spans:
        d.update(_span_facts(spans))
    reasons = sorted({v for e in readable if isinstance(e.facts, LogFacts)
                      for h in e.facts.hints if h.id == "blend_retrieve_no_scatter"
                      for ex in h.examples for k, v in ex.values.items() if k == "reason"})
    if reasons:
        d["noop_reasons_log"] = reasons
    return msgspec.convert(d, BlendDigest)


def _span_facts(spans: list[tuple[Evidence, OtelFacts]]) -> dict[str, Any]:
    d: dict[str, Any] = {"span_sources": [source_label(e) for e, _ in spans]}

    def tally(name: str, key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, f in spans:
            s = f.span(name)
            for v, n in (s.string_values.get(key, {}) if s else {}).items():
                out[v] = out.get(v, 0) + n
        return out

    def total(name: str, key: str) -> float | None:
        vals = [s.numeric_sums[key] for _, f in spans if (s := f.span(name)) is not None
                and key in s.numeric_sums]
        return sum(vals) if vals else None

    d["noop_reasons_spans"] = tally("cb.retrieve.noop", "reason")
    d["retrieve_success_spans"] = tally("cb.retrieve", "success")
    d["scatter_success_spans"] = tally("cb.scatter", "success")
    d["scatter_tokens_spans"] = total("cb.scatter", "scattered_tokens")
    d["lookup_no_gpu_context_spans"] = tally("cb.lookup", "no_gpu_context").get("True", 0)
    d["lookup_stale_chunks_spans"] = total("cb.lookup", "stale_chunks")
    d["sparse_l2_keys_spans"] = total("cb.sparse_prefetch", "l2_keys")
    d["sparse_keys_spans"] = total("cb.sparse_prefetch", "n_keys")
    fm = [s for _, f in spans if (s := f.span("cb.fingerprint_match")) is not None]
    if fm:
        biggest = max(fm, key=lambda s: s.count)
        d["fingerprint_match_spans"] = SpanDurations(
            sum(s.count for s in fm), biggest.duration_ms_p50, biggest.duration_ms_p90,
            max((s.duration_ms_max for s in fm if s.duration_ms_max is not None), default=None))
    gaps = [g for _, f in spans for g in f.gaps if g.parent == "cb.request"]
    d["lookups_awaiting_retrieve"] = sum(g.count for g in gaps)
    d["lookups_held_over_1s"] = sum(g.over_1s + g.open for g in gaps)
    d["awaiting_retrieve_max_ms"] = max(
        (g.duration_ms_max for g in gaps if g.duration_ms_max is not None), default=None)
    orphans: dict[str, int] = {}
    for _, f in spans:
        for name, n in f.orphans_by_name.items():
            if name.startswith("cb."):
                orphans[name] = orphans.get(name, 0) + n
    d["orphan_cb_spans"] = orphans
    return d


def jit_outlier(buckets: list[tuple[float, float]], count: float | None) -> float | None:
    """How many fingerprint-match observations lie above `JIT_OUTLIER_MS` when that is one
    observation among faster ones (or the only one): the first lookup's JIT. None if not."""
    if not buckets or not count:
        return None
    under = max((c for le, c in buckets if le <= JIT_OUTLIER_MS), default=0.0)
    above = count - under
    return above if above == 1 else None
