"""Engines and embedded LMCache: hash seeds, lmcache:* export, configured-but-dead, the
vLLM↔LMCache join, HiCache, and the P2P / PD / legacy-connector log surfaces."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._reads import hints_of, is_measured
from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._facts import VllmLmcacheDigest
from inferguard.judge._mode import INFERRED, MISSING_SIGNAL, PARTIAL, SUPPORTED
from inferguard.judge._report import CompatReport


@rule(emits=("lmcache_hash_seed_risk",))
def hash_seed(r: CompatReport) -> Iterator[Finding]:
    logs = hints_of(r)
    none_hashes = set(r.facts.log_values.get("none_hash.value", []))
    seeds = set(r.facts.launch_env.get("PYTHONHASHSEED", []))
    ev: list[str] = []
    # "Using builtin hash" is a risk only without a fixed seed: builtin hash() under one
    # PYTHONHASHSEED is the same in every process.
    if logs.get("hash_seed_warning") and len(seeds) != 1:
        ev.append(f"log: {logs['hash_seed_warning']} hash-seed warning lines"
                  + ("" if seeds else " and no PYTHONHASHSEED in any launch"))
    if len(none_hashes) > 1:
        ev.append(f"log: NONE_HASH differs across processes: {sorted(none_hashes)}")
    if len(seeds) > 1:
        ev.append(f"launch: PYTHONHASHSEED differs: {sorted(seeds)}")
    cross = r.effective_mode in ("p2p", "pd") or r.detected.mode in ("p2p", "pd")
    if cross and not seeds and not ev:
        ev.append("cross-process mode without a recorded PYTHONHASHSEED")
    if ev:
        level = PARTIAL if len(none_hashes) > 1 or len(seeds) > 1 else INFERRED
        yield finding("lmcache_hash_seed_risk", "; ".join(ev), level, ev)


@rule(emits=("lmcache_embedded_metrics_not_exported",))
def embedded_surface(r: CompatReport) -> Iterator[Finding]:
    if r.effective_mode not in ("embedded_vllm", "embedded_sglang"):
        return
    lm = [f for f in r.families if f.name.startswith("lmcache:") and f.status != "not_applicable"
          and f.group != "controller"]
    if lm and all(f.status == "missing" for f in lm) and any(
            e.kind == "engine_metrics" for e in r.evidence):
        yield finding("lmcache_embedded_metrics_not_exported",
                      "no lmcache:* family on the engine /metrics (the default without "
                      "PROMETHEUS_MULTIPROC_DIR)", MISSING_SIGNAL, [])


@rule(emits=("lmcache_configured_but_not_working",))
def configured_but_dead(r: CompatReport) -> Iterator[Finding]:
    """LMCache is configured (connector in launch or logs) but never works: its own errors and
    lookup timeouts in the log, and/or the engine's connector counters and lmcache:* families
    showing nothing. Logs and metrics agreeing make it supported."""
    logs, d = hints_of(r), r.facts.vllm_lmcache or VllmLmcacheDigest()
    log_ev = [f"log: {k} x{logs[k]}" for k in ("lmcache_init_failed", "lmcache_post_init_skipped",
                                                "lmcache_lookup_rpc_timeout") if logs.get(k)]
    q, h = d.vllm_external_queries, d.vllm_external_hits
    fams, live = d.engine_lmcache_families or 0, d.engine_lmcache_nonzero_families or 0
    metric_ev = []
    if q and h == 0:
        metric_ev.append(f"vllm:external_prefix_cache_queries={q:g} with hits=0")
    if fams and not live:
        metric_ev.append(f"{fams} lmcache:* families declared on the engine /metrics, "
                         f"{d.engine_lmcache_families_with_samples or 0} with samples, "
                         "none non-zero")
    if not log_ev and not (q and h == 0 and fams and not live):
        return
    level = SUPPORTED if log_ev and metric_ev else (PARTIAL if metric_ev else INFERRED)
    yield finding("lmcache_configured_but_not_working",
                  "LMCache is configured but not working: " + "; ".join(log_ev + metric_ev),
                  level, log_ev + metric_ev)


@rule(emits=("lmcache_vllm_hits_reconciled",))
def vllm_hits_reconciled(r: CompatReport) -> Iterator[Finding]:
    d = r.facts.vllm_lmcache
    if d is None:
        return
    ext, lmc = d.vllm_external_hits, d.lmcache_lookup_hit_tokens
    if ext is None or lmc is None:
        return
    join = d.model_join
    models = d.launch_models
    if join == "via_launch" and models is not None:
        how = (f"model_name differs (vLLM {d.vllm_model_names}: the served name; LMCache "
               f"{d.lmcache_model_names}: the model path), joined via the launch "
               f"(--model {models.model} --served-model-name {models.served_model_name})")
    elif join == "same_label":
        how = "both sides label the same model_name"
    else:
        how = (f"model_name labels do not join (vLLM {d.vllm_model_names}, LMCache "
               f"{d.lmcache_model_names}); add the vLLM launch command")
    yield finding("lmcache_vllm_hits_reconciled",
                  f"vllm:external_prefix_cache_hits={ext:g} tokens loaded by the connector; "
                  f"lmcache_mp_lookup_hit_tokens={lmc:g} (every lookup hit, also prefixes vLLM "
                  f"still held); {how}", SUPPORTED if join in ("via_launch", "same_label")
                  else PARTIAL, ["vllm:external_prefix_cache_hits",
                            "lmcache_mp_lookup_hit_tokens_total"])


@rule(emits=("lmcache_sglang_hicache_only",))
def hicache_only(r: CompatReport) -> Iterator[Finding]:
    hic = [f for f in r.families if f.group == "sglang_hicache" and f.status != "missing"
           and f.status != "not_applicable"]
    lm = any(f.name.startswith(("lmcache", "lmcache:")) and f.status in ("populated", "zero")
             for f in r.families)
    sg = any(k in hints_of(r) for k in ("sglang_enable_lmcache", "sglang_layerwise_connector",
                                      "sglang_lmc_radix_cache"))
    if (hic or hints_of(r).get("sglang_hicache")) and not lm and not sg:
        yield finding("lmcache_sglang_hicache_only", "HiCache evidence, no LMCache evidence",
                      PARTIAL if hic else INFERRED, [f.name for f in hic[:4]])


@rule(emits=(
    "lmcache_log_p2p_evidence_present",
    "lmcache_log_pd_evidence_present",
    "lmcache_log_stale_connector",
))
def log_surfaces(r: CompatReport) -> Iterator[Finding]:
    logs = hints_of(r)
    measured = is_measured(r)
    # Only P2P's own lines: a controller start or a registration is no P2P evidence (a
    # controller also serves non-P2P deployments).
    p2p = {k: v for k, v in logs.items() if k.startswith("p2p_")}
    if p2p:
        metric = any(f.group == "p2p" and f.status == "populated" for f in r.families)
        yield finding("lmcache_log_p2p_evidence_present",
                      ", ".join(f"{k} x{v}" for k, v in sorted(p2p.items())),
                      SUPPORTED if metric else INFERRED, sorted(p2p))
    pd = {k: v for k, v in logs.items() if k.startswith("pd_")}
    if pd:
        yield finding("lmcache_log_pd_evidence_present",
                      ", ".join(f"{k} x{v}" for k, v in sorted(pd.items())),
                      PARTIAL if measured else INFERRED, sorted(pd))
    if logs.get("stale_connector"):
        yield finding("lmcache_log_stale_connector",
                      f"legacy LMCacheConnector seen {logs['stale_connector']} time(s)", INFERRED,
                      ["log: stale_connector"])


