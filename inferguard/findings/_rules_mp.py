"""The standalone MP server: its metric families, hits, L1/L2, EventBus, health, sampling."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._reads import has_mp_scrape, hints_of, total_of
from inferguard.findings._registry import Finding, finding, rule
from inferguard.findings._rules_hits import zero_hit_cause
from inferguard.judge._mode import INFERRED, MISSING_SIGNAL, PARTIAL, SUPPORTED
from inferguard.judge._report import CompatReport


@rule(emits=(
    "lmcache_families_not_created_yet",
    "lmcache_mp_lookup_counters_missing",
    "lmcache_mp_metrics_missing",
    "lmcache_mp_metrics_via_otlp",
    "lmcache_required_family_missing",
    "lmcache_transfer_path_families_absent",
))
def mp_metrics(r: CompatReport) -> Iterator[Finding]:
    if r.effective_mode != "mp":
        return
    obs = r.lmcache_mp_observability
    via_otlp = obs is not None and bool(obs.disabled_by_config.metrics_via_otlp)
    present = [f for f in r.families if f.name.startswith("lmcache_mp_")
               and f.status in ("populated", "zero")]
    pushed = [f.found_as or f.name for f in present if f.source and any(
        e.kind == "otel" and e.source == f.source for e in r.evidence)]
    scraped = has_mp_scrape(r)
    # The log line alone says where metrics went; an OTLP export is the surface itself.
    if not scraped and not via_otlp and not pushed:
        return
    if via_otlp:
        where = ("the pull scrape has only process metrics" if scraped else
                 "the packet has no pull scrape")
        yield finding("lmcache_mp_metrics_via_otlp",
                      f"the server log says metrics go to OTLP; {where}"
                      + (f" (the packet's OTLP export carries {len(pushed)} lmcache_mp families)"
                    if pushed else ""),
                      SUPPORTED, ["log: OTel MeterProvider initialised with OTLP exporter",
                                  *pushed[:3]])
        if not present:
            return
    elif not present:
        yield finding("lmcache_mp_metrics_missing",
                      "an LMCache scrape is in the packet but holds no lmcache_mp_* family",
                      MISSING_SIGNAL, [e.source for e in r.evidence if e.kind == "lmcache_metrics"])
        return
    if not r.conditions.get("traffic"):
        absent = [f.name for f in r.families if f.name.startswith("lmcache_mp_")
                  and f.status == "missing" and "first use" in (f.explanation or "")]
        if absent:
            yield finding("lmcache_families_not_created_yet",
                          f"{len(absent)} lmcache_mp_* families are created on first use and no "
                          "request reached the cache in this evidence", SUPPORTED, absent[:8])
    if r.missing_required:
        yield finding("lmcache_required_family_missing",
                      "missing required: " + ", ".join(r.missing_required), MISSING_SIGNAL,
                      r.missing_required)
    look = r.group("mp_lookup_tokens")
    l1 = r.group("mp_l1")
    if look is not None and look.status == "missing" and l1 is not None and l1.status in (
            "populated", "partial") and r.conditions.get("traffic"):
        yield finding("lmcache_mp_lookup_counters_missing",
                      "L1 families are present but lmcache_mp_lookup_* never appeared",
                      MISSING_SIGNAL, ["lmcache_mp_lookup_requested_tokens_total",
                                  "lmcache_mp_lookup_hit_tokens_total"])
    transfer = [f for f in r.families if f.group in ("mp_transfer", "mp_l0_l1_throughput",
                                                     "mp_engine_loaded")
                and f.status == "not_applicable" and "lmcache-driven" in (f.explanation or "")]
    if transfer and r.conditions.get("traffic"):
        yield finding("lmcache_transfer_path_families_absent",
                      f"{len(transfer)} store/retrieve/L0->L1 families are absent: this run "
                      "used the engine-driven path", PARTIAL, [f.name for f in transfer[:6]])


@rule(emits=("lmcache_zero_hits_after_warmup",))
def zero_hits(r: CompatReport) -> Iterator[Finding]:
    for req, hit in (("lmcache_mp_lookup_requested_tokens_total",
                      "lmcache_mp_lookup_hit_tokens_total"),
                     ("lmcache:num_requested_tokens", "lmcache:num_hit_tokens"),
                     ("vllm:external_prefix_cache_queries", "vllm:external_prefix_cache_hits")):
        lookups = total_of(r, req)
        if lookups > 0 and r.family(hit) is not None and total_of(r, hit) == 0:
            cause = zero_hit_cause(r)
            yield finding("lmcache_zero_hits_after_warmup",
                          f"{req}={lookups:g} but {hit}=0"
                          + (f"; most likely cause: {cause}" if cause else ""), SUPPORTED,
                          [req, hit])
            return


@rule(emits=("lmcache_l1_pressure",))
def l1_pressure(r: CompatReport) -> Iterator[Finding]:
    ev = []
    for name in ("lmcache_mp_l1_evicted_chunks_total",
                 "lmcache_mp_l1_allocation_failure_chunks_total",
                 "lmcache_mp_l1_eviction_loop_triggered_total", "lmcache:local_cpu_evict_count"):
        if total_of(r, name) > 0:
            ev.append(f"{name}={total_of(r, name):g}")
    logs = hints_of(r)
    for hint in ("allocation_failure", "l1_eviction_triggered"):
        if logs.get(hint):
            ev.append(f"log: {hint} x{logs[hint]}")
    if ev:
        measured = any("=" in e for e in ev)
        yield finding("lmcache_l1_pressure", "; ".join(ev), SUPPORTED if measured else INFERRED, ev)


@rule(emits=("lmcache_l2_stall",))
def l2_stall(r: CompatReport) -> Iterator[Finding]:
    sub = total_of(r, "lmcache_mp_l2_store_submitted_requests_total")
    done = total_of(r, "lmcache_mp_l2_store_completed_requests_total")
    ev = []
    if sub > 0 and done < sub:
        ev.append(f"L2 stores submitted {sub:g}, completed {done:g}")
    if total_of(r, "lmcache_mp_l2_prefetch_failure_chunks_total") > 0:
        ev.append("lmcache_mp_l2_prefetch_failure_chunks_total > 0")
    if hints_of(r).get("l2_store_failed"):
        ev.append(f"log: L2 store failed x{hints_of(r)['l2_store_failed']}")
    if ev:
        yield finding("lmcache_l2_stall", "; ".join(ev),
                      SUPPORTED if any("log:" not in e for e in ev) else INFERRED, ev)


@rule(emits=("lmcache_event_bus_drop_risk", "lmcache_event_bus_drops_unobservable"))
def event_bus(r: CompatReport) -> Iterator[Finding]:
    obs = r.lmcache_mp_observability
    if obs is None or r.effective_mode != "mp":
        return
    if obs.event_bus.dropped_events is None:
        if any(f.name.startswith("lmcache_mp_") and f.status in ("populated", "zero")
               for f in r.families):
            yield finding("lmcache_event_bus_drops_unobservable", obs.event_bus.tail_drop_risk,
                          MISSING_SIGNAL, [])
    elif obs.event_bus.dropped_events > 0 or hints_of(r).get("event_bus_full"):
        yield finding("lmcache_event_bus_drop_risk", obs.event_bus.tail_drop_risk, SUPPORTED,
                      ["lmcache_mp_event_bus_dropped_events_total"])


@rule(emits=("lmcache_mp_first_chunk_never_stored",))
def first_chunk_never_stored(r: CompatReport) -> Iterator[Finding]:
    """A storage trace where prefix lookups were followed by a reserve_write of every key but
    the first, the first key never written and never read back (LMCache 0.5.7
    lmcache_driven_transfer.py::all_null_chunk_masks with --null-block-id 0)."""
    for t in r.facts.traces:
        g = t.first_chunk_gaps
        if g is None or not g.gap_lookups or g.gap_lookups_read:
            continue
        flag = ", ".join(sorted(set(r.facts.null_block_ids)))
        yield finding("lmcache_mp_first_chunk_never_stored",
                      f"{t.source}: {g.gap_lookups} of {g.lookups} prefix lookups were stored "
                      "without their first chunk (reserve_write with one key fewer than the "
                      "lookup) and none was read back, first at offset "
                      f"{g.first_offset}"
                      + (f"; lmcache server --null-block-id: {flag}" if flag else ""),
                      SUPPORTED, [t.source])


@rule(emits=("lmcache_mp_server_unhealthy",))
def health(r: CompatReport) -> Iterator[Finding]:
    h = r.facts.http
    if h is not None and (h.healthy is False or h.periodic_threads_healthy is False):
        ev = [f"/healthcheck healthy={h.healthy}"]
        if h.unhealthy_threads:
            ev.append("unhealthy threads: " + ", ".join(h.unhealthy_threads))
        yield finding("lmcache_mp_server_unhealthy", "; ".join(ev), SUPPORTED, ev)


@rule(emits=("lmcache_sampled_histograms_sparse",))
def sampled_histograms(r: CompatReport) -> Iterator[Finding]:
    obs = r.lmcache_mp_observability
    if obs is None or obs.sampled_histograms.sample_rate >= 1.0 or not r.conditions.get("traffic"):
        return
    if not _mp_families_measured(r):  # no MP scrape or OTLP export: nothing can be sparse
        return
    sparse = [n for n, c in obs.sampled_histograms.families.items() if c == 0]
    if sparse:
        yield finding("lmcache_sampled_histograms_sparse",
                      obs.sampled_histograms.explanation + f"; {len(sparse)} have no observation",
                      PARTIAL, sparse[:6])




def _mp_families_measured(r: CompatReport) -> bool:
    """Some lmcache_mp_* family came from a scrape or an OTLP export in the packet."""
    kinds = {e.source: e.kind for e in r.evidence}
    return any(f.name.startswith("lmcache_mp_") and f.status in ("populated", "zero")
               and kinds.get(f.source or "") in ("lmcache_metrics", "otel") for f in r.families)
