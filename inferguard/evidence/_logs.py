"""Log evidence: conservative LMCache hints from engine and LMCache logs.

A hint is a line that matches one pattern of `LOG_HINTS` (a data table: adding an upstream
line is one row). Lines are read with ANSI colour codes stripped and an optional vLLM
`(Name pid=N)` prefix tolerated. Each hint keeps its file, line number and the line, with
control characters escaped so nothing from a log reaches a terminal raw. Hints are evidence
of what a process *said*; they prove behaviour only together with metrics (see diagnose).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, Literal, NamedTuple

import msgspec

from inferguard import _lazy
from inferguard._files import NotRegularFile
from inferguard.evidence._model import (
    Evidence,
    EvidenceKind,
    EvidenceSource,
    Problem,
    open_input,
)
from inferguard.evidence._redact import redact_text

Category = Literal[
    "mp_server", "mp_connector", "embedded_vllm", "stale_connector", "offload_flag",
    "sglang_lmcache", "sglang_hicache", "p2p", "controller", "pd", "lifecycle", "hash_seed",
    "eviction", "allocation_failure", "tracing", "error", "blend", "control_plane",
    "degraded", "hit_cause", "version"]

MAX_LINE = 2000          # longer lines are cut (and counted) before matching
EXAMPLES_PER_HINT = 20   # hints keep this many matching lines each, and count the rest
# An ANSI escape sequence (colours, cursor moves): removed before matching; the replay
# reader removes it from upstream's progress lines too.
ANSI_ESCAPE = r"\x1b\[[0-9;?]*[ -/]*[@-~]"
ANSI = _lazy.pattern(ANSI_ESCAPE)


class LogHint(msgspec.Struct, frozen=True):
    """One pattern: a stable id, what it indicates, and the regex (named groups = values).

    `amount` names the group whose value says how much happened (`Retrieved 0 tokens` is a
    line about nothing): only lines where it is > 0 count as positive evidence."""

    id: str
    category: Category
    pattern: str
    meaning: str
    amount: str = ""


LOG_HINTS: tuple[LogHint, ...] = (
    # standalone MP server (lmcache server)
    LogHint("mp_http_server_start", "mp_server",
            r"Starting LMCache HTTP server on http://(?P<host>[^\s:]+):(?P<port>\d+)",
            "MP server HTTP API starting"),
    LogHint("mp_cache_server_running", "mp_server",
            r"LMCache (?P<transport>\w+) cache server is running on (?P<host>\S+):(?P<port>\d+)",
            "MP cache server listening"),
    LogHint("mp_server_ready", "mp_server", r"LMCache cache server is running\.\.\.",
            "MP cache server ready"),
    LogHint("mp_metrics_pull", "mp_server",
            r"OTel MeterProvider initialised with Prometheus fallback"
            r"(?:.*'service\.instance\.id': '(?P<instance_id>[^']*)')?",
            "MP metrics exposed for Prometheus pull on the HTTP port"),
    LogHint("mp_metrics_otlp", "mp_server", r"OTel MeterProvider initialised with OTLP",
            "MP metrics pushed over OTLP (pull /metrics will lack lmcache_mp_*)"),
    LogHint("mp_transfer_mode", "mp_server", r"Supported transfer mode: (?P<mode>\S+)",
            "MP transfer mode"),
    LogHint("mp_server_shutdown", "mp_server", r"MPCacheServer closed|Shutting down LMCache HTTP",
            "MP server shut down"),
    LogHint("tracing_enabled", "tracing", r"OTel TracerProvider initialised",
            "OTel span export enabled"),
    LogHint("trace_recording", "tracing", r"trace recording enabled \(level=(?P<level>\w+)\)",
            ".lct trace recording enabled"),
    LogHint("lookup_hash_logging", "tracing",
            r"LookupHashLoggingSubscriber started: output_dir=(?P<dir>[^,]*)",
            "lookup-hash JSONL logging enabled"),
    # vLLM connectors
    LogHint("vllm_mp_connector", "mp_connector",
            r"(?<!Unified)LMCacheMPConnector(?:Upstream)?\b|Auto-starting LMCache MP server|"
            r"LMCache MP server became healthy",
            "vLLM uses the LMCache MP connector"),
    # Which LMCacheMPConnector class vLLM resolved (0.33.0 lmcache_mp_connector.py,
    # `_resolve_lmcache_mp_connector`): LMCache's own (with `build_prom_metrics`, the
    # vllm:lmcache_mp_lookup_duration_seconds histogram) or vLLM's builtin
    # LMCacheMPConnectorUpstream, whose `build_prom_metrics` returns None.
    LogHint("vllm_mp_connector_external", "mp_connector",
            r"Using external LMCacheMPConnector from (?P<module>[\w.]+)",
            "vLLM uses LMCache's own MP connector (lmcache.integration.vllm)"),
    LogHint("vllm_mp_connector_builtin", "mp_connector",
            r"External LMCacheMPConnector is not available \(.*\), falling back to builtin "
            r"implementation in vLLM|Force use builtin LMCacheMPConnectorUpstream in vLLM",
            "vLLM uses its builtin MP connector fallback (no vllm:lmcache_mp_* metrics)"),
    LogHint("vllm_v1_dynamic_connector", "embedded_vllm", r"LMCacheConnectorV1Dynamic\b",
            "vLLM uses LMCacheConnectorV1Dynamic (in-process)"),
    LogHint("vllm_v1_connector", "embedded_vllm", r"LMCacheConnectorV1(?!Dynamic)\b",
            "vLLM uses LMCacheConnectorV1 (in-process)"),
    LogHint("vllm_lmcache_initialized", "embedded_vllm",
            r"LMCache initialized for role (?P<role>\S+) with version (?P<version>\S+),",
            "in-process LMCache engine up"),
    LogHint("stale_connector", "stale_connector", r"\bLMCacheConnector\b(?!V1|MP)",
            "legacy v0 LMCacheConnector: stale unless an old stack is documented"),
    LogHint("kv_offloading_backend", "offload_flag",
            r"kv[-_]offloading[-_]backend['\"]?\s*[:= ]\s*['\"]?lmcache",
            "vLLM --kv-offloading-backend lmcache"),
    # Versions: vLLM 0.33.0 entrypoints/common/startup.py::log_version_and_model (the plain
    # line, or the logo's `version X` line) and v1/engine/core.py (`Initializing a V1 LLM
    # engine (vX)`); LMCache's in-process engine names its version when it starts.
    LogHint("vllm_version", "version",
            r"vLLM server version (?P<plain>\d\S*), serving model|"
            r"Initializing a V1 LLM engine \(v(?P<engine>\d[^)\s]*)\)|"
            r"\u2588 +version +(?P<logo>\d\S*)",
            "vLLM names its version"),
    # SGLang
    LogHint("sglang_enable_lmcache", "sglang_lmcache", r"--enable-lmcache|enable_lmcache=True",
            "SGLang launched with LMCache"),
    LogHint("sglang_layerwise_connector", "sglang_lmcache", r"LMCacheLayerwiseConnector",
            "SGLang LMCache layer-wise connector"),
    LogHint("sglang_lmc_radix_cache", "sglang_lmcache", r"LMCRadixCache",
            "SGLang LMCache radix cache"),
    LogHint("sglang_mp_connector", "sglang_lmcache",
            r"UnifiedLMCacheMPConnector initialized|LMCache MP heartbeat thread started",
            "SGLang LMCache MP adapter"),
    LogHint("sglang_hicache", "sglang_hicache", r"(?i)hicache",
            "SGLang HiCache (not LMCache proof on its own)"),
    # P2P and controller
    LogHint("p2p_handler_start", "p2p",
            r"Starting P2P backend batched get handler at (?P<addr>\S+)",
            "P2P serving side enabled"),
    LogHint("p2p_layout_info", "p2p",
            r"Got layout info from controller: \((?P<info>.*)\)", "P2P lookup answered"),
    LogHint("p2p_peer_connected", "p2p", r"Established connection to peer_init_url",
            "P2P peer connection"),
    LogHint("p2p_transfer_finished", "p2p", r"P2P transfer finished for request",
            "P2P transfer served"),
    LogHint("p2p_error", "p2p",
            r"Controller returned error for batched P2P lookup|Failed to ensure peer connection|"
            r"Peer connection not initialized|Max retry count reached for lookup_id",
            "P2P failure"),
    LogHint("controller_start", "controller", r"Starting LMCache controller at (?P<addr>\S+)",
            "LMCache controller"),
    LogHint("controller_registration", "controller",
            r"Registering lmcache instance-worker|Registered instance-worker",
            "engine registered with the controller"),
    # controller and worker state (not P2P evidence: a controller also runs without P2P)
    LogHint("ctrl_no_peer_init_url", "control_plane",
            r"peer init url of (?P<worker>.+?) is None, only register when p2p is used",
            "a worker registered without a P2P init URL"),
    LogHint("ctrl_deregistered", "control_plane", r"Deregistered instance-worker",
            "the controller removed a worker"),
    LogHint("ctrl_worker_timeout", "control_plane",
            r"Worker (?P<worker>\S+) last heartbeat time: .*more than (?P<timeout>\d+) seconds",
            "the controller dropped a worker after its heartbeat timeout"),
    LogHint("ctrl_health_check_interval", "control_plane",
            r"Health check interval: (?P<secs>-?\d+)s",
            "controller worker expiry check interval (-1: never expires workers)"),
    LogHint("ctrl_full_sync_started", "control_plane", r"Started full sync for worker",
            "the controller started a full sync"),
    LogHint("ctrl_full_sync_completed", "control_plane",
            r"Completed full sync for worker|Full sync completed for worker",
            "the controller logged a full sync as completed"),
    LogHint("ctrl_worker_full_sync", "control_plane",
            r"Received full sync command with reason: (?P<reason>[\w-]+)",
            "a worker was told to full-sync its keys"),
    LogHint("ctrl_heartbeat_sent", "control_plane", r"Sending heartbeat message to controller",
            "a worker heartbeat"),
    LogHint("internal_api_server_start", "control_plane",
            r"Starting LMCache internal API server on port (?P<port>\d+)",
            "an engine's internal API server"),
    # CacheBlend (lmcache server --engine-type blend)
    LogHint("blend_match_probe", "blend",
            r"\[match_probe\] n_tok=(?P<n_tok>\d+) table_hits=(?P<table_hits>\d+) "
            r"matches=(?P<matches>\d+)", "CacheBlend fingerprint match"),
    LogHint("blend_rope_registered", "blend", r"Registered CB rope state for instance",
            "CacheBlend rope state registered"),
    LogHint("blend_no_gpu_context", "blend", r"No CB GPU context for model (?P<model>\S+)",
            "CacheBlend lookup without a GPU context"),
    LogHint("blend_retrieve_failed", "blend",
            r"CB retrieve: native plan unavailable|failing the retrieve",
            "CacheBlend retrieve failed: the request is recomputed"),
    LogHint("blend_retrieve_no_scatter", "blend", r"CB retrieve: no scatter \((?P<reason>\w+)",
            "CacheBlend retrieve scattered nothing (logged once per reason)"),
    LogHint("blend_sparse_stale", "blend",
            r"CB sparse classify for \S+: (?P<found>\d+) found, (?P<stale>\d+) stale, "
            r"(?P<partial>\d+) partial of (?P<submitted>\d+) submitted",
            "CacheBlend fingerprint matches whose chunks are gone"),
    LogHint("blend_unretrieved_locks", "blend",
            r"Released (?P<locks>\d+) unretrieved read lock\(s\) for ended request",
            "a CacheBlend request ended without retrieving its matches"),
    # disaggregated prefill
    LogHint("pd_enabled", "pd",
            r"PD mode enabled with save_unfull_chunk|PD \(Peer-to-Peer Disaggregation\) requires|"
            r"'enable_pd': True", "LMCache PD enabled"),
    LogHint("pd_role", "pd", r"'pd_role': '(?P<role>sender|receiver)'", "PD role"),
    LogHint("pd_nixl", "pd",
            r"Bidirectional NIXL|PDBackendAsync|Async mem alloc server listening|"
            r"Auto align pd_buffer_size", "PD/NIXL backend activity"),
    LogHint("pd_failure", "pd",
            r"NIXL (?:write|read) failed|\[ADMIT\] req=.*timed out|Receiver allocation failed",
            "PD transfer failure"),
    # request lifecycle
    LogHint("mp_stored", "lifecycle",
            r"\bStored (?P<tokens>\d+) tokens in (?P<secs>[\d.]+) seconds",
            "MP store completed", amount="tokens"),
    LogHint("mp_retrieved", "lifecycle",
            r"\bRetrieved (?P<tokens>\d+) tokens in (?P<secs>[\d.]+) seconds",
            "MP retrieve completed", amount="tokens"),
    # The same two lines name their module (LMCache's log format ends with
    # `(file.py:line:logger)`): EngineDrivenTransferModule.commit_store/commit_retrieve
    # (engine_driven_transfer.py, vLLM's default MP path) or LMCacheDrivenTransferModule.store/
    # retrieve (lmcache_driven_transfer.py). Only the latter feeds the transfer-path families.
    LogHint("mp_transfer_engine_driven", "lifecycle",
            r"\b(?P<op>Stored|Retrieved) (?P<tokens>\d+) tokens in [\d.]+ seconds\b.*?"
            r"\bengine_driven_transfer\b",
            "MP store/retrieve on the engine-driven path (engine_driven_transfer.py)"),
    LogHint("mp_transfer_lmcache_driven", "lifecycle",
            r"\b(?P<op>Stored|Retrieved) (?P<tokens>\d+) tokens in [\d.]+ seconds\b.*?"
            r"\blmcache_driven_transfer\b",
            "MP store/retrieve on the lmcache-driven path (lmcache_driven_transfer.py)"),
    LogHint("mp_prefetch_completed", "lifecycle",
            r"Prefetch request completed \(L1\+L2\): (?P<hit>\d+)/(?P<total>\d+) retained keys",
            "MP lookup/prefetch with hits", amount="hit"),
    LogHint("embedded_lookup", "lifecycle",
            r"Reqid: (?P<req>[^,]+), Total tokens (?P<total>\d+),.*?LMCache hit tokens: "
            r"(?P<hit>\d+)", "in-process lookup result", amount="hit"),
    LogHint("embedded_retrieved", "lifecycle",
            r"Retrieved (?P<tokens>\d+) out of (?P<required>\d+) required tokens",
            "in-process retrieve", amount="tokens"),
    LogHint("embedded_stored", "lifecycle", r"Stored (?P<tokens>\d+) out of total (?P<total>\d+)",
            "in-process store", amount="tokens"),
    LogHint("sglang_retrieve", "lifecycle", r"LMCache retrieve started|LMCache store_kv completed",
            "SGLang LMCache lifecycle"),
    LogHint("vllm_external_hit_rate", "lifecycle",
            r"External prefix cache hit rate: (?P<rate>[\d.]+)%",
            "vLLM's periodic external (KV connector) prefix-cache hit rate", amount="rate"),
    LogHint("vllm_mp_lookup_stats", "lifecycle",
            r"LMCache MP lookup count=(?P<count>\d+)", "vLLM's periodic LMCache MP lookup stats"),
    # LMCache configured but not working: the engine keeps serving and recomputes
    LogHint("lmcache_init_failed", "degraded",
            r"(?:Failed to initialize LMCacheManager components.*?|System will operate in "
            r"degraded mode.*?|)No supported (?P<device>\w+) connector found|"
            r"Failed to initialize LMCacheManager components|System will operate in degraded mode",
            "LMCache failed to initialise: the engine runs without it (degraded mode, recompute)"),
    LogHint("lmcache_post_init_skipped", "degraded",
            r"Skipping post_init due to previous initialization failure",
            "LMCache skipped its post-init after the failure"),
    LogHint("lmcache_lookup_rpc_timeout", "degraded",
            r"Timeout occurred for rank (?P<rank>\d+), recreating all sockets",
            "an LMCache lookup RPC timed out (the request waited, then recomputed)"),
    # hashing
    LogHint("none_hash", "hash_seed",
            r"(?:Initialized|Computed) NONE_HASH=(?P<value>\S+)|"
            r"Using default NONE_HASH=(?P<default>\S+)",
            "hash-chain root: must be identical across sharing processes"),
    LogHint("hash_seed_warning", "hash_seed",
            r"PYTHONHASHSEED not set|Using builtin hash without PYTHONHASHSEED|"
            r"Could not load '\w+' from vLLM\. Using builtin hash",
            "keys may differ between processes"),
    # memory pressure
    LogHint("l1_eviction_triggered", "eviction",
            r"L1 memory usage (?P<usage>[\d.]+) above watermark (?P<mark>[\d.]+)",
            "L1 above its eviction watermark"),
    LogHint("allocation_failure", "allocation_failure",
            r"Failed to batched allocate|Failed to allocate|allocation failed",
            "memory allocation failed"),
    LogHint("store_rejected", "error",
            r"Rejecting (?P<op>STORE|RETRIEVE) for unregistered GPU instance",
            "transfer rejected: GPU instance not registered"),
    LogHint("l2_store_failed", "error", r"Store task \d+ to adapter \d+ failed",
            "L2 store failed"),
    LogHint("event_bus_full", "error", r"EventBus queue full", "EventBus dropped events"),
    LogHint("timeout", "error", r"Timeout raised \(", "operation timed out"),
    LogHint("traceback", "error", r"^Traceback \(most recent call last\)", "Python traceback"),
    # lookup-hash logger start and stop (0.5.6 mp_observability/subscribers/logging/
    # lookup_hash.py: LookupHashLoggingSubscriber.__init__ / shutdown). existing_files is
    # the number of lookup_hashes_*.jsonl found at start; the new files are numbered from it.
    LogHint("lookup_hash_logger_start", "tracing",
            r"LookupHashLoggingSubscriber started: output_dir=(?P<dir>[^,]*), "
            r"rotation_interval=(?P<rotation_interval_s>-?\d+)s, "
            r"rotation_max_size=(?P<rotation_max_size>-?\d+), max_files=(?P<max_files>-?\d+), "
            r"existing_files=(?P<existing_files>\d+)",
            "lookup-hash logger started (its rotation limits and the files it found)"),
    LogHint("lookup_hash_logger_closed", "tracing", r"LookupHashLoggingSubscriber closed",
            "lookup-hash logger closed"),
    # --enable-extra-logging (0.5.6 distributed/storage_controllers/eviction_controller.py
    # and mp_observability/subscribers/logging/extra_stats.py).
    LogHint("extra_l1_memory_usage", "eviction",
            r"L1 memory usage: (?P<used_gib>[\d.]+)/(?P<total_gib>[\d.]+) GiB "
            r"\((?P<percent>[\d.]+)%\)",
            "periodic L1 memory usage (used/total GiB, --enable-extra-logging)"),
    LogHint("extra_l0_l1_stats", "lifecycle",
            r"L0<->L1 stats \[(?P<device>[^\]]*)\] (?P<window>last [\d.]+s|cumulative): "
            r"store ops=(?P<store_ops>\d+) tokens=(?P<store_tokens>\d+) "
            r"size=(?P<store_gb>[\d.]+)GB avg_copy=(?P<store_gbps>[\d.]+GB/s|n/a) \| "
            r"retrieve ops=(?P<retrieve_ops>\d+) tokens=(?P<retrieve_tokens>\d+) "
            r"size=(?P<retrieve_gb>[\d.]+)GB avg_copy=(?P<retrieve_gbps>[\d.]+GB/s|n/a)",
            "L0<->L1 transfer stats (lmcache-driven path only, --enable-extra-logging)"),
    # Why hits are zero or missing (issue #15). Each row is an upstream line, verbatim up to
    # its %-arguments; the file and function are named beside it (lmcache 0.5.6 wheel unless
    # said; vLLM 0.33.0 ships its own copies of the connector lines).
    # v1/multiprocess/server.py run_cache_server: /dev/shm smaller than L1 at MP start.
    LogHint("mp_shm_insufficient", "hit_cause",
            r"Insufficient /dev/shm capacity: need (?P<need>\d+) bytes, have (?P<have>\d+) "
            r"bytes\. Disabling SHM, falling back to pickle",
            "MP server started without shared memory (/dev/shm too small): transfers are "
            "pickled"),
    # v1/multiprocess/modules/lookup.py LookupModule.end_session: END_SESSION for a request
    # the server never looked up (a prompt shorter than one chunk, or a restarted server).
    LogHint("mp_session_not_found", "hit_cause",
            r"Session (?P<request>\S+) not found, skipping touch",
            "the MP server ended a session it never had: the request was never looked up"),
    # integration/vllm/vllm_multi_process_adapter.py _raise_server_unreachable.
    LogHint("mp_server_unreachable", "hit_cause",
            r"Cannot reach the LMCache MP server at '(?P<url>[^']*)' within (?P<secs>[\d.]+)s",
            "the engine could not reach the LMCache MP server"),
    # vllm_multi_process_adapter.py LMCacheMPSchedulerAdapter._mark_lookup_timed_out.
    LogHint("mp_lookup_timed_out", "hit_cause",
            r"LOOKUP to (?P<url>\S+) timed out after (?P<secs>[\d.]+)s\. Marking server as "
            r"unhealthy", "an engine LOOKUP RPC to the MP server timed out"),
    # vllm_multi_process_adapter.py LMCacheMPSchedulerAdapter.check_lookup_result.
    LogHint("mp_prefetch_status_timed_out", "hit_cause",
            r"QUERY_PREFETCH_STATUS to (?P<url>\S+) timed out\. Marking unhealthy",
            "an engine prefetch-status RPC to the MP server timed out"),
    # vllm_multi_process_adapter.py HeartbeatThread._execute.
    LogHint("mp_server_degraded", "hit_cause",
            r"LMCache server is unhealthy .{1,3} entering degraded mode",
            "the engine marked the MP server unhealthy and runs without it (recompute)"),
    # sdk/context.py LMCacheSDKContext.retrieve: fewer tokens than one chunk.
    LogHint("tokens_below_chunk", "hit_cause",
            r"Number of tokens \((?P<tokens>\d+)\) is less than chunk size "
            r"\((?P<chunk>\d+)\); returning None",
            "a request shorter than one chunk: nothing can hit"),
    # integration/vllm/vllm_v1_adapter.py LMCacheConnectorV1Impl.get_num_new_matched_tokens
    # (vLLM 0.33.0: kv_connector/v1/lmcache_integration/vllm_v1_adapter.py, same name):
    # LMCache hit, but vLLM's own prefix cache already held those tokens.
    LogHint("embedded_prefix_already_local", "hit_cause",
            r"LMCache hit tokens: (?P<hit>[1-9]\d*), (?:but )?need to load: (?P<load>0|-\d+)"
            r"(?!\d)",
            "LMCache hit, but vLLM already held the prefix (need to load <= 0)", amount="hit"),
    # integration/vllm/lmcache_mp_connector.py LMCacheMPConnector.get_num_new_matched_tokens
    # (vLLM 0.33.0 kv_connector/v1/lmcache_mp_connector.py, same function; debug level).
    LogHint("mp_prefix_already_local", "hit_cause",
            r"vLLM hit is: (?P<vllm_hit>\d+), Need to load is 0\b",
            "the MP lookup found nothing vLLM did not already hold (need to load 0)"),
)

# A cheap prefilter: one alternation of literal fragments no hint can match without.
_PREFILTER_TEXT = (
    r"LMCache|lmcache|LMC|MPCache|OTel|trace recording|LookupHash|Supported transfer|"
    r"(?i:hicache)|P2P|peer|controller|instance-worker|PD |pd_|NIXL|PDBackend|Async mem|"
    r"Stored|Retrieved|Prefetch request|Reqid|NONE_HASH|PYTHONHASHSEED|builtin hash|"
    r"watermark|allocat|Rejecting|Store task|EventBus|Timeout raised|Traceback|"
    r"kv[-_]offloading|enable[-_]lmcache|match_probe|CB |[Ff]ull sync|heartbeat|"
    r"Health check interval|unretrieved|External prefix|degraded mode|No supported|"
    r"Timeout occurred|post_init"
    # fragments of hints added later
    r"|L1 memory usage|L0<->L1 stats"
    r"|/dev/shm|skipping touch|Cannot reach the LMCache|"
    r" timed out|unhealthy|less than chunk size|need to load|Need to load"
    r"|vLLM server version|V1 LLM engine|"
    r"\u2588 +version")


@functools.cache
def _patterns() -> tuple[re.Pattern[str], list[tuple[LogHint, re.Pattern[str]]]]:
    """The prefilter and every hint's regex, compiled on the first log read (not at import:
    ~100 patterns cost every command ~15 ms of start-up, and most commands read no log)."""
    return re.compile(_PREFILTER_TEXT), [(h, re.compile(h.pattern)) for h in LOG_HINTS]


_AMOUNT = {h.id: h.amount for h in LOG_HINTS}
AMOUNT_HINTS = frozenset(h.id for h in LOG_HINTS if h.amount)


class HintMatch(msgspec.Struct, frozen=True, omit_defaults=True):
    """One matching line: where it is, the line (escaped), and the values it carries."""

    line: int
    text: str
    values: dict[str, str] = msgspec.field(default_factory=dict)


class HintSummary(msgspec.Struct, frozen=True):
    """Every line one hint matched: how many, where, a few examples, and — for hints with an
    `amount` — how many lines carried a positive amount (None: the hint has no amount)."""

    id: str
    category: str
    meaning: str
    count: int
    first_line: int
    last_line: int
    examples: list[HintMatch]
    positive: int | None = None


class StartFailure(msgspec.Struct, frozen=True, omit_defaults=True):
    """A process in this log failed while starting: a traceback (or vLLM's own startup-failure
    line) and no serving line anywhere in the log. `line`/`exception` are the first exception
    line after the traceback (the root cause), `marker` vLLM's summary line when present."""

    line: int
    exception: str
    traceback_line: int | None = None
    marker_line: int | None = None
    marker: str | None = None
    vllm: bool = False  # the log is in vLLM's format (`(Name pid=N)` prefix) or names vLLM


class LogFacts(msgspec.Struct, frozen=True, tag="log", omit_defaults=True):
    """Hints found in one log, by id, plus how much of the log was read."""

    role: str = "lmcache"
    lines: int = 0
    long_lines: int = 0
    undecodable_lines: int = 0
    hints: list[HintSummary] = msgspec.field(default_factory=list)
    start_failure: StartFailure | None = None

    def count(self, hint_id: str) -> int:
        return sum(h.count for h in self.hints if h.id == hint_id)

    def positive(self, hint_id: str) -> int:
        """Lines of this hint that are positive evidence (an amount > 0, or any line of a
        hint without an amount). Evidence read before amounts were counted gives a lower
        bound from its examples."""
        amount = _AMOUNT.get(hint_id, "")
        n = 0
        for h in self.hints:
            if h.id != hint_id:
                continue
            if not amount:
                n += h.count
            elif h.positive is not None:
                n += h.positive
            else:
                n += sum(1 for ex in h.examples if _positive(ex.values.get(amount)))
        return n

    def categories(self) -> set[str]:
        return {h.category for h in self.hints}


def safe_text(s: str) -> str:
    """Escape control characters (terminal escapes included) so a line is safe to print."""
    return "".join(c if (c.isprintable() or c == "\t") else f"\\x{ord(c):02x}" for c in s)


def _positive(value: str | None) -> bool:
    try:
        return value is not None and float(value) > 0
    except ValueError:
        return False


# vLLM's NewLineFormatter repeats `(Name pid=N) LEVEL MM-DD HH:MM:SS [file:line] ` on every line
# of a multi-line record (a logger.exception traceback included); stripped before matching.
_VLLM_PREFIX = _lazy.pattern(r"^\((?P<proc>[\w.-]+) pid=\d+\) ")
_VLLM_HEADER = _lazy.pattern(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d "
                          r"\d\d:\d\d:\d\d(?:\.\d+)? \[[^\]]*\] ")
# The process is serving: vLLM's api_server entry (`Starting vLLM server on`), uvicorn (vLLM,
# SGLang, the MP server's HTTP API) and the MP cache server itself.
_SERVING = ("Starting vLLM server on", "Application startup complete", "Uvicorn running on",
            "LMCache cache server is running")
# vLLM 0.33: EngineCoreProc.run_engine_core logs `EngineCore failed to start.` (core.py) and
# launch_core_engines raises `Engine core initialization failed. See root cause above.` or
# `Frontend process failed during engine core initialization.` (v1/engine/utils.py).
_START_MARKERS = ("EngineCore failed to start", "Engine core initialization failed",
                  "Frontend process failed during engine core initialization")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


class _StartScan:
    """Finds a startup failure: the first traceback printed as such (raw stderr, or a vLLM
    record at ERROR/CRITICAL) with its exception line, or vLLM's startup-failure line, in a
    log with no serving line. A traceback quoted inside another message (LMCache's degraded
    mode) is not one; one that is followed by serving is not a failed start."""

    def __init__(self) -> None:
        self.serving = False
        self.vllm = False
        self.in_tb = False
        self.tb_line: int | None = None
        self.exc: tuple[int, str] | None = None
        self.marker: tuple[int, str] | None = None

    def feed(self, n: int, text: str) -> None:
        body = text
        m = _VLLM_PREFIX.match(body)
        level = None
        if m is not None:
            self.vllm = True
            body = body[m.end():]
            h = _VLLM_HEADER.match(body)
            if h is not None:
                level, body = h.group("level"), body[h.end():]
        if not self.serving and any(s in body for s in _SERVING):
            self.serving = True
        if self.marker is None and any(s in body for s in _START_MARKERS):
            self.marker = (n, safe_text(body.strip()))
            self.vllm = True
        if self.in_tb:
            if not body.strip() or body[0] in " \t":
                return  # frames, source lines, carets
            if body.startswith(_CHAINED):
                return
            if body.startswith(_TRACEBACK):
                return  # the next traceback of a chain
            if self.exc is None:
                self.exc = (n, safe_text(body.strip()))
            self.in_tb = False
            return
        if body.startswith(_TRACEBACK) and level in (None, "ERROR", "CRITICAL") \
                and self.exc is None:
            self.in_tb = True
            self.tb_line = n

    def result(self) -> StartFailure | None:
        if self.serving:
            return None
        if self.exc is not None:
            line, exc, tb = self.exc[0], self.exc[1], self.tb_line
        elif self.marker is not None:
            line, exc, tb = self.marker[0], self.marker[1], None
        else:
            return None
        mark = self.marker
        return StartFailure(line, exc, tb, mark[0] if mark else None, mark[1] if mark else None,
                            self.vllm)


MAX_RAW_LINE = 64 << 10  # bytes of one line kept while streaming (the rest is skipped)
BLOCK = 1 << 20


def stream_blocks(f: IO[bytes], sha: Any) -> Iterator[bytes]:
    """The file as blocks of whole lines (about 1 MiB each; the lines `bytes.splitlines`
    gives, every line cut to `MAX_RAW_LINE` bytes): memory stays bounded by the block, and
    every byte read is fed to `sha`. Each block but the last ends with b"\\n"."""
    part = b""    # the start of an unfinished line, at most MAX_RAW_LINE bytes
    while True:
        block = f.read(BLOCK)
        if not block:
            break
        sha.update(block)
        first = block.find(b"\n")
        if first < 0:
            part = (part + block)[:MAX_RAW_LINE]
            continue
        last = block.rfind(b"\n")
        head = (part + block[:first])[:MAX_RAW_LINE] + b"\n"
        body = block[first + 1:last + 1]
        part = block[last + 1:last + 1 + MAX_RAW_LINE]
        if len(body) > MAX_RAW_LINE:
            body = _cut_segments(body)
        yield head + body
    if part:
        yield part


def _cut_segments(body: bytes) -> bytes:
    """`body` (b"\\n"-terminated segments) with every segment cut to MAX_RAW_LINE bytes."""
    from inferguard.evidence._scan import longest_line

    if longest_line(body) <= MAX_RAW_LINE:
        return body
    return b"\n".join(s[:MAX_RAW_LINE] for s in body.split(b"\n"))


def _chunks(data: bytes, size: int | None = None) -> Iterator[bytes]:
    """`data` as blocks of whole lines of about `size` (default `BLOCK`) bytes."""
    from inferguard.evidence._scan import whole_line_pieces

    return whole_line_pieces(data, size or BLOCK)


# Lines are scanned in pieces of about this many bytes: numpy's temporaries and the copies of
# a piece then stay small enough that the heap does not grow with the file (1 MiB pieces
# fragmented it to ~110 MiB over 1 GB; 64 KiB ones stay near 45 MiB), and they are faster.
SCAN_BLOCK = 64 << 10


# The ANSI escape as a bytes pattern: its classes are ASCII, so on UTF-8 it removes exactly
# what the text pattern removes from the decoded line.
_ANSI_BYTES = _lazy.pattern(ANSI_ESCAPE.encode())


def _safe(s: str) -> str:
    """`safe_text`, without its per-character walk when every character is printable."""
    return s if s.isprintable() else safe_text(s)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Plan(NamedTuple):
    """What the block scan needs, built once: the 4-gram index (`_scan.GramIndex`) over
    every hint and, as the last pattern, the start strings (`_SERVING`, `_START_MARKERS`,
    `_TRACEBACK`); per hint its regex and whether every match of it is shown to contain a
    prefilter match (if not, the prefilter is checked on the line)."""

    index: Any
    hints: list[tuple[LogHint, re.Pattern[str], bool]]
    start_bit: int
    every: int   # hints without anchors, tried on every line (none today; a test says so)


@functools.cache
def _plan() -> _Plan:
    """Built on the first log read (anchors from every pattern, a 1 MiB table)."""
    from inferguard.evidence import _scan

    prefilter, compiled = _patterns()
    grams: list[list[bytes]] = []
    every = 0
    hints = []
    for i, (hint, rx) in enumerate(compiled):
        a = _scan.anchors(hint.pattern)
        if a is None:
            every |= 1 << i
        grams.append(a or [])
        hints.append((hint, rx, _scan.implies(hint.pattern, prefilter)))
    grams.append([g for s in (*_SERVING, *_START_MARKERS, _TRACEBACK)
                  for g in (_scan.anchors(re.escape(s)) or [])])
    return _Plan(_scan.GramIndex(grams), hints, 1 << len(hints), every)


class _LogScan:
    """One log read: hint counts, examples, line counts and the start scan, fed whole blocks
    of lines (`block`) or, for a line holding a line break, one line (`raw_line`). Results
    are those of reading line by line: decode (replacing bad UTF-8), cut to MAX_LINE, strip
    ANSI, feed `_StartScan`, and try every hint on lines the prefilter passes."""

    def __init__(self) -> None:
        self.found: dict[str, list[HintMatch]] = {}
        self.counts: dict[str, int] = {}
        self.positive: dict[str, int] = {}
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.lines = self.long_lines = self.bad_lines = 0
        self.start = _StartScan()
        self.prefilter, self.compiled = _patterns()
        self.plan = _plan()

    def record(self, hint: LogHint, m: re.Match[str], n: int, text: str) -> None:
        hid = hint.id
        self.counts[hid] = self.counts.get(hid, 0) + 1
        if hint.amount and _positive(m.group(hint.amount)):
            self.positive[hid] = self.positive.get(hid, 0) + 1
        self.first.setdefault(hid, n)
        self.last[hid] = n
        ex = self.found.setdefault(hid, [])
        if len(ex) < EXAMPLES_PER_HINT:
            values = {k: _safe(v) for k, v in m.groupdict().items() if v is not None}
            ex.append(HintMatch(n, _safe(redact_text(text.strip())), values))

    def raw_line(self, raw: bytes) -> None:
        """One line, read as the line-by-line reader reads it."""
        self.lines += 1
        n = self.lines
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self.bad_lines += 1
        if len(text) > MAX_LINE:
            self.long_lines += 1
            text = text[:MAX_LINE]
        if "\x1b" in text:
            text = ANSI.sub("", text)
        self.start.feed(n, text)
        if not self.prefilter.search(text):
            return
        for hint, rx in self.compiled:
            m = rx.search(text)
            if m is not None:
                self.record(hint, m, n, text)

    def _clean(self, raw: bytes) -> bytes:
        """The block's lines as the hints see them (UTF-8, each b"\n"-terminated): bad UTF-8
        replaced, lines over MAX_LINE characters cut, then ANSI escapes removed (a cut line
        loses its escapes after the cut, so lines between long ones are stripped in runs)."""
        if not (raw.isascii() or _utf8(raw)):
            return self._clean_lines(raw)
        if len(raw) <= MAX_LINE:
            return _ANSI_BYTES.sub(b"", raw) if b"\x1b" in raw else raw
        from inferguard.evidence._scan import long_lines

        ansi = b"\x1b" in raw
        out: list[bytes] = []
        done = 0
        for s, e in long_lines(raw, MAX_LINE):
            out.append(_ANSI_BYTES.sub(b"", raw[done:s]) if ansi else raw[done:s])
            text = raw[s:e].decode("utf-8")
            line = raw[s:e]
            if len(text) > MAX_LINE:
                self.long_lines += 1
                line = text[:MAX_LINE].encode("utf-8")
            out.append(_ANSI_BYTES.sub(b"", line) if ansi else line)
            done = e
        if not out:
            return _ANSI_BYTES.sub(b"", raw) if ansi else raw
        out.append(_ANSI_BYTES.sub(b"", raw[done:]) if ansi else raw[done:])
        return b"".join(out)

    def _clean_lines(self, raw: bytes) -> bytes:
        """`_clean` line by line, for a block holding bad UTF-8."""
        lines = raw.split(b"\n")
        lines.pop()
        for i, line in enumerate(lines):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                self.bad_lines += 1
                text = line.decode("utf-8", "replace")
            if len(text) > MAX_LINE:
                self.long_lines += 1
                text = text[:MAX_LINE]
            lines[i] = text.encode("utf-8")
            if b"\x1b" in lines[i]:
                lines[i] = _ANSI_BYTES.sub(b"", lines[i])
        lines.append(b"")
        return b"\n".join(lines)

    def block(self, raw: bytes) -> None:
        """Whole lines, as `raw.splitlines()` gives them (scanned in `SCAN_BLOCK` pieces)."""
        for piece in _chunks(raw, SCAN_BLOCK) if len(raw) > SCAN_BLOCK else (raw,):
            self._piece(piece)

    def _piece(self, raw: bytes) -> None:
        if not raw:
            return
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not raw.endswith(b"\n"):
            raw += b"\n"
        raw = self._clean(raw)
        plan = self.plan
        end, masks = plan.index.line_masks(raw)
        base, nlines = self.lines, len(end)
        self.lines += nlines

        def text(i: int) -> str:
            return raw[end[i - 1] + 1 if i else 0:end[i]].decode("utf-8")

        if plan.every:
            have = dict(masks)
            masks = [(i, have.get(i, 0) | plan.every) for i in range(nlines)]
        if not self.start.serving:
            self._start_block(raw, base, nlines, [i for i, m in masks if m & plan.start_bit],
                              text)
        hints = plan.hints
        for i, mask in masks:
            mask &= plan.start_bit - 1
            if not mask:
                continue
            line = text(i)
            pre: bool | None = None
            while mask:
                bit = mask & -mask
                mask ^= bit
                hint, rx, proven = hints[bit.bit_length() - 1]
                m = rx.search(line)
                if m is None:
                    continue
                if not proven:
                    if pre is None:
                        pre = self.prefilter.search(line) is not None
                    if not pre:
                        continue
                self.record(hint, m, base + i + 1, line)

    def _start_block(self, raw: bytes, base: int, nlines: int, lines: list[int],
                     text: Any) -> None:
        """Feed `_StartScan` the lines that can change it: those holding a start string, the
        lines of a traceback being read, and (for the vLLM flag) lines starting with "("."""
        start = self.start
        done = 0  # lines before this one were fed or cannot change the scan
        for i in lines:
            if start.serving:
                return
            while start.in_tb and done < nlines:
                start.feed(base + done + 1, text(done))
                done += 1
            if i >= done:
                start.feed(base + i + 1, text(i))
                done = i + 1
        while start.in_tb and done < nlines:
            start.feed(base + done + 1, text(done))
            done += 1
        if start.vllm:
            return
        p = 0 if raw.startswith(b"(") else raw.find(b"\n(") + 1
        while p or raw.startswith(b"("):
            e = raw.find(b"\n", p)
            if _VLLM_PREFIX.match(raw[p:e].decode("utf-8")):
                start.vllm = True
                return
            p = raw.find(b"\n(", e) + 1
            if not p:
                return

    def evidence(self, source: EvidenceSource, role: str, kind: EvidenceKind) -> Evidence:
        hints = [HintSummary(h.id, h.category, h.meaning, self.counts[h.id], self.first[h.id],
                             self.last[h.id], self.found[h.id],
                             self.positive.get(h.id, 0) if h.amount else None)
                 for h in LOG_HINTS if h.id in self.counts]
        problems = []
        if self.long_lines:
            problems.append(Problem(f"{self.long_lines} lines longer than {MAX_LINE} characters "
                                    "were cut"))
        if self.bad_lines:
            problems.append(Problem(f"{self.bad_lines} lines are not valid UTF-8 (read with "
                                    "replacement)"))
        facts = LogFacts(role=role, lines=self.lines, long_lines=self.long_lines,
                         undecodable_lines=self.bad_lines, hints=hints,
                         start_failure=self.start.result())
        return Evidence(kind=kind, source=source, status="partial" if problems else "ok",
                        facts=facts, problems=problems)


def read_log_bytes(data: bytes | Iterable[bytes], source: EvidenceSource, *,
                   role: str = "lmcache", kind: EvidenceKind = "log") -> Evidence:
    """Scan log bytes (or an iterable of lines) for hints. Never raises; binary garbage
    just matches nothing. Example lines are redacted (`_redact`) before they are kept."""
    scan = _LogScan()
    if isinstance(data, bytes):
        for chunk in _chunks(data):
            scan.block(chunk)
    else:
        batch: list[bytes] = []
        for line in data:
            if b"\n" in line or b"\r" in line:
                scan.block(b"".join(batch))
                batch.clear()
                scan.raw_line(line)
                continue
            batch += (line, b"\n")
            if len(batch) >= 8192:
                scan.block(b"".join(batch))
                batch.clear()
        scan.block(b"".join(batch))
    return scan.evidence(source, role, kind)


def read_log(path: str | os.PathLike[str], *, role: str = "lmcache") -> Evidence:
    """Read one log file (LMCache server, vLLM, SGLang) into hint evidence, streamed in
    blocks of lines (memory does not grow with the file); only a regular file is read."""
    p = os.fspath(path)
    sha = hashlib.sha256()
    try:
        with open_input(p) as f:
            scan = _LogScan()
            for block in stream_blocks(f, sha):
                scan.block(block)
            ev = scan.evidence(EvidenceSource(path=p), role, "log")
            size = f.tell()
    except (NotRegularFile, OSError) as exc:
        msg = (exc.strerror or str(exc)) if isinstance(exc, NotRegularFile) else \
            f"cannot read file: {exc.strerror or exc}"
        return Evidence(kind="log", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(msg)])
    return msgspec.structs.replace(ev, source=EvidenceSource(path=p, sha256=sha.hexdigest(),
                                                             size=size))
