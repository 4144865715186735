"""CacheBlend (`lmcache server --engine-type blend`): telemetry traps seen on 0.5.6."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._reads import hints_of, measured_or_log, total_of
from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._blend import JIT_OUTLIER_MS, BlendDigest, SpanDurations, jit_outlier
from inferguard.judge._mode import SUPPORTED
from inferguard.judge._report import CompatReport


def _blend(r: CompatReport) -> BlendDigest:
    return r.facts.blend or BlendDigest()


def _blend_failures(r: CompatReport) -> tuple[float, int]:
    """(retrieve_failures_total, cb.retrieve spans with success=False)."""
    spans = _blend(r).retrieve_success_spans
    return total_of(r, "lmcache_blend_retrieve_failures_total"), spans.get("False", 0)


@rule(emits=("lmcache_blend_no_gpu_context", "lmcache_blend_retrieve_failures"))
def blend(r: CompatReport) -> Iterator[Finding]:
    b, logs = _blend(r), hints_of(r)
    fails, span_fails = _blend_failures(r)
    ev = []
    if fails > 0:
        ev.append(f"lmcache_blend_retrieve_failures_total={fails:g} of "
                  f"{total_of(r, 'lmcache_blend_retrieve_requests_total'):g} retrieves")
    if span_fails:
        ev.append(f"{span_fails} cb.retrieve span(s) with success=False (span status unset)")
    if logs.get("blend_retrieve_failed"):
        ev.append(f"log: CB retrieve failing x{logs['blend_retrieve_failed']}")
    if ev:
        yield finding("lmcache_blend_retrieve_failures",
                      "; ".join(ev) + ": the engine degrades those requests to full recompute",
                      measured_or_log(ev), ev)
    ev = []
    if (n := total_of(r, "lmcache_blend_lookup_no_gpu_context_errors_total")) > 0:
        ev.append(f"lmcache_blend_lookup_no_gpu_context_errors_total={n:g}")
    if b.lookup_no_gpu_context_spans:
        ev.append(f"{b.lookup_no_gpu_context_spans} cb.lookup span(s) with "
                  "no_gpu_context=True (cb.fingerprint_match still reports its matches)")
    if logs.get("blend_no_gpu_context"):
        models = r.facts.log_values.get("blend_no_gpu_context.model", [])
        ev.append(f"log: No CB GPU context x{logs['blend_no_gpu_context']}"
                  + (f" (model {', '.join(models[:3])})" if models else ""))
    if ev:
        yield finding("lmcache_blend_no_gpu_context", "; ".join(ev), measured_or_log(ev), ev)


@rule(emits=("lmcache_blend_scatter_counts_attempts",))
def blend_scatter_attempts(r: CompatReport) -> Iterator[Finding]:
    fails, span_fails = _blend_failures(r)
    if not (fails or span_fails):
        return
    counted = [f"{n}={total_of(r, n):g}" for n in (
        "lmcache_blend_scatter_tokens_total", "lmcache_blend_scatter_shifted_chunks_total",
        "lmcache_blend_retrieve_chunks_total") if total_of(r, n) > 0]
    b = _blend(r)
    if b.scatter_success_spans.get("False") and b.scatter_tokens_spans:
        counted.append(f"cb.scatter scattered_tokens={b.scatter_tokens_spans:g} on "
                       f"{b.scatter_success_spans['False']} span(s) with success=False")
    if counted:
        yield finding("lmcache_blend_scatter_counts_attempts",
                      "; ".join(counted) + f" although {max(fails, span_fails):g} retrieve(s) "
                      "failed: these count attempts, not KV written", SUPPORTED, counted)


@rule(emits=("lmcache_blend_stale_fingerprints",))
def blend_stale(r: CompatReport) -> Iterator[Finding]:
    b, logs = _blend(r), hints_of(r)
    ev = []
    if (n := total_of(r, "lmcache_blend_lookup_stale_chunks_total")) > 0:
        ev.append(f"lmcache_blend_lookup_stale_chunks_total={n:g}")
        if (ev_n := total_of(r, "lmcache_blend_chunks_evicted_total")) > 0:
            ev.append(f"lmcache_blend_chunks_evicted_total={ev_n:g}")
    if b.lookup_stale_chunks_spans:
        ev.append(f"cb.lookup stale_chunks={b.lookup_stale_chunks_spans:g}")
    if logs.get("blend_sparse_stale"):
        ev.append(f"log: CB sparse classify with stale chunks x{logs['blend_sparse_stale']}")
    if ev:
        yield finding("lmcache_blend_stale_fingerprints",
                      "; ".join(ev) + ": matched by fingerprint, gone from storage (evicted)",
                      measured_or_log(ev), ev)


@rule(emits=("lmcache_blend_retrieve_noops",))
def blend_noops(r: CompatReport) -> Iterator[Finding]:
    b = _blend(r)
    ev = [f"lmcache_blend_retrieve_noops_total{{reason={k}}}={v:g}"
          for k, v in b.noop_reasons_metric.items() if v]
    ev += [f"cb.retrieve.noop reason={k} x{v}" for k, v in b.noop_reasons_spans.items()]
    counted = set(b.noop_reasons_metric) | set(b.noop_reasons_spans)
    logged = [x for x in b.noop_reasons_log if x not in counted]
    if logged:
        ev.append(f"log: no scatter ({', '.join(logged)}): no metric, no span")
    if ev:
        yield finding("lmcache_blend_retrieve_noops", "; ".join(ev), measured_or_log(ev), ev)


@rule(emits=("lmcache_blend_lookup_spans_held_open",))
def blend_held_open(r: CompatReport) -> Iterator[Finding]:
    b = _blend(r)
    held, orphans = b.lookups_held_over_1s, b.orphan_cb_spans
    if not held and not orphans:
        return
    ev = []
    if held:
        ev.append(f"{b.lookups_awaiting_retrieve} cb.request span(s) with a matching "
                  f"cb.lookup and no cb.retrieve/cb.retrieve.noop; {held} lasted over 1 s "
                  f"(longest {(b.awaiting_retrieve_max_ms or 0) / 1e3:.1f} s): closed "
                  "only at server shutdown")
    if orphans:
        ev.append("orphaned CacheBlend spans (root never exported): " + ", ".join(
            f"{k} x{v}" for k, v in sorted(orphans.items())))
    yield finding("lmcache_blend_lookup_spans_held_open", "; ".join(ev), SUPPORTED, ev)


@rule(emits=("lmcache_blend_sparse_prefetch_l2_keys_not_l2",))
def blend_sparse_l2_keys(r: CompatReport) -> Iterator[Finding]:
    n = total_of(r, "lmcache_blend_sparse_prefetch_l2_keys_total")
    if n <= 0:
        return
    ev = [f"lmcache_blend_sparse_prefetch_l2_keys_total={n:g}"]
    if not r.conditions.get("l2") and not r.conditions.get("l2_seen"):
        ev.append("no L2 adapter is configured")
    b = _blend(r)
    if b.sparse_keys_spans:
        ev.append(f"cb.sparse_prefetch spans: n_keys={b.sparse_keys_spans:g}, "
                  f"l2_keys={b.sparse_l2_keys_spans or 0:g} (the END value)")
    yield finding("lmcache_blend_sparse_prefetch_l2_keys_not_l2",
                  "; ".join(ev) + ": the counter adds the START event's l2_keys, which is every "
                  "submitted key (L1 hits included)", SUPPORTED, ev)


@rule(emits=("lmcache_blend_fingerprint_match_jit_outlier",))
def blend_jit_outlier(r: CompatReport) -> Iterator[Finding]:
    b = _blend(r)
    ev = []
    count = b.fingerprint_match_count
    if jit_outlier(b.fingerprint_match_buckets, count):
        ev.append(f"lmcache_blend_fingerprint_match_duration_milliseconds: 1 of {count:g} "
                  f"observations above {JIT_OUTLIER_MS:g} ms")
    sp = b.fingerprint_match_spans or SpanDurations()
    # One slow span: the max is far above the median, and (when there are enough spans for
    # p90 to differ from the max) p90 is fast too.
    if ((sp.max_ms or 0) >= JIT_OUTLIER_MS
            and (sp.p50_ms or 0) < JIT_OUTLIER_MS / 10
            and ((sp.p90_ms or 0) < JIT_OUTLIER_MS or sp.count < 10)):
        ev.append(f"cb.fingerprint_match: max {sp.max_ms or 0:.0f} ms, median "
                  f"{sp.p50_ms or 0:.1f} ms over {sp.count} spans")
    if ev:
        yield finding("lmcache_blend_fingerprint_match_jit_outlier", "; ".join(ev), SUPPORTED, ev)


