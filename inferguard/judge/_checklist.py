"""The required-evidence checklist for a mode: each item ticked only with positive evidence
that names where it came from (a launch line, a scrape, a log). A zero is not positive: a
`hit tokens: 0` line is no proof of store and retrieve, an all-zero series no proof of P2P,
an unhealthy answer no healthcheck passed."""

from __future__ import annotations

from inferguard._packet import Packet
from inferguard.evidence._controller import ControllerFacts
from inferguard.evidence._engine_http import EngineHealthFacts
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import AMOUNT_HINTS, LogFacts
from inferguard.evidence._model import source_label
from inferguard.judge._facts import readable
from inferguard.judge._index import MetricsIndex
from inferguard.judge._mode import ModeDetection
from inferguard.judge._report import (
    ChecklistItem,
)


def checklist(packet: Packet, mode: str, m: MetricsIndex,
              detected: ModeDetection | None = None) -> list[ChecklistItem]:
    """The items for `mode`; for MP, shaped by the engine (vLLM or SGLang's `sglang:*`
    surface) and the deployment (`local`: no standalone server to check)."""
    kinds = {e.kind: e for e in reversed(packet.evidence) if e.status in ("ok", "partial")}
    http = [e.facts for e in readable(packet, "http") if isinstance(e.facts, HttpFacts)]
    launch = [lf for e in readable(packet, "launch_config") if isinstance(e.facts, LaunchFacts)
              for lf in e.facts.launches]
    logs = [e for e in readable(packet, "log") if isinstance(e.facts, LogFacts)]

    def log_has(*cats: str) -> list[str]:
        return [source_label(e) for e in logs if isinstance(e.facts, LogFacts)
                and e.facts.categories() & set(cats)]

    def log_positive(cat: str) -> list[str]:
        """Logs with at least one line of the category that carries a positive amount."""
        return [source_label(e) for e in logs if isinstance(e.facts, LogFacts) and any(
            h.category == cat and h.id in AMOUNT_HINTS and e.facts.positive(h.id) > 0
            for h in e.facts.hints)]

    def populated(*prefixes: str) -> list[str]:
        return [fam.name for fam, _ in m.by_norm.values()
                if fam.name.startswith(prefixes) and fam.nonzero_samples > 0]

    def item(id_: str, desc: str, refs: list[str]) -> ChecklistItem:
        return ChecklistItem(id_, desc, bool(refs), refs)

    lm = [source_label(e) for e in m.sources["lmcache_metrics"]]
    em = [source_label(e) for e in m.sources["engine_metrics"]]
    seeds = {lf_env for e in readable(packet, "launch_config") if isinstance(e.facts, LaunchFacts)
             for lf_env in [e.facts.env.get("PYTHONHASHSEED")] if lf_env is not None}
    if mode == "mp":
        sglang = detected is not None and detected.engine == "sglang"
        local = detected is not None and detected.deployment == "local"
        name = "SGLang" if sglang else "vLLM"
        connector = (
            item("mp_connector", "SGLang --enable-lmcache (UnifiedLMCacheMPConnector) with "
                 "mp_host/mp_port in --lmcache-config-file",
                 [f"launch line {x.line}" for x in launch
                  if x.program == "sglang" and x.lmcache_enabled]
                 + [source_label(e) for e in logs if isinstance(e.facts, LogFacts)
                    and e.facts.count("sglang_mp_connector")])
            if sglang else
            item("mp_connector", "vLLM connector config showing LMCacheMPConnector",
                 [f"launch line {x.line}" for x in launch
                  if (x.kv_connector or "").startswith("LMCacheMPConnector")
                  or x.kv_offloading_backend in ("lmcache", "lmcache_mp")]
                 + log_has("mp_connector")))
        server = [] if local else [
            item("lmcache_server_launch", "lmcache server command and config",
                 [f"launch line {x.line}" for x in launch if x.program == "lmcache_server"]
                 + log_has("mp_server")),
            item("lmcache_healthcheck", "LMCache healthcheck",
                 [f"/healthcheck healthy={h.healthy}" for h in http if h.healthy is True]),
            item("lmcache_metrics", "LMCache /metrics", lm),
            item("lmcache_logs", "LMCache server logs", log_has("mp_server"))]
        return [
            *server[:1],
            connector,
            *server[1:2],
            item("engine_healthcheck", f"{name} healthcheck",
                 [f"{source_label(e)}: /health 200" for e in packet.of_kind("engine_http")
                  if isinstance(e.facts, EngineHealthFacts) and e.facts.healthy]),
            *server[2:3],
            item("engine_metrics", f"{name} /metrics", em),
            *server[3:],
            item("otel_or_trace", "OTel / trace recording / replay artifacts (optional)",
                 [source_label(kinds[k]) for k in ("otel", "trace", "trace_replay") if k in kinds]),
        ]
    if mode in ("embedded_vllm", "embedded_sglang"):
        return [
            item("launch", "launch command or config showing the LMCache connector / flags",
                 [f"launch line {x.line}" for x in launch if x.kv_connector or
                  x.lmcache_enabled or x.kv_offloading_backend]
                 + log_has("embedded_vllm", "sglang_lmcache", "offload_flag")),
            item("hash_seed", "consistent PYTHONHASHSEED across processes",
                 [f"PYTHONHASHSEED={s}" for s in sorted(seeds)] if len(seeds) == 1 else []),
            item("engine_metrics", "engine /metrics", em),
            item("lmcache_metrics", "lmcache:* or normalised LMCache metrics with data",
                 [n for n in populated("lmcache:", "lmcache_")
                  if not n.startswith("lmcache:cache_controller_")][:3]),
            item("lifecycle_logs", "logs showing store and retrieve",
                 log_positive("lifecycle")),
        ]
    if mode == "p2p":
        return [
            item("engine_launches", "at least two engine launch commands",
                 [f"launch line {x.line}" for x in launch if x.program in ("vllm", "sglang")]
                 if sum(x.program in ("vllm", "sglang") for x in launch) >= 2 else []),
            item("controller", "controller launch / logs / answers",
                 [f"launch line {x.line}" for x in launch if x.program == "lmcache_controller"]
                 + log_has("controller")
                 + [source_label(e) for e in readable(packet, "controller")]),
            item("hash_seed", "consistent PYTHONHASHSEED",
                 [f"PYTHONHASHSEED={s}" for s in sorted(seeds)] if len(seeds) == 1 else []),
            item("peer_logs", "peer connection and cross-engine retrieval logs", log_has("p2p")),
            item("p2p_metrics", "P2P metrics (serving peer)",
                 [n for n in populated("lmcache:p2p_", "lmcache_p2p_")]),
        ]
    if mode == "controller_only":
        ctrl = [e for e in readable(packet, "controller") if isinstance(e.facts, ControllerFacts)]
        return [
            item("controller_workers", "controller /controller/workers answer",
                 [source_label(e) for e in ctrl if e.facts.workers_listed is not None]),
            item("controller_metrics", "controller /metrics (lmcache:cache_controller_*)",
                 [source_label(e) for e in ctrl if e.facts.gauges]),
            item("controller_logs", "controller logs",
                 log_has("controller", "control_plane")),
            item("engine_metrics", "engine or LMCache /metrics (needed for any cache claim)",
                 lm + em),
        ]
    if mode == "standalone_worker":
        api = [e for e in readable(packet, "controller") if isinstance(e.facts, ControllerFacts)
               and e.facts.server == "internal_api" and e.facts.reachable]
        return [
            item("worker_launch", "python -m lmcache.v1.standalone launch",
                 [f"launch line {x.line}" for x in launch if x.program == "lmcache_standalone"]),
            item("internal_api", "the worker's internal API answers",
                 [source_label(e) for e in api]),
            item("lmcache_metrics", "lmcache:* metrics with data",
                 [n for n in populated("lmcache:", "lmcache_")
                  if not n.startswith("lmcache:cache_controller_")][:3]),
            item("lifecycle_logs", "logs showing store and retrieve",
                 log_positive("lifecycle")),
        ]
    if mode == "pd":
        return [
            item("roles", "prefiller and decoder launches with producer/consumer roles",
                 [f"launch line {x.line}" for x in launch
                  if x.kv_role in ("kv_producer", "kv_consumer")]),
            item("pd_logs", "NIXL / PD transfer logs", log_has("pd")),
            item("engine_metrics", "engine /metrics (TTFT against a baseline)", em),
        ]
    return [item("any_metrics", "any /metrics scrape", lm + em),
            item("any_logs", "any log", [source_label(e) for e in logs])]
