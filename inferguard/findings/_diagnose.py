"""`diagnose(report)`: findings with stable codes from a compat report.

`FINDING_CODES` is the reference table (code -> severity, title, next step); each rule is
one small function registered in `RULES` that reads the report and returns findings. A
finding says what evidence it rests on and its evidence level: log-only findings are
`inferred_without_engine_metrics` unless measured metrics, HTTP or trace evidence agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import msgspec

from inferguard.evidence._controller import (
    INACTIVE_HEARTBEAT_S,
    STALE_HEARTBEAT_S,
    WORKER_LIST_CACHE_S,
)
from inferguard.judge._blend import JIT_OUTLIER_MS, jit_outlier
from inferguard.judge._compat import CompatReport, FamilyResult
from inferguard.judge._mode import INFERRED, MISSING_SIGNAL, PARTIAL, SUPPORTED

DIAGNOSIS_SCHEMA = "inferguard.diagnosis/1"
# Heartbeat ages are judged with the controller's 30-s worker-list cache added: a listing
# can be that old, so only ages beyond threshold + cache are certain.
_STALE_S = STALE_HEARTBEAT_S + WORKER_LIST_CACHE_S
_INACTIVE_S = INACTIVE_HEARTBEAT_S + WORKER_LIST_CACHE_S
Severity = Literal["info", "warning", "error"]


class CodeSpec(msgspec.Struct, frozen=True):
    severity: Severity
    title: str
    next_step: str


FINDING_CODES: dict[str, CodeSpec] = {
    "lmcache_mode_mismatch": CodeSpec(
        "error", "the evidence shows a different LMCache mode than expected",
        "check the connector in the vLLM/SGLang launch and which server the metrics came from"),
    "lmcache_mode_undetermined": CodeSpec(
        "warning", "no mode could be determined from the evidence",
        "add LMCache /metrics, the server log, HTTP status or the launch command"),
    "lmcache_mp_metrics_missing": CodeSpec(
        "error", "the LMCache scrape has no lmcache_mp_* family",
        "scrape /metrics on the MP server's HTTP port (not --prometheus-port); check "
        "--disable-metrics / --disable-observability, and OTLP-only metric export"),
    "lmcache_mp_metrics_via_otlp": CodeSpec(
        "info", "MP metrics are pushed over OTLP, so the pull /metrics carries none",
        "read lmcache_mp.* from the OTLP collector, or restart without the OTLP metrics endpoint"),
    "lmcache_required_family_missing": CodeSpec(
        "error", "required metric families are missing while the cache saw traffic",
        "compare the LMCache version and launch flags with the catalog; rescrape after load"),
    "lmcache_mp_lookup_counters_missing": CodeSpec(
        "warning", "lookup token counters never appeared although L1/StorageManager families did",
        "drive lookups through the MP connector (LOOKUP requests) and rescrape"),
    "lmcache_families_not_created_yet": CodeSpec(
        "info", "lazily created families are absent because no traffic reached the cache yet",
        "send requests (cold then warm) and scrape again; this is not a broken integration"),
    "lmcache_transfer_path_families_absent": CodeSpec(
        "info", "store/retrieve and L0->L1 throughput families exist only on the "
        "lmcache-driven transfer path", "expected on the engine-driven path; nothing to fix"),
    "lmcache_zero_hits_after_warmup": CodeSpec(
        "warning", "lookups ran but no token ever hit",
        "repeat identical prefixes; check chunk size vs prompt length, the hash seed across "
        "processes, and L1 capacity"),
    "lmcache_hash_seed_risk": CodeSpec(
        "warning", "processes that must share keys may hash differently",
        "set the same PYTHONHASHSEED in every process (controller included) and compare the "
        "NONE_HASH log lines"),
    "lmcache_l1_pressure": CodeSpec(
        "warning", "L1 is under pressure: evictions or allocation failures",
        "raise --l1-size-gb or lower the working set; check eviction watermark and L2"),
    "lmcache_l2_stall": CodeSpec(
        "warning", "L2 stores or prefetches are not completing",
        "check the L2 adapter's health and latency; compare submitted vs completed counters"),
    "lmcache_event_bus_drop_risk": CodeSpec(
        "warning", "EventBus drops would make metrics undercount",
        "raise --event-bus-queue-size; watch lmcache_mp_event_bus_dropped_events_total"),
    "lmcache_event_bus_drops_unobservable": CodeSpec(
        "info", "the EventBus drop counter is absent: tail drops would be invisible",
        "scrape the MP server's /metrics with observability enabled"),
    "lmcache_mp_server_unhealthy": CodeSpec(
        "error", "the MP server reports itself unhealthy",
        "read /healthcheck and /periodic-threads-health; check the server log"),
    "lmcache_tracing_evidence_missing": CodeSpec(
        "warning", "tracing was declared enabled but no span evidence is in the packet",
        "export spans to JSON lines with an OTLP collector and add them with "
        "--lmcache-otel-file"),
    "lmcache_trace_recording_missing": CodeSpec(
        "warning", "trace recording was declared enabled but no .lct is in the packet",
        "add the file named by --trace-output (or $TMPDIR/lmcache-trace-<pid>-*.lct)"),
    "lmcache_trace_damaged": CodeSpec(
        "warning", "the .lct trace is damaged or unreadable",
        "keep the server running until it closes the trace (SIGINT, not SIGKILL); read the "
        "integrity findings for offsets"),
    "lmcache_trace_no_reads": CodeSpec(
        "info", "the trace records writes but no reads", "run warm requests that hit the cache"),
    "lmcache_sampled_histograms_sparse": CodeSpec(
        "info", "lifecycle and reuse histograms are sampled",
        "use --metrics-sample-rate 1.0 in a lab to see every key"),
    "lmcache_embedded_metrics_not_exported": CodeSpec(
        "warning", "the engine /metrics has no lmcache:* family",
        "export PROMETHEUS_MULTIPROC_DIR before launching vLLM, or enable LMCache's internal "
        "API server; vllm:external_prefix_cache_* still shows connector hits"),
    "lmcache_configured_but_not_working": CodeSpec(
        "error", "LMCache is configured but not working: the engine serves without it",
        "read the engine log for LMCache's initialisation error; lmcache 0.5.6 has no "
        "in-process vLLM connector for CPU (use lmcache server with LMCacheMPConnector); until "
        "fixed every lookup waits for an RPC timeout and the prompt is recomputed"),
    "lmcache_vllm_hits_reconciled": CodeSpec(
        "info", "vLLM's external prefix-cache hits and LMCache's lookup hit tokens differ by "
        "design", "vLLM counts tokens the connector loaded; LMCache counts every lookup hit, "
        "including prefixes vLLM still held locally; join the series through the launch: "
        "LMCache model_name = --model (path), vLLM model_name = --served-model-name"),
    "lmcache_sglang_hicache_only": CodeSpec(
        "warning", "SGLang HiCache metrics without any LMCache evidence",
        "HiCache is SGLang's own tiering; add --enable-lmcache evidence to claim LMCache"),
    "lmcache_log_p2p_evidence_present": CodeSpec(
        "info", "logs show P2P activity", "pair with lmcache:p2p_* on the serving peer and the "
                                          "requester's retrieve counters"),
    "lmcache_log_pd_evidence_present": CodeSpec(
        "info", "logs show disaggregated-prefill activity",
        "pair with the decoder's retrieve counters and a TTFT baseline"),
    "lmcache_log_stale_connector": CodeSpec(
        "warning", "the legacy LMCacheConnector (vLLM V0) is in use",
        "move to LMCacheConnectorV1 or LMCacheMPConnector unless an old stack is pinned"),
    "lmcache_blend_retrieve_failures": CodeSpec(
        "warning", "CacheBlend retrieves fail (the engine recomputes those requests)",
        "check GPU context and native retrieve support (cuda_ops with "
        "execute_cb_retrieve_plan_flat); see cb.retrieve spans with success=False"),
    "lmcache_blend_no_gpu_context": CodeSpec(
        "warning", "CacheBlend lookups found no GPU context",
        "register the engine's KV caches for that model (REGISTER_KV_CACHE) before CB lookups"),
    "lmcache_blend_scatter_counts_attempts": CodeSpec(
        "info", "CacheBlend scatter and retrieve-chunk counters rose for retrieves that failed",
        "they count attempts (added at START); use retrieve_failures_total and the "
        "cb.scatter success attribute for what was really written"),
    "lmcache_blend_stale_fingerprints": CodeSpec(
        "warning", "CacheBlend fingerprint matches pointed at chunks no longer stored",
        "raise L1 (or add L2) so matched chunks survive until reuse; watch "
        "lookup_stale_chunks_total and chunks_evicted_total"),
    "lmcache_blend_retrieve_noops": CodeSpec(
        "warning", "CacheBlend retrieves scattered nothing (by reason); those requests "
        "recompute", "size the engine's block table for the matched positions "
        "(matches_beyond_alloc / matches_straddle_alloc); only straddle is counted"),
    "lmcache_blend_lookup_spans_held_open": CodeSpec(
        "info", "cb.request spans stayed open: lookups with matches were never retrieved",
        "their durations are server lifetime, not latency; exclude them, and retrieve (or "
        "end) every lookup that returned matches"),
    "lmcache_blend_sparse_prefetch_l2_keys_not_l2": CodeSpec(
        "info", "lmcache_blend_sparse_prefetch_l2_keys_total counts every submitted key, "
        "not L2 reads", "read L2 hits from the cb.sparse_prefetch span's l2_keys (END value) "
        "or the lmcache_mp_l2_* families"),
    "lmcache_blend_fingerprint_match_jit_outlier": CodeSpec(
        "info", "one slow fingerprint match stands out: the first lookup's JIT compile",
        "leave the first CB lookup of a process out of latency percentiles, or warm up"),
    "lmcache_controller_only_evidence": CodeSpec(
        "info", "only the LMCache controller answered: control-plane state, not cache "
        "performance proof", "add the engines' /metrics (or their internal API servers') and "
        "LMCache logs to judge reuse"),
    "lmcache_controller_worker_stale": CodeSpec(
        "warning", "the controller lists workers without a heartbeat for over 60 s (90 s "
        "with its 30-s list cache)",
        "check the worker processes and lmcache_worker_heartbeat_time; without "
        "--health-check-interval the controller never expires a worker"),
    "lmcache_controller_worker_listed_after_stop": CodeSpec(
        "warning", "the controller still lists a worker that stopped",
        "a worker that exits without deregistering stays listed until "
        "--health-check-interval expires it (default -1: never), and P2P lookups may still "
        "be routed to it; a deregistered one can show for up to 30 s (list cache)"),
    "lmcache_controller_full_sync_gauge_stuck": CodeSpec(
        "info", "the controller logged a full sync complete while "
        "full_sync_workers_completed reads 0", "the gauge (like /controller/workers and "
        "registered_workers_count) reads a 30-s worker cache: rescrape after 30 s, and trust "
        "the controller log for completion"),
    "lmcache_controller_peer_init_url_missing": CodeSpec(
        "warning", "P2P is expected but workers registered without a peer init URL",
        "set enable_p2p, p2p_host and p2p_init_ports on every engine (the same PYTHONHASHSEED "
        "too) and restart it so it registers its peer URL"),
    "lmcache_controller_threads_unhealthy": CodeSpec(
        "warning", "the controller or an engine's internal API reports unhealthy periodic "
        "threads", "read /periodic-threads for last_run_ago and failed_runs; check its log"),
    "lmcache_trace_replay_failures": CodeSpec(
        "warning", "trace replay had failing handlers",
        "replay 'failed' means a handler raised; misses are invisible to replay"),
    "lmcache_trace_replay_config_mismatch": CodeSpec(
        "info", "the replay ran with a different StorageManager config than recorded",
        "replay with the recorded flags to compare like with like"),
    "lmcache_lookup_hash_rotation_gap": CodeSpec(
        "info", "lookup-hash log files are missing from the rotation sequence",
        "raise max_files or collect before rotation deletes them"),
    "lmcache_lookup_hash_evidence_present": CodeSpec(
        "info", "lookup-hash logs show repeated chunks (reuse potential)",
        "compare with lookup hit counters to see how much reuse was served"),
    # Trace analytics (inferguard.trace_stats): "trace_<x>" arrives as "lmcache_trace_<x>".
    "lmcache_trace_no_object_keys": CodeSpec(
        "warning", "the trace has records but no ObjectKey arguments",
        "check the LMCache version's trace codec; keys are what reuse is judged on"),
    "lmcache_trace_malformed_object_keys": CodeSpec(
        "warning", "some ObjectKey arguments in the trace cannot be read",
        "see the offsets; the recorder or the file is damaged there"),
    "lmcache_trace_key_stats_sampled": CodeSpec(
        "info", "per-key trace numbers are estimates (too many distinct keys to count exactly)",
        "read the standard errors beside the numbers"),
    "lmcache_trace_reads_of_unwritten_keys": CodeSpec(
        "info", "reads of keys the trace never saw written",
        "normal when the trace started after the writes (or L2 loaded them)"),
    "lmcache_trace_leaked_read_contexts": CodeSpec(
        "warning", "read_prefetched_results entered but never exited (read locks held)",
        "look at the offsets: those reads hold L1 read locks until the context exits"),
    "lmcache_trace_exit_without_enter": CodeSpec(
        "info", "read contexts exited without an enter in the trace",
        "normal when the trace started mid-request"),
    "lmcache_trace_unfinished_writes": CodeSpec(
        "warning", "reserve_write never finished (write-locked space not released)",
        "look at the offsets; unfinished writes pin L1 space until their TTL"),
    "lmcache_trace_finish_without_reserve": CodeSpec(
        "info", "finish_write without a reserve in the trace",
        "normal when the trace started mid-write"),
    "lmcache_trace_write_amplification": CodeSpec(
        "warning", "the same keys are stored more than once",
        "check that lookups run before stores, and the L1 size against the working set"),
    "lmcache_trace_unserved_prefetches": CodeSpec(
        "warning", "keys prefetched after being written were never read",
        "compare with lookup hit counters: prefetched data was not used"),
    "lmcache_trace_events_restarts": CodeSpec(
        "warning", "the events trace shows cache server restarts",
        "a restart drops L1; read the server log around those times"),
    "lmcache_trace_events_delete_without_store": CodeSpec(
        "info", "deletes of keys the events trace never saw stored",
        "normal when the trace started after the stores"),
    "lmcache_evidence_malformed": CodeSpec(
        "warning", "some evidence could not be read",
        "see the evidence problems for file and line"),
}


class Finding(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    severity: str
    level: str
    message: str
    next_step: str
    evidence: list[str] = msgspec.field(default_factory=list)


class Diagnosis(msgspec.Struct, frozen=True):
    mode: str
    findings: list[Finding]
    schema: str = DIAGNOSIS_SCHEMA

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]


def _f(code: str, message: str, level: str, evidence: list[str]) -> Finding:
    spec = FINDING_CODES[code]
    return Finding(code, spec.severity, level, message, spec.next_step, evidence)


Rule = Callable[[CompatReport], Iterator[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def _fam(r: CompatReport, name: str) -> FamilyResult | None:
    return r.family(name)


def _total(r: CompatReport, name: str) -> float:
    f = r.family(name)
    return (f.total or 0.0) if f is not None and f.total is not None else 0.0


def _logs(r: CompatReport) -> dict[str, int]:
    hints: dict[str, int] = r.facts.get("log_hints", {})
    return hints


def _has_mp_scrape(r: CompatReport) -> bool:
    return any(e.kind == "lmcache_metrics" and e.status in ("ok", "partial") for e in r.evidence)


def _measured(r: CompatReport) -> bool:
    return any(e.kind in ("lmcache_metrics", "engine_metrics", "http", "trace")
               and e.status in ("ok", "partial") for e in r.evidence)


@rule
def mode_mismatch(r: CompatReport) -> Iterator[Finding]:
    if r.expected_mode and r.mode_match is False and r.detected.mode != "unknown":
        yield _f("lmcache_mode_mismatch",
                 f"expected {r.expected_mode}, the evidence shows {r.detected.mode} "
                 f"(confidence {r.detected.confidence:g})", r.detected.level,
                 [e.detail for c in r.detected.candidates[:1] for e in c.evidence[:3]])
    if r.detected.mode == "unknown":
        yield _f("lmcache_mode_undetermined", "no LMCache mode reaches the detection threshold",
                 MISSING_SIGNAL, [])


@rule
def mp_metrics(r: CompatReport) -> Iterator[Finding]:
    if r.effective_mode != "mp" or not _has_mp_scrape(r):
        return
    present = [f for f in r.families if f.name.startswith("lmcache_mp_")
               and f.status in ("populated", "zero")]
    obs = r.lmcache_mp_observability
    if obs is not None and obs.disabled_by_config.metrics_via_otlp:
        pushed = [f.found_as or f.name for f in present if f.source and any(
            e.kind == "otel" and e.source == f.source for e in r.evidence)]
        yield _f("lmcache_mp_metrics_via_otlp",
                 "the server log says metrics go to OTLP; the scrape has only process metrics"
                 + (f" (the packet's OTLP export carries {len(pushed)} lmcache_mp families)"
                    if pushed else ""),
                 SUPPORTED, ["log: OTel MeterProvider initialised with OTLP", *pushed[:3]])
        if not present:
            return
    elif not present:
        yield _f("lmcache_mp_metrics_missing",
                 "an LMCache scrape is in the packet but holds no lmcache_mp_* family",
                 MISSING_SIGNAL, [e.source for e in r.evidence if e.kind == "lmcache_metrics"])
        return
    if not r.conditions.get("traffic"):
        absent = [f.name for f in r.families if f.name.startswith("lmcache_mp_")
                  and f.status == "missing" and "first use" in (f.explanation or "")]
        if absent:
            yield _f("lmcache_families_not_created_yet",
                     f"{len(absent)} lmcache_mp_* families are created on first use and no "
                     "request reached the cache in this evidence", SUPPORTED, absent[:8])
    if r.missing_required:
        yield _f("lmcache_required_family_missing",
                 "missing required: " + ", ".join(r.missing_required), MISSING_SIGNAL,
                 r.missing_required)
    look = r.group("mp_lookup_tokens")
    l1 = r.group("mp_l1")
    if look is not None and look.status == "missing" and l1 is not None and l1.status in (
            "populated", "partial") and r.conditions.get("traffic"):
        yield _f("lmcache_mp_lookup_counters_missing",
                 "L1 families are present but lmcache_mp_lookup_* never appeared",
                 MISSING_SIGNAL, ["lmcache_mp_lookup_requested_tokens_total",
                                  "lmcache_mp_lookup_hit_tokens_total"])
    transfer = [f for f in r.families if f.group in ("mp_transfer", "mp_l0_l1_throughput",
                                                     "mp_engine_loaded")
                and f.status == "not_applicable" and "lmcache-driven" in (f.explanation or "")]
    if transfer and r.conditions.get("traffic"):
        yield _f("lmcache_transfer_path_families_absent",
                 f"{len(transfer)} store/retrieve/L0->L1 families are absent: this run used the "
                 "engine-driven path", PARTIAL, [f.name for f in transfer[:6]])


@rule
def zero_hits(r: CompatReport) -> Iterator[Finding]:
    for req, hit in (("lmcache_mp_lookup_requested_tokens_total",
                      "lmcache_mp_lookup_hit_tokens_total"),
                     ("lmcache:num_requested_tokens", "lmcache:num_hit_tokens"),
                     ("vllm:external_prefix_cache_queries", "vllm:external_prefix_cache_hits")):
        lookups = _total(r, req)
        if lookups > 0 and _fam(r, hit) is not None and _total(r, hit) == 0:
            yield _f("lmcache_zero_hits_after_warmup",
                     f"{req}={lookups:g} but {hit}=0", SUPPORTED, [req, hit])
            return


@rule
def hash_seed(r: CompatReport) -> Iterator[Finding]:
    logs = _logs(r)
    values: dict[str, list[str]] = r.facts.get("log_values", {})
    none_hashes = set(values.get("none_hash.value", []))
    seeds = set(r.facts.get("launch_env", {}).get("PYTHONHASHSEED", []))
    ev: list[str] = []
    if logs.get("hash_seed_warning"):
        ev.append(f"log: {logs['hash_seed_warning']} hash-seed warning lines")
    if len(none_hashes) > 1:
        ev.append(f"log: NONE_HASH differs across processes: {sorted(none_hashes)}")
    if len(seeds) > 1:
        ev.append(f"launch: PYTHONHASHSEED differs: {sorted(seeds)}")
    cross = r.effective_mode in ("p2p", "pd") or r.detected.mode in ("p2p", "pd")
    if cross and not seeds and not ev:
        ev.append("cross-process mode without a recorded PYTHONHASHSEED")
    if ev:
        level = PARTIAL if len(none_hashes) > 1 or len(seeds) > 1 else INFERRED
        yield _f("lmcache_hash_seed_risk", "; ".join(ev), level, ev)


@rule
def l1_pressure(r: CompatReport) -> Iterator[Finding]:
    ev = []
    for name in ("lmcache_mp_l1_evicted_chunks_total",
                 "lmcache_mp_l1_allocation_failure_chunks_total",
                 "lmcache_mp_l1_eviction_loop_triggered_total", "lmcache:local_cpu_evict_count"):
        if _total(r, name) > 0:
            ev.append(f"{name}={_total(r, name):g}")
    logs = _logs(r)
    for hint in ("allocation_failure", "l1_eviction_triggered"):
        if logs.get(hint):
            ev.append(f"log: {hint} x{logs[hint]}")
    if ev:
        measured = any("=" in e for e in ev)
        yield _f("lmcache_l1_pressure", "; ".join(ev), SUPPORTED if measured else INFERRED, ev)


@rule
def l2_stall(r: CompatReport) -> Iterator[Finding]:
    sub = _total(r, "lmcache_mp_l2_store_submitted_requests_total")
    done = _total(r, "lmcache_mp_l2_store_completed_requests_total")
    ev = []
    if sub > 0 and done < sub:
        ev.append(f"L2 stores submitted {sub:g}, completed {done:g}")
    if _total(r, "lmcache_mp_l2_prefetch_failure_chunks_total") > 0:
        ev.append("lmcache_mp_l2_prefetch_failure_chunks_total > 0")
    if _logs(r).get("l2_store_failed"):
        ev.append(f"log: L2 store failed x{_logs(r)['l2_store_failed']}")
    if ev:
        yield _f("lmcache_l2_stall", "; ".join(ev),
                 SUPPORTED if any("log:" not in e for e in ev) else INFERRED, ev)


@rule
def event_bus(r: CompatReport) -> Iterator[Finding]:
    obs = r.lmcache_mp_observability
    if obs is None or r.effective_mode != "mp":
        return
    if obs.event_bus.dropped_events is None:
        if any(f.name.startswith("lmcache_mp_") and f.status in ("populated", "zero")
               for f in r.families):
            yield _f("lmcache_event_bus_drops_unobservable", obs.event_bus.tail_drop_risk,
                     MISSING_SIGNAL, [])
    elif obs.event_bus.dropped_events > 0 or _logs(r).get("event_bus_full"):
        yield _f("lmcache_event_bus_drop_risk", obs.event_bus.tail_drop_risk, SUPPORTED,
                 ["lmcache_mp_event_bus_dropped_events_total"])


@rule
def health(r: CompatReport) -> Iterator[Finding]:
    h = r.facts.get("http") or {}
    if h.get("healthy") is False or h.get("periodic_threads_healthy") is False:
        ev = [f"/healthcheck healthy={h.get('healthy')}"]
        if h.get("unhealthy_threads"):
            ev.append("unhealthy threads: " + ", ".join(h["unhealthy_threads"]))
        yield _f("lmcache_mp_server_unhealthy", "; ".join(ev), SUPPORTED, ev)


@rule
def tracing_gaps(r: CompatReport) -> Iterator[Finding]:
    kinds = {e.kind for e in r.evidence if e.status in ("ok", "partial")}
    if r.settings.mp_tracing_enabled and "otel" not in kinds:
        yield _f("lmcache_tracing_evidence_missing", "--mp-tracing-enabled but no OTel evidence",
                 MISSING_SIGNAL, [])
    if r.settings.mp_trace_recording_enabled and "trace" not in kinds:
        yield _f("lmcache_trace_recording_missing",
                 "--mp-trace-recording-enabled but no readable .lct", MISSING_SIGNAL, [])
    for t in r.facts.get("traces", []):
        if t["status"] != "ok":
            yield _f("lmcache_trace_damaged",
                     f"{t['source']}: {t['status']}, {t['problems']} problem(s)"
                     + (f", first at offset {t['first_problem_offset']}"
                        if t["first_problem_offset"] is not None else ""),
                     SUPPORTED, [t["source"]])
        ops: dict[str, int] = t["ops"]
        reads = sum(v for k, v in ops.items() if "read" in k)
        writes = sum(v for k, v in ops.items() if "write" in k)
        if writes and not reads:
            yield _f("lmcache_trace_no_reads", f"{t['source']}: {writes} write records, no read",
                     SUPPORTED, [t["source"]])


# Trace analytics codes already covered by tracing_gaps (damage, no reads).
_TRACE_COVERED = frozenset(["trace_damaged", "trace_no_read_records"])


@rule
def trace_analytics(r: CompatReport) -> Iterator[Finding]:
    """Pass the trace analytics' findings through, with their levels and offsets."""
    for t in r.facts.get("traces", []):
        for a in t.get("analytics", []):
            code = f"lmcache_{a['code']}"
            if a["code"] in _TRACE_COVERED or code not in FINDING_CODES:
                continue
            offsets = ", ".join(str(o) for o in a["offsets"])
            yield _f(code, f"{t['source']}: {a['title']}: {a['detail']}"
                     + (f" (offsets {offsets})" if offsets else ""), a["level"],
                     [t["source"]])


@rule
def sampled_histograms(r: CompatReport) -> Iterator[Finding]:
    obs = r.lmcache_mp_observability
    if obs is None or obs.sampled_histograms.sample_rate >= 1.0 or not r.conditions.get("traffic"):
        return
    sparse = [n for n, c in obs.sampled_histograms.families.items() if c == 0]
    if sparse:
        yield _f("lmcache_sampled_histograms_sparse",
                 obs.sampled_histograms.explanation + f"; {len(sparse)} have no observation",
                 PARTIAL, sparse[:6])


@rule
def embedded_surface(r: CompatReport) -> Iterator[Finding]:
    if r.effective_mode not in ("embedded_vllm", "embedded_sglang"):
        return
    lm = [f for f in r.families if f.name.startswith("lmcache:") and f.status != "not_applicable"
          and f.group != "controller"]
    if lm and all(f.status == "missing" for f in lm) and any(
            e.kind == "engine_metrics" for e in r.evidence):
        yield _f("lmcache_embedded_metrics_not_exported",
                 "no lmcache:* family on the engine /metrics (the default without "
                 "PROMETHEUS_MULTIPROC_DIR)", MISSING_SIGNAL, [])


def _vl(r: CompatReport) -> dict[str, Any]:
    d: dict[str, Any] = r.facts.get("vllm_lmcache", {})
    return d


@rule
def configured_but_dead(r: CompatReport) -> Iterator[Finding]:
    """LMCache is configured (connector in launch or logs) but never works: its own errors and
    lookup timeouts in the log, and/or the engine's connector counters and lmcache:* families
    showing nothing. Logs and metrics agreeing make it supported."""
    logs, d = _logs(r), _vl(r)
    log_ev = [f"log: {k} x{logs[k]}" for k in ("lmcache_init_failed", "lmcache_post_init_skipped",
                                                "lmcache_lookup_rpc_timeout") if logs.get(k)]
    q, h = d.get("vllm_external_queries"), d.get("vllm_external_hits")
    fams, live = d.get("engine_lmcache_families", 0), d.get("engine_lmcache_nonzero_families", 0)
    metric_ev = []
    if q and h == 0:
        metric_ev.append(f"vllm:external_prefix_cache_queries={q:g} with hits=0")
    if fams and not live:
        metric_ev.append(f"{fams} lmcache:* families declared on the engine /metrics, "
                         f"{d.get('engine_lmcache_families_with_samples', 0)} with samples, "
                         "none non-zero")
    if not log_ev and not (q and h == 0 and fams and not live):
        return
    level = SUPPORTED if log_ev and metric_ev else (PARTIAL if metric_ev else INFERRED)
    yield _f("lmcache_configured_but_not_working",
             "LMCache is configured but not working: " + "; ".join(log_ev + metric_ev),
             level, log_ev + metric_ev)


@rule
def vllm_hits_reconciled(r: CompatReport) -> Iterator[Finding]:
    d = _vl(r)
    ext, lmc = d.get("vllm_external_hits"), d.get("lmcache_lookup_hit_tokens")
    if ext is None or lmc is None:
        return
    join = d.get("model_join")
    models = d.get("launch_models", {})
    if join == "via_launch":
        how = (f"model_name differs (vLLM {d.get('vllm_model_names')}: the served name; LMCache "
               f"{d.get('lmcache_model_names')}: the model path), joined via the launch "
               f"(--model {models.get('model')} --served-model-name "
               f"{models.get('served_model_name')})")
    elif join == "same_label":
        how = "both sides label the same model_name"
    else:
        how = (f"model_name labels do not join (vLLM {d.get('vllm_model_names')}, LMCache "
               f"{d.get('lmcache_model_names')}); add the vLLM launch command")
    yield _f("lmcache_vllm_hits_reconciled",
             f"vllm:external_prefix_cache_hits={ext:g} tokens loaded by the connector; "
             f"lmcache_mp_lookup_hit_tokens={lmc:g} (every lookup hit, also prefixes vLLM "
             f"still held); {how}", SUPPORTED if join in ("via_launch", "same_label")
             else PARTIAL, ["vllm:external_prefix_cache_hits",
                            "lmcache_mp_lookup_hit_tokens_total"])


@rule
def hicache_only(r: CompatReport) -> Iterator[Finding]:
    hic = [f for f in r.families if f.group == "sglang_hicache" and f.status != "missing"
           and f.status != "not_applicable"]
    lm = any(f.name.startswith(("lmcache", "lmcache:")) and f.status in ("populated", "zero")
             for f in r.families)
    sg = any(k in _logs(r) for k in ("sglang_enable_lmcache", "sglang_layerwise_connector",
                                      "sglang_lmc_radix_cache"))
    if (hic or _logs(r).get("sglang_hicache")) and not lm and not sg:
        yield _f("lmcache_sglang_hicache_only", "HiCache evidence, no LMCache evidence",
                 PARTIAL if hic else INFERRED, [f.name for f in hic[:4]])


@rule
def log_surfaces(r: CompatReport) -> Iterator[Finding]:
    logs = _logs(r)
    measured = _measured(r)
    p2p = {k: v for k, v in logs.items() if k.startswith("p2p_") or (
        k.startswith("controller") and not logs.get("ctrl_no_peer_init_url"))}
    if p2p:
        metric = any(f.group == "p2p" and f.status == "populated" for f in r.families)
        yield _f("lmcache_log_p2p_evidence_present",
                 ", ".join(f"{k} x{v}" for k, v in sorted(p2p.items())),
                 SUPPORTED if metric else INFERRED, sorted(p2p))
    pd = {k: v for k, v in logs.items() if k.startswith("pd_")}
    if pd:
        yield _f("lmcache_log_pd_evidence_present",
                 ", ".join(f"{k} x{v}" for k, v in sorted(pd.items())),
                 PARTIAL if measured else INFERRED, sorted(pd))
    if logs.get("stale_connector"):
        yield _f("lmcache_log_stale_connector",
                 f"legacy LMCacheConnector seen {logs['stale_connector']} time(s)", INFERRED,
                 ["log: stale_connector"])


def _blend(r: CompatReport) -> dict[str, Any]:
    b: dict[str, Any] = r.facts.get("blend") or {}
    return b


def _blend_failures(r: CompatReport) -> tuple[float, int]:
    """(retrieve_failures_total, cb.retrieve spans with success=False)."""
    spans: dict[str, int] = _blend(r).get("retrieve_success_spans", {})
    return _total(r, "lmcache_blend_retrieve_failures_total"), spans.get("False", 0)


def _measured_or_log(ev: list[str]) -> str:
    return SUPPORTED if any(not e.startswith("log:") for e in ev) else INFERRED


@rule
def blend(r: CompatReport) -> Iterator[Finding]:
    b, logs = _blend(r), _logs(r)
    fails, span_fails = _blend_failures(r)
    ev = []
    if fails > 0:
        ev.append(f"lmcache_blend_retrieve_failures_total={fails:g} of "
                  f"{_total(r, 'lmcache_blend_retrieve_requests_total'):g} retrieves")
    if span_fails:
        ev.append(f"{span_fails} cb.retrieve span(s) with success=False (span status unset)")
    if logs.get("blend_retrieve_failed"):
        ev.append(f"log: CB retrieve failing x{logs['blend_retrieve_failed']}")
    if ev:
        yield _f("lmcache_blend_retrieve_failures",
                 "; ".join(ev) + ": the engine degrades those requests to full recompute",
                 _measured_or_log(ev), ev)
    ev = []
    if (n := _total(r, "lmcache_blend_lookup_no_gpu_context_errors_total")) > 0:
        ev.append(f"lmcache_blend_lookup_no_gpu_context_errors_total={n:g}")
    if b.get("lookup_no_gpu_context_spans"):
        ev.append(f"{b['lookup_no_gpu_context_spans']} cb.lookup span(s) with "
                  "no_gpu_context=True (cb.fingerprint_match still reports its matches)")
    if logs.get("blend_no_gpu_context"):
        models = r.facts.get("log_values", {}).get("blend_no_gpu_context.model", [])
        ev.append(f"log: No CB GPU context x{logs['blend_no_gpu_context']}"
                  + (f" (model {', '.join(models[:3])})" if models else ""))
    if ev:
        yield _f("lmcache_blend_no_gpu_context", "; ".join(ev), _measured_or_log(ev), ev)


@rule
def blend_scatter_attempts(r: CompatReport) -> Iterator[Finding]:
    fails, span_fails = _blend_failures(r)
    if not (fails or span_fails):
        return
    counted = [f"{n}={_total(r, n):g}" for n in (
        "lmcache_blend_scatter_tokens_total", "lmcache_blend_scatter_shifted_chunks_total",
        "lmcache_blend_retrieve_chunks_total") if _total(r, n) > 0]
    b = _blend(r)
    if b.get("scatter_success_spans", {}).get("False") and b.get("scatter_tokens_spans"):
        counted.append(f"cb.scatter scattered_tokens={b['scatter_tokens_spans']:g} on "
                       f"{b['scatter_success_spans']['False']} span(s) with success=False")
    if counted:
        yield _f("lmcache_blend_scatter_counts_attempts",
                 "; ".join(counted) + f" although {max(fails, span_fails):g} retrieve(s) "
                 "failed: these count attempts, not KV written", SUPPORTED, counted)


@rule
def blend_stale(r: CompatReport) -> Iterator[Finding]:
    b, logs = _blend(r), _logs(r)
    ev = []
    if (n := _total(r, "lmcache_blend_lookup_stale_chunks_total")) > 0:
        ev.append(f"lmcache_blend_lookup_stale_chunks_total={n:g}")
        if (ev_n := _total(r, "lmcache_blend_chunks_evicted_total")) > 0:
            ev.append(f"lmcache_blend_chunks_evicted_total={ev_n:g}")
    if b.get("lookup_stale_chunks_spans"):
        ev.append(f"cb.lookup stale_chunks={b['lookup_stale_chunks_spans']:g}")
    if logs.get("blend_sparse_stale"):
        ev.append(f"log: CB sparse classify with stale chunks x{logs['blend_sparse_stale']}")
    if ev:
        yield _f("lmcache_blend_stale_fingerprints",
                 "; ".join(ev) + ": matched by fingerprint, gone from storage (evicted)",
                 _measured_or_log(ev), ev)


@rule
def blend_noops(r: CompatReport) -> Iterator[Finding]:
    b = _blend(r)
    ev = [f"lmcache_blend_retrieve_noops_total{{reason={k}}}={v:g}"
          for k, v in b.get("noop_reasons_metric", {}).items() if v]
    ev += [f"cb.retrieve.noop reason={k} x{v}" for k, v in b.get("noop_reasons_spans", {}).items()]
    counted = set(b.get("noop_reasons_metric", {})) | set(b.get("noop_reasons_spans", {}))
    logged = [x for x in b.get("noop_reasons_log", []) if x not in counted]
    if logged:
        ev.append(f"log: no scatter ({', '.join(logged)}): no metric, no span")
    if ev:
        yield _f("lmcache_blend_retrieve_noops", "; ".join(ev), _measured_or_log(ev), ev)


@rule
def blend_held_open(r: CompatReport) -> Iterator[Finding]:
    b = _blend(r)
    held, orphans = b.get("lookups_held_over_1s", 0), b.get("orphan_cb_spans", {})
    if not held and not orphans:
        return
    ev = []
    if held:
        ev.append(f"{b.get('lookups_awaiting_retrieve', 0)} cb.request span(s) with a matching "
                  f"cb.lookup and no cb.retrieve/cb.retrieve.noop; {held} lasted over 1 s "
                  f"(longest {(b.get('awaiting_retrieve_max_ms') or 0) / 1e3:.1f} s): closed "
                  "only at server shutdown")
    if orphans:
        ev.append("orphaned CacheBlend spans (root never exported): " + ", ".join(
            f"{k} x{v}" for k, v in sorted(orphans.items())))
    yield _f("lmcache_blend_lookup_spans_held_open", "; ".join(ev), SUPPORTED, ev)


@rule
def blend_sparse_l2_keys(r: CompatReport) -> Iterator[Finding]:
    n = _total(r, "lmcache_blend_sparse_prefetch_l2_keys_total")
    if n <= 0:
        return
    ev = [f"lmcache_blend_sparse_prefetch_l2_keys_total={n:g}"]
    if not r.conditions.get("l2") and not r.conditions.get("l2_seen"):
        ev.append("no L2 adapter is configured")
    b = _blend(r)
    if b.get("sparse_keys_spans"):
        ev.append(f"cb.sparse_prefetch spans: n_keys={b['sparse_keys_spans']:g}, "
                  f"l2_keys={b.get('sparse_l2_keys_spans') or 0:g} (the END value)")
    yield _f("lmcache_blend_sparse_prefetch_l2_keys_not_l2",
             "; ".join(ev) + ": the counter adds the START event's l2_keys, which is every "
             "submitted key (L1 hits included)", SUPPORTED, ev)


@rule
def blend_jit_outlier(r: CompatReport) -> Iterator[Finding]:
    b = _blend(r)
    ev = []
    count = b.get("fingerprint_match_count")
    if jit_outlier([tuple(x) for x in b.get("fingerprint_match_buckets", [])], count):
        ev.append(f"lmcache_blend_fingerprint_match_duration_milliseconds: 1 of {count:g} "
                  f"observations above {JIT_OUTLIER_MS:g} ms")
    sp = b.get("fingerprint_match_spans") or {}
    # One slow span: the max is far above the median, and (when there are enough spans for
    # p90 to differ from the max) p90 is fast too.
    if ((sp.get("max_ms") or 0) >= JIT_OUTLIER_MS
            and (sp.get("p50_ms") or 0) < JIT_OUTLIER_MS / 10
            and ((sp.get("p90_ms") or 0) < JIT_OUTLIER_MS or sp.get("count", 0) < 10)):
        ev.append(f"cb.fingerprint_match: max {sp['max_ms']:.0f} ms, median "
                  f"{sp['p50_ms']:.1f} ms over {sp.get('count')} spans")
    if ev:
        yield _f("lmcache_blend_fingerprint_match_jit_outlier", "; ".join(ev), SUPPORTED, ev)


def _controllers(r: CompatReport, server: str = "controller") -> list[dict[str, Any]]:
    return [c for c in r.facts.get("controller", []) if c.get("server") == server]


@rule
def controller_only(r: CompatReport) -> Iterator[Finding]:
    if r.detected.mode == "controller_only":
        ev = [f"{c['source']}: {c.get('workers_listed')} worker(s) listed, "
              f"{c.get('total_key_count')} key(s)" for c in _controllers(r) if c.get("reachable")]
        yield _f("lmcache_controller_only_evidence",
                 "the packet's only measured evidence is the controller's answers", PARTIAL, ev)


@rule
def controller_stale_workers(r: CompatReport) -> Iterator[Finding]:
    ev = []
    for c in _controllers(r):
        for w in c.get("workers", []):
            age = w.get("heartbeat_age_s")
            if age is None or age < _STALE_S:
                continue
            state = "inactive" if age >= _INACTIVE_S else "stale"
            never = "" if w.get("heartbeat_seen") else (
                ", none since registration (heartbeats are off unless "
                "lmcache_worker_heartbeat_time is set)")
            ev.append(f"{w['instance_id']}/{w.get('worker_id')}: last heartbeat {age:.0f} s "
                      f"before the answer ({state}{never})")
    if ev:
        yield _f("lmcache_controller_worker_stale", "; ".join(ev), SUPPORTED, ev)


@rule
def controller_listed_after_stop(r: CompatReport) -> Iterator[Finding]:
    engines = _controllers(r, "internal_api")
    interval = {e["instance_id"]: e["heartbeat_interval_s"] for e in engines
                if e.get("instance_id") and e.get("heartbeat_interval_s")}
    env_hb = r.facts.get("launch_env", {}).get("LMCACHE_LMCACHE_WORKER_HEARTBEAT_TIME", [])
    default_hb = next((float(v) for v in env_hb if v.replace(".", "", 1).isdigit()), None)
    ident = {e["base_url"]: e["instance_id"] for e in engines
             if e.get("reachable") and e.get("base_url") and e.get("instance_id")}
    gone = [e for e in engines if e.get("reachable") is False and e.get("base_url")]
    ev: list[str] = []
    level = SUPPORTED
    for c in _controllers(r):
        # Only engines that had stopped answering when this listing was taken (Date has
        # whole seconds: 1 s of slack); without times the order is unknown and all count.
        gone_then = [g for g in gone if c.get("collected_at") is None
                     or g.get("collected_at") is None
                     or g["collected_at"] <= c["collected_at"] + 1.0]
        for w in c.get("workers", []):
            name = f"{w['instance_id']}/{w.get('worker_id')}"
            hb = interval.get(w["instance_id"], default_hb)
            age = w.get("heartbeat_age_s")
            if (hb and age is not None and w.get("heartbeat_seen")
                    and age > 2 * hb + WORKER_LIST_CACHE_S):
                ev.append(f"{name}: heartbeat every {hb:g} s, last one {age:.1f} s before "
                          "the controller answered (more than two periods plus the 30-s list "
                          "cache), still listed")
            for g in gone_then:
                host = g["base_url"].split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0]
                if ident.get(g["base_url"]) == w["instance_id"]:
                    ev.append(f"{name}: its internal API server {g['base_url']} no longer "
                              "answers, the controller still lists it")
                elif g["base_url"] not in ident and host in (w.get("ip"), "localhost"):
                    ev.append(f"{name}: the internal API server at {g['base_url']} (same host) "
                              "did not answer, the controller still lists it")
                    level = PARTIAL
    if ev and _logs(r).get("ctrl_deregistered"):
        ev.append(f"log: Deregistered instance-worker x{_logs(r)['ctrl_deregistered']}: a "
                  "deregistered worker can stay listed up to 30 s (list cache)")
    if ev:
        yield _f("lmcache_controller_worker_listed_after_stop", "; ".join(ev), level, ev)


@rule
def controller_full_sync_gauge(r: CompatReport) -> Iterator[Finding]:
    done = _logs(r).get("ctrl_full_sync_completed", 0)
    if not done:
        return
    for c in _controllers(r):
        g = c.get("gauges", {})
        if g.get("full_sync_workers_completed") == 0:
            ev = [f"log: full sync completed ({done} line(s))",
                  f"{c['source']}: full_sync_workers_completed=0, registered_workers_count="
                  f"{g.get('registered_workers_count', 0):g}, {c.get('workers_listed')} "
                  "worker(s) listed"]
            if _logs(r).get("controller_registration") and not c.get("workers_listed"):
                ev.append("the log registered a worker the listing does not show: the "
                          "listing and gauges came from a cache filled before")
            yield _f("lmcache_controller_full_sync_gauge_stuck", "; ".join(ev), PARTIAL, ev)
            return


@rule
def controller_peer_init_url(r: CompatReport) -> Iterator[Finding]:
    engines = _controllers(r, "internal_api")
    why = []
    if r.expected_mode == "p2p":
        why.append("--expect-mode p2p")
    why += [f"{e['source']}: enable_p2p=true" for e in engines if e.get("enable_p2p")]
    why += [ref.detail for c in r.detected.candidates if c.mode == "p2p" for ref in c.evidence
            if "enable_p2p" in ref.detail and ref.kind == "launch_config"]
    if not why:
        return
    ev = [f"{c['source']}: {w['instance_id']}/{w.get('worker_id')} has no peer_init_url"
          for c in _controllers(r) for w in c.get("workers", []) if not w.get("peer_init_url")]
    if _logs(r).get("ctrl_no_peer_init_url"):
        ev.append(f"log: peer init url is None x{_logs(r)['ctrl_no_peer_init_url']}")
    if ev:
        yield _f("lmcache_controller_peer_init_url_missing",
                 "P2P expected (" + ", ".join(why[:3]) + "); " + "; ".join(ev),
                 _measured_or_log(ev), ev)


@rule
def controller_threads(r: CompatReport) -> Iterator[Finding]:
    bad = [f"{c['source']} ({c['server']}): unhealthy periodic threads "
           + ", ".join(c.get("unhealthy_threads", []) or ["?"])
           for c in r.facts.get("controller", []) if c.get("periodic_threads_healthy") is False]
    if bad:
        yield _f("lmcache_controller_threads_unhealthy", "; ".join(bad), SUPPORTED, bad)


@rule
def replay(r: CompatReport) -> Iterator[Finding]:
    for rp in r.facts.get("replay", []):
        if (rp.get("failed") or 0) > 0 or rp.get("errors"):
            yield _f("lmcache_trace_replay_failures",
                     f"replay ({rp['form']}): failed={rp.get('failed')}, errors={rp.get('errors')}",
                     SUPPORTED, [rp["form"]])
        if rp.get("digest_match") is False:
            yield _f("lmcache_trace_replay_config_mismatch",
                     "replay config digest differs from the recorded one", SUPPORTED, [rp["form"]])


@rule
def lookup_hashes(r: CompatReport) -> Iterator[Finding]:
    for lh in r.facts.get("lookup_hashes", []):
        if lh["missing_rotation_counters"]:
            yield _f("lmcache_lookup_hash_rotation_gap",
                     f"rotation counters missing: {lh['missing_rotation_counters'][:10]}",
                     SUPPORTED, [])
        if lh.get("chunks_repeated"):
            yield _f("lmcache_lookup_hash_evidence_present",
                     f"{lh['chunks_repeated']} of {lh['chunks_total']} looked-up chunks were "
                     "looked up before", PARTIAL if _measured(r) else INFERRED, [])


@rule
def malformed(r: CompatReport) -> Iterator[Finding]:
    bad: list[dict[str, Any]] = r.facts.get("malformed_evidence", [])
    if bad:
        yield _f("lmcache_evidence_malformed",
                 "; ".join(f"{b['kind']} {b['source']}: {b['problem'][:120]}" for b in bad[:5]),
                 SUPPORTED, [b["source"] for b in bad])


def diagnose(report: CompatReport) -> Diagnosis:
    """Run every rule; findings sorted by severity (errors first), then code."""
    order = {"error": 0, "warning": 1, "info": 2}
    findings = [f for fn in RULES for f in fn(report)]
    findings.sort(key=lambda f: (order[f.severity], f.code))
    return Diagnosis(report.detected.mode, findings)
