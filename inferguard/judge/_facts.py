"""`ReportFacts`: the non-metric facts the finding rules read, typed end to end.

`compat()` reduces every evidence kind of a packet to a small Struct here (log hints, the MP
server's HTTP answers, traces, spans, replays, lookup-hash aggregates, launch env, CacheBlend,
controller and the vLLM↔LMCache join), so rules read attributes that mypy checks instead of
dictionary keys that are silently `None` when misspelled. It is carried by `CompatReport` and
round-trips through JSON with the report.
"""

from __future__ import annotations

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._engine_http import EngineHealthFacts
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._lookup_hashes import LookupHashFacts
from inferguard.evidence._metrics import FamilyStats, MetricsFacts
from inferguard.evidence._model import Evidence, source_label
from inferguard.evidence._otel import OtelFacts
from inferguard.evidence._replay import ReplayFacts
from inferguard.evidence._trace import FirstChunkGaps, TraceFacts
from inferguard.judge._blend import BlendDigest, blend_digest
from inferguard.judge._controller import ControllerDigest, controller_digest
from inferguard.prom._names import normalize_name


class HttpDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    """The first readable MP-server HTTP evidence: health, version, L1/L2 state."""

    healthy: bool | None = None
    version: str | None = None
    periodic_threads_healthy: bool | None = None
    unhealthy_threads: list[str] = msgspec.field(default_factory=list)
    l1_usage_ratio: float | None = None
    num_l2_adapters: int | None = None
    env_pythonhashseed: str | None = None
    chunk_size: int | None = None  # /status: tokens per chunk (shorter prompts never hit)


class TraceAnalyticsFinding(msgspec.Struct, frozen=True, omit_defaults=True):
    """One trace-analytics finding as it reaches the rules (`code` is the analytics code,
    `trace_<x>`; the table knows it as `lmcache_trace_<x>`)."""

    code: str
    level: str
    detail: str
    offsets: list[int] = msgspec.field(default_factory=list)


class TraceDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    """One `.lct` evidence: parse status, record and op counts, analytics findings."""

    source: str
    status: str
    problems: int = 0
    records: int = 0
    ops: dict[str, int] = msgspec.field(default_factory=dict)
    first_problem_offset: int | None = None
    analytics: list[TraceAnalyticsFinding] = msgspec.field(default_factory=list)
    first_chunk_gaps: FirstChunkGaps | None = None


class OtelDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    span_count: int = 0
    span_names: list[str] = msgspec.field(default_factory=list)
    open_spans: dict[str, int] = msgspec.field(default_factory=dict)
    errors: dict[str, int] = msgspec.field(default_factory=dict)


class ReplayDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    form: str
    failed: int | None = None
    digest_match: bool | None = None
    errors: int = 0
    # From the replay's log: problems upstream's `failed` (handlers that raised) hides.
    allocation_failures: int | None = None
    failed_reads: int | None = None
    reads_of_missing_keys: int | None = None


class LookupHashDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    """Aggregates of lookup-hash logs (never a raw hash)."""

    lookups: int = 0
    chunks_total: int = 0
    chunks_repeated: int | None = None
    missing_rotation_counters: list[int] = msgspec.field(default_factory=list)
    files: int = 0
    rotated_away_counters: int = 0
    files_lost_at_least: int = 0
    reused_counters: list[int] = msgspec.field(default_factory=list)
    counts_at_least: bool = False


class LaunchModels(msgspec.Struct, frozen=True):
    """The vLLM launch's `--model` (LMCache's model_name) and served name (vLLM's)."""

    model: str
    served_model_name: str


class VllmLmcacheDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    """vLLM's connector counters beside LMCache's own, and how their series join.

    `vllm:external_prefix_cache_hits` counts tokens a KV connector actually loaded; LMCache's
    lookup hit tokens count every lookup hit, including prefixes vLLM still held locally, so
    the two differ by design. vLLM labels series with the served model name, LMCache with the
    model path: the launch command (`--model`, `--served-model-name`) is the join."""

    vllm_external_queries: float | None = None
    vllm_external_hits: float | None = None
    vllm_model_names: list[str] = msgspec.field(default_factory=list)
    engine_lmcache_families: int | None = None
    engine_lmcache_families_with_samples: int | None = None
    engine_lmcache_nonzero_families: int | None = None
    engine_lmcache_mp_lookup_count: float | None = None
    lmcache_lookup_hit_tokens: float | None = None
    lmcache_lookup_requested_tokens: float | None = None
    lmcache_model_names: list[str] = msgspec.field(default_factory=list)
    launch_models: LaunchModels | None = None
    model_join: str | None = None


class EngineHealth(msgspec.Struct, frozen=True, omit_defaults=True):
    """One engine /health answer (vLLM: 200 healthy, 503 EngineDeadError; no answer: not
    listening)."""

    source: str
    healthy: bool
    status: int | None = None
    error: str | None = None
    version: str | None = None


class EngineStartFailure(msgspec.Struct, frozen=True, omit_defaults=True):
    """A log shows a process that failed while starting and never served (see
    `evidence._logs.StartFailure`), and no measured evidence shows it serving. The rule
    `lmcache_engine_failed_to_start` and the `mode` claim both read this one fact.
    `corroborated_by` names measured evidence that agrees (an engine /health with no 200)."""

    source: str
    line: int
    exception: str
    traceback_line: int | None = None
    marker_line: int | None = None
    marker: str | None = None
    corroborated_by: list[str] = msgspec.field(default_factory=list)


class MalformedEvidence(msgspec.Struct, frozen=True):
    kind: str
    source: str
    problem: str


class TokenSources(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where vLLM's prompt tokens came from (vLLM 0.33.0 loggers.py
    `vllm:prompt_tokens_by_source`, label `source`): computed, served by vLLM's own prefix
    cache (kept locally), or loaded through the KV connector (LMCache); and the residency
    histograms' observation counts when `--kv-cache-metrics` registered them. Local hits are
    never LMCache's."""

    local_compute: float | None = None
    local_cache_hit: float | None = None
    external_kv_transfer: float | None = None
    cached_by_source: dict[str, float] = msgspec.field(default_factory=dict)
    kv_block_reuse_observations: float | None = None
    kv_block_evict_observations: float | None = None


class ReportFacts(msgspec.Struct, frozen=True, omit_defaults=True):
    """Everything the rules read besides family results, one typed field per evidence kind."""

    log_hints: dict[str, int] = msgspec.field(default_factory=dict)
    log_values: dict[str, list[str]] = msgspec.field(default_factory=dict)
    log_positive: dict[str, int] = msgspec.field(default_factory=dict)
    http: HttpDigest | None = None
    traces: list[TraceDigest] = msgspec.field(default_factory=list)
    otel: OtelDigest = msgspec.field(default_factory=OtelDigest)
    replay: list[ReplayDigest] = msgspec.field(default_factory=list)
    lookup_hashes: list[LookupHashDigest] = msgspec.field(default_factory=list)
    launch_env: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # The MP server's null block id: `lmcache server --null-block-id` per launch line and
    # /config mp.null_block_id per HTTP capture ("launch 0", "/config 0").
    null_block_ids: list[str] = msgspec.field(default_factory=list)
    blend: BlendDigest | None = None
    controller: list[ControllerDigest] = msgspec.field(default_factory=list)
    vllm_lmcache: VllmLmcacheDigest | None = None
    token_sources: TokenSources | None = None
    malformed_evidence: list[MalformedEvidence] = msgspec.field(default_factory=list)
    no_lmcache_configured: list[str] = msgspec.field(default_factory=list)
    engine_health: list[EngineHealth] = msgspec.field(default_factory=list)
    engine_start_failure: EngineStartFailure | None = None

    def controllers(self, server: str = "controller") -> list[ControllerDigest]:
        """Controller-kind digests of one server type (`controller` or `internal_api`)."""
        return [c for c in self.controller if c.server == server]


def readable(packet: Packet, *kinds: str) -> list[Evidence]:
    """Evidence of these kinds that parsed (fully or partly) into facts."""
    return [e for e in packet.of_kind(*kinds) if e.status in ("ok", "partial")
            and e.facts is not None]


def _op_name(qualname: str) -> str:
    """The op's short name, as the rules match it (`store`, `read_prefetched_results`...)."""
    return qualname.rsplit(".", 2 if qualname.endswith(("__enter__", "__exit__")) else 1)[-1]


def report_facts(packet: Packet) -> ReportFacts:
    """Reduce a packet's non-metric evidence to the typed facts the rules read."""
    hints: dict[str, int] = {}
    positive: dict[str, int] = {}
    values: dict[str, list[str]] = {}
    for e in readable(packet, "log"):
        assert isinstance(e.facts, LogFacts)
        for h in e.facts.hints:
            hints[h.id] = hints.get(h.id, 0) + h.count
            positive[h.id] = positive.get(h.id, 0) + e.facts.positive(h.id)
            for ex in h.examples[:5]:
                for k, v in ex.values.items():
                    values.setdefault(f"{h.id}.{k}", []).append(v)
    http = [e.facts for e in readable(packet, "http") if isinstance(e.facts, HttpFacts)]
    http_digest = None
    if http:
        hf = http[0]
        http_digest = HttpDigest(hf.healthy, hf.version, hf.periodic_threads_healthy,
                                 list(hf.unhealthy_threads), hf.l1_usage_ratio,
                                 hf.num_l2_adapters, hf.env.get("PYTHONHASHSEED"),
                                 hf.chunk_size)
    traces = []
    for e in packet.of_kind("trace"):
        tf = e.facts if isinstance(e.facts, TraceFacts) else None
        summary = tf.summary if tf is not None else None
        traces.append(TraceDigest(
            source=source_label(e), status=e.status, problems=len(e.problems),
            records=summary.total_records if summary else 0,
            ops={_op_name(o.qualname): o.count for o in summary.ops} if summary else {},
            first_problem_offset=e.problems[0].offset if e.problems else None,
            analytics=[TraceAnalyticsFinding(f.code, f.evidence, f.detail, f.offsets[:5])
                       for f in tf.analytics] if tf is not None else [],
            first_chunk_gaps=tf.first_chunk_gaps if tf is not None else None))
    spans = [e.facts for e in readable(packet, "otel") if isinstance(e.facts, OtelFacts)]
    otel = OtelDigest(sum(s.span_count for s in spans),
                      sorted({x.name for s in spans for x in s.spans}),
                      {x.name: x.open for s in spans for x in s.spans if x.open},
                      {x.name: x.errors for s in spans for x in s.spans if x.errors})
    replays = [ReplayDigest(r.form, r.failed, r.digest_match, sum(o.errors for o in r.ops),
                            r.allocation_failures, r.failed_reads, r.reads_of_missing_keys)
               for e in readable(packet, "trace_replay") if isinstance(r := e.facts, ReplayFacts)]
    lookups = [LookupHashDigest(lf.lookups, lf.chunks_total, lf.chunks_repeated,
                                list(lf.missing_rotation_counters), lf.files,
                                lf.rotated_away_counters, lf.files_lost_at_least,
                                list(lf.reused_counters), lf.counts_at_least)
               for e in readable(packet, "lookup_hash")
               if isinstance(lf := e.facts, LookupHashFacts)]
    launch_env: dict[str, list[str]] = {}
    null_ids = [f"launch {x.flags.get('null-block-id', 'default (0)')}" for e in readable(
        packet, "launch_config") if isinstance(e.facts, LaunchFacts) for x in e.facts.launches
        if x.program == "lmcache_server"] + [
        f"/config {h.null_block_id}" for h in http if h.null_block_id is not None]
    for e in readable(packet, "launch_config"):
        assert isinstance(e.facts, LaunchFacts)
        for k, v in e.facts.env.items():
            launch_env.setdefault(k, []).append(v)
    return ReportFacts(
        log_hints=hints, log_values={k: sorted(set(v)) for k, v in values.items()},
        log_positive=positive,
        http=http_digest, traces=traces, otel=otel, replay=replays, lookup_hashes=lookups,
        launch_env=launch_env, null_block_ids=null_ids, blend=blend_digest(packet),
        controller=controller_digest(packet),
        vllm_lmcache=vllm_lmcache_digest(packet), token_sources=token_sources(packet),
        malformed_evidence=[MalformedEvidence(e.kind, source_label(e),
                                              e.problems[0].message if e.problems else "")
                            for e in packet.evidence if e.status == "malformed"],
        engine_health=engine_health(packet), engine_start_failure=engine_start_failure(packet),
        no_lmcache_configured=no_lmcache_configured(packet))


def engine_health(packet: Packet) -> list[EngineHealth]:
    """Every engine /health answer (or non-answer) in the packet."""
    out = []
    for e in packet.of_kind("engine_http"):
        f = e.facts
        if isinstance(f, EngineHealthFacts) and f.healthy is not None:
            out.append(EngineHealth(source_label(e), f.healthy, f.health_status, f.health_error,
                                    f.version))
    return out


def engine_start_failure(packet: Packet) -> EngineStartFailure | None:
    """The first log whose process failed to start, unless measured evidence shows it
    serving: for a vLLM log, an engine /health 200 or an engine scrape with families; for any
    other process also an LMCache scrape or an MP /healthcheck answer. Measured beats hinted."""
    health = engine_health(packet)
    engine_up = [h.source for h in health if h.healthy] + [
        source_label(e) for e in readable(packet, "engine_metrics")
        if isinstance(e.facts, MetricsFacts) and e.facts.families]
    other_up = [source_label(e) for e in readable(packet, "lmcache_metrics")
                if isinstance(e.facts, MetricsFacts) and e.facts.families] + [
        source_label(e) for e in readable(packet, "http")
        if isinstance(e.facts, HttpFacts) and e.facts.healthy is not None]
    for e in readable(packet, "log"):
        assert isinstance(e.facts, LogFacts)
        sf = e.facts.start_failure
        if sf is None or engine_up or (not sf.vllm and other_up):
            continue
        down = [f"{h.source}: /health " + (f"HTTP {h.status}" if h.status is not None
                                           else f"no answer ({h.error})")
                for h in health if not h.healthy]
        return EngineStartFailure(source_label(e), sf.line, sf.exception, sf.traceback_line,
                                  sf.marker_line, sf.marker, down)
    return None


# Log categories that show LMCache (or a KV connector) somewhere in a process.
_LMCACHE_LOG = frozenset(["mp_server", "mp_connector", "embedded_vllm", "stale_connector",
                          "offload_flag", "sglang_lmcache", "degraded", "blend", "p2p", "pd"])


def no_lmcache_configured(packet: Packet) -> list[str]:
    """Evidence that the engine runs without any LMCache connector: engine launches without a
    KV connector, offloading backend or --enable-lmcache; engine scrapes without any
    `lmcache:*` family, without vLLM's KV-connector gauge and with no external prefix-cache
    query (vLLM exports `vllm:external_prefix_cache_*` at 0 without a connector); no LMCache
    line in any log. Empty as soon as anything shows LMCache (then the mode rules decide)."""
    refs: list[str] = []
    for e in readable(packet, "launch_config"):
        assert isinstance(e.facts, LaunchFacts)
        for x in e.facts.launches:
            if x.program not in ("vllm", "sglang"):
                if x.program is not None and x.program.startswith("lmcache"):
                    return []
                continue
            if x.kv_connector or x.kv_offloading_backend or x.lmcache_enabled:
                return []
            refs.append(f"{source_label(e)}: launch line {x.line}: {x.program} without a KV "
                        "connector, --kv-offloading-backend or --enable-lmcache")
    for e in readable(packet, "engine_metrics", "lmcache_metrics"):
        assert isinstance(e.facts, MetricsFacts)
        names = {normalize_name(f.name): f for f in e.facts.families}
        if any(n.startswith("lmcache") for n in names):
            return []
        if e.kind != "engine_metrics" or not any(n.startswith(("vllm:", "sglang:"))
                                                 for n in names):
            continue
        queries = names.get(normalize_name("vllm:external_prefix_cache_queries"))
        if "vllm:num_requests_kv_fetch_by_stage" in names or (queries and queries.total > 0):
            return []
        refs.append(f"{source_label(e)}: no lmcache:* family, no KV-connector gauge, "
                    f"vllm:external_prefix_cache_queries={queries.total if queries else 0:g}")
    for e in readable(packet, "log"):
        assert isinstance(e.facts, LogFacts)
        if e.facts.categories() & _LMCACHE_LOG:
            return []
    if packet.of_kind("http", "controller", "otel", "trace", "lookup_hash", "trace_replay"):
        return []
    return refs


def _fam_any(facts: list[MetricsFacts], *names: str) -> FamilyStats | None:
    """The first family under any of `names` (with or without the counter `_total`)."""
    want = {normalize_name(n) for n in names}
    return next((fam for f in facts for fam in f.families
                 if normalize_name(fam.name) in want), None)


def _label(fam: FamilyStats | None, label: str) -> list[str]:
    return list(fam.labels[label].values) if fam is not None and label in fam.labels else []


def token_sources(packet: Packet) -> TokenSources | None:
    """`TokenSources` from the engine scrapes (summed over scrapes' last values per family:
    the first scrape that carries a family gives it); None when no scrape has them."""
    fams = {fam.name.removesuffix("_total"): fam for e in readable(packet, "engine_metrics")
            if isinstance(e.facts, MetricsFacts) for fam in e.facts.families}
    by = fams.get("vllm:prompt_tokens_by_source")
    cached = fams.get("vllm:prompt_tokens_cached_by_source")
    reuse = fams.get("vllm:kv_block_reuse_gap_seconds")
    evict = fams.get("vllm:kv_block_idle_before_evict_seconds")
    if by is None and cached is None and reuse is None and evict is None:
        return None
    src = by.label_totals.get("source", {}) if by is not None else {}
    return TokenSources(
        local_compute=src.get("local_compute"), local_cache_hit=src.get("local_cache_hit"),
        external_kv_transfer=src.get("external_kv_transfer"),
        cached_by_source=dict(sorted(cached.label_totals.get("source", {}).items()))
        if cached is not None else {},
        kv_block_reuse_observations=_observations(reuse),
        kv_block_evict_observations=_observations(evict))


def _observations(fam: FamilyStats | None) -> float | None:
    """A histogram family's observation count (its `_count` samples), None when absent."""
    return None if fam is None else fam.total


def vllm_lmcache_digest(packet: Packet) -> VllmLmcacheDigest | None:
    """vLLM's connector counters beside LMCache's (see `VllmLmcacheDigest`); also counts the
    `lmcache:*` families the engine scrape declares and how many carry samples. None when the
    packet has no scrape at all."""
    engine = [e.facts for e in readable(packet, "engine_metrics")
              if isinstance(e.facts, MetricsFacts)]
    lmc = [e.facts for e in readable(packet, "lmcache_metrics")
           if isinstance(e.facts, MetricsFacts)]
    if not engine and not lmc:
        return None
    d: dict[str, object] = {}
    ext_q = _fam_any(engine, "vllm:external_prefix_cache_queries")
    ext_h = _fam_any(engine, "vllm:external_prefix_cache_hits")
    if ext_q is not None or ext_h is not None:
        d["vllm_external_queries"] = ext_q.total if ext_q is not None else None
        d["vllm_external_hits"] = ext_h.total if ext_h is not None else None
        d["vllm_model_names"] = _label(ext_h or ext_q, "model_name")
    emb = [fam for f in engine for fam in f.families if fam.name.startswith("lmcache:")]
    if engine:
        d["engine_lmcache_families"] = len(emb)
        d["engine_lmcache_families_with_samples"] = sum(1 for x in emb if x.samples)
        d["engine_lmcache_nonzero_families"] = sum(1 for x in emb if x.nonzero_samples)
        d["engine_lmcache_mp_lookup_count"] = next(
            (x.total for f in engine for x in f.families
             if x.name.startswith("vllm:lmcache_mp_lookup_duration_seconds")), None)
    hit = _fam_any(lmc, "lmcache_mp_lookup_hit_tokens_total")
    req = _fam_any(lmc, "lmcache_mp_lookup_requested_tokens_total")
    if hit is not None or req is not None:
        d["lmcache_lookup_hit_tokens"] = hit.total if hit is not None else None
        d["lmcache_lookup_requested_tokens"] = req.total if req is not None else None
        d["lmcache_model_names"] = _label(hit or req, "model_name")
    join: LaunchModels | None = None
    for e in readable(packet, "launch_config"):
        assert isinstance(e.facts, LaunchFacts)
        for x in e.facts.launches:
            if x.program != "vllm":
                continue
            model = x.flags.get("model") or x.flags.get("positional")
            served = x.flags.get("served-model-name")
            if isinstance(model, str):
                join = LaunchModels(model, served if isinstance(served, str) else model)
    out = msgspec.convert(d, VllmLmcacheDigest)
    vn, ln = set(out.vllm_model_names), set(out.lmcache_model_names)
    how = None
    if vn and ln:
        if vn & ln:
            how = "same_label"
        elif join is not None and join.served_model_name in vn and join.model in ln:
            how = "via_launch"
        else:
            how = "unjoined"
    return msgspec.structs.replace(out, launch_models=join, model_join=how)
