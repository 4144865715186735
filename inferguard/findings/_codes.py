"""The one table of finding codes: code → severity, title, next step.

Every code any rule emits is a row here, trace-analytics codes included (the analytics in
`inferguard.lct` produce `trace_<x>`, known here as `lmcache_trace_<x>`); the rule that emits a
code declares it with `@rule(emits=(...))` in its rules module, and registration checks that
each code has exactly one rule. `docs/finding-codes.md` is generated from this table
(`python -m inferguard.findings._docs`). Codes are stable: rename never, retire explicitly.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["info", "warning", "error"]


class CodeSpec(msgspec.Struct, frozen=True):
    severity: Severity
    title: str
    next_step: str


FINDING_CODES: dict[str, CodeSpec] = {
    "lmcache_not_configured": CodeSpec(
        "warning", "the engine runs without any LMCache connector",
        "add --kv-transfer-config with LMCacheMPConnector (and an lmcache server), "
        "--kv-offloading-backend lmcache, or SGLang --enable-lmcache, then collect again"),
    "lmcache_mp_first_chunk_never_stored": CodeSpec(
        "error", "lmcache-driven stores skip each prompt's first chunk, so its prefix "
        "lookups always miss",
        "start lmcache server with --null-block-id -1 (its default 0 makes engine block 0 "
        "absent KV; 0.5.7's `lmcache bench server` sequential allocation puts chunk 0 there), "
        "or have the driver never allocate the null block"),
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
    # Why hits are zero, and which hit counter to trust (issue #15; findings/_rules_hits.py).
    "lmcache_mp_unreachable": CodeSpec(
        "error", "the engine could not reach the LMCache MP server (unreachable, RPC timeouts "
        "or degraded mode): its requests were recomputed",
        "check that `lmcache server` runs and listens on the host/port in "
        "kv_connector_extra_config (lmcache.mp.host/port); raise lmcache.mp timeouts only "
        "after the server answers"),
    "lmcache_mp_shm_fallback": CodeSpec(
        "warning", "the MP server started without shared memory (/dev/shm smaller than L1): "
        "transfers fall back to pickle",
        "enlarge /dev/shm (docker --shm-size, a larger tmpfs) to at least --l1-size-gb, or "
        "lower --l1-size-gb, then restart the server"),
    "lmcache_prefix_already_local": CodeSpec(
        "info", "LMCache lookups hit, but vLLM already held those prefixes: nothing was "
        "loaded, which is not zero hits",
        "expected while vLLM's GPU prefix cache still holds the prefix; LMCache pays off once "
        "vLLM evicts it (longer runs, more distinct prefixes)"),
    "lmcache_embedded_hits_reconciled": CodeSpec(
        "info", "embedded LMCache: lookup hits, retrieved tokens and vLLM's external hits "
        "count different things",
        "lmcache:num_lookup_hits counts every lookup hit (also prefixes vLLM held); "
        "lmcache:num_hit_tokens and vllm:external_prefix_cache_hits count tokens loaded"),
    "lmcache_hit_counters_disagree": CodeSpec(
        "warning", "two counts of the same hits contradict each other",
        "trust the measured counter of the scraped process (named in the message); collect "
        "the log and the scrape from the same run, after the same traffic"),
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
        "warning", "the storage-level trace has records but no ObjectKey arguments",
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
    "lmcache_engine_failed_to_start": CodeSpec(
        "error", "a log shows the engine (or LMCache server) failing at startup; it never "
        "served", "fix the exception named in the evidence (often a vLLM/LMCache version skew: "
        "install the LMCache build matching this vLLM), then restart and collect again"),
    "lmcache_engine_unhealthy": CodeSpec(
        "error", "the engine's /health did not answer 200",
        "503 is vLLM's EngineDeadError: read the engine log for the root cause; no answer means "
        "not started, stopped, or a wrong --engine-http-base-url"),
    "lmcache_lookup_hash_files_rotated_away": CodeSpec(
        "info", "the oldest lookup-hash log files are gone (rotated away); counts are lower "
        "bounds", "raise --lookup-hash-log-max-files or collect the directory more often"),
    "lmcache_lookup_hash_counter_reused": CodeSpec(
        "info", "lookup-hash file counters were numbered again after a restart",
        "order files by the timestamp in the name (or mtime), never by the counter alone"),
    "lmcache_trace_replay_hidden_failures": CodeSpec(
        "warning", "the replay's log shows failed reads or allocations its 'failed' count "
        "hides", "size the replay's L1 like the recording's (--l1-size-gb) and replay again; "
        "read misses as a signal about the replay environment"),
}


# Trace-analytics codes whose table row has another name (the analytics say "no read
# records"; the table's `lmcache_trace_no_reads` is the same finding, from the trace summary).
_TRACE_ALIASES = {"trace_no_read_records": "lmcache_trace_no_reads"}


def table_code(analytics_code: str) -> str:
    """The table code of a trace-analytics code (`trace_<x>` → `lmcache_trace_<x>`)."""
    return _TRACE_ALIASES.get(analytics_code, f"lmcache_{analytics_code}")


def trace_code_spec(analytics_code: str) -> CodeSpec:
    """The table row of a trace-analytics code (what `inferguard trace stats` prints)."""
    return FINDING_CODES[table_code(analytics_code)]
