"""`detect_mode(packet)`: which LMCache mode the evidence points to, conservatively.

Every signal is a (mode, weight, evidence, detail, line) tuple yielded by one function per
evidence kind below (`_metric_signals`, `_log_signals`, `_launch_signals`, ...; log hints map
through the `_LOG_MODES` table, metric-family hints through catalog fields). Candidates
collect weights (capped at 1.0) and their evidence references; a mode is chosen only when
its candidate reaches 0.3, and P2P / PD (which sit on top of a base
mode) win only with their own direct evidence. One metric prefix never makes a mode more
than "likely": the confidence says how many independent kinds of evidence agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._controller import GAUGE_PREFIX as CONTROLLER_PREFIX
from inferguard.evidence._controller import ControllerFacts
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import Launch, LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._metrics import MetricsFacts
from inferguard.evidence._model import Evidence, source_label
from inferguard.evidence._otel import OtelFacts
from inferguard.evidence._trace import TraceFacts
from inferguard.judge._blend import FLAVOR as BLEND_FLAVOR
from inferguard.judge._blend import blend_signals
from inferguard.judge._catalog import FAMILIES
from inferguard.judge._versions import NEWEST_READ, holds, version_report
from inferguard.prom._names import normalize_name

MODE_SCHEMA = "inferguard.mode_detection/1"
# Signals that point to "some connector" until the packet says which: resolved in
# `_resolve` from what the engine log says it created, or what engine the packet shows.
OFFLOAD = "?offload"      # vLLM --kv-offloading-backend lmcache: MP or in-process connector
EMBEDDED = "?embedded"    # lmcache:* in a scrape: in-process in vLLM/SGLang, or a standalone
                          # LMCacheEngine worker (lmcache.v1.standalone) when no engine shows
SGLANG = "?sglang"        # sglang --enable-lmcache: MP (0.5.23) or the old in-process adapter
_CONNECTOR_HITS = tuple(f for f in FAMILIES if f.hit_scope == "connector")
THRESHOLD = 0.3

# Evidence levels (product page): what a claim rests on.
EvidenceLevel = str
SUPPORTED, PARTIAL, MISSING_SIGNAL, INFERRED = (
    "supported", "partial", "missing_signal", "inferred_without_engine_metrics")
MEASURED_KINDS = frozenset(["lmcache_metrics", "engine_metrics", "http", "trace", "otel",
                            "controller"])


class EvidenceRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """A pointer to what a judgement rests on: which input, and what in it."""

    kind: str
    source: str
    detail: str
    line: int | None = None


class ModeCandidate(msgspec.Struct, frozen=True):
    mode: str
    confidence: float
    evidence_kinds: list[str]
    level: str
    evidence: list[EvidenceRef]


class ModeDetection(msgspec.Struct, frozen=True):
    """The chosen mode; `flavor` refines it (`blend`: an MP server with --engine-type blend).

    `engine` is the engine the packet shows (vllm / sglang); for MP, `deployment` is
    `external` (a standalone `lmcache server`) or `local` (vLLM main's in-worker shards,
    `lmcache.mp.deployment: local`), and `mp_connector` which LMCacheMPConnector vLLM
    resolved (`external`: LMCache's own; `builtin`: vLLM's fallback), when the evidence says."""

    mode: str
    confidence: float
    level: str
    candidates: list[ModeCandidate]
    notes: list[str]
    flavor: str | None = None
    schema: str = MODE_SCHEMA
    engine: str | None = None
    deployment: str | None = None
    mp_connector: str | None = None
    rules: list[str] = msgspec.field(default_factory=list)  # version-keyed rows selected


class OffloadRule(msgspec.Struct, frozen=True):
    """What `--kv-offloading-backend BACKEND` (with `--kv-offloading-size`) makes vLLM create,
    for the vLLM versions `holds_for` names; `source` is where upstream says so."""

    backend: str
    holds_for: str
    connector: str
    mode: str
    deployment: str | None
    source: str


# vLLM's offload shortcut, by version (data, not branches). The flag does nothing without
# --kv-offloading-size (`VllmConfig._post_init_kv_transfer_config` returns first).
OFFLOAD_RULES: tuple[OffloadRule, ...] = (
    OffloadRule("lmcache", "vllm<0.32", "LMCacheConnectorV1", "embedded_vllm", None,
                "before vllm#42865 the shortcut set LMCacheConnectorV1 (versions not read)"),
    OffloadRule("lmcache", "vllm>=0.32,<=0.33.0", "LMCacheMPConnector", "mp", "external",
                "vLLM 0.33.0 vllm/config/vllm.py::VllmConfig._post_init_kv_transfer_config "
                "(vllm#42865; the 0.32.0 live run did the same)"),
    OffloadRule("lmcache", "vllm>0.33.0", "LMCacheConnectorV1", "embedded_vllm", None,
                "vLLM main after 0.33 (not a release): `lmcache` is LMCacheConnectorV1 again"),
    OffloadRule("lmcache_mp", "vllm>0.33.0", "LMCacheMPConnector", "mp", "local",
                "vLLM main after 0.33 (not a release): lmcache.mp.deployment=local, "
                "LMCacheMPLocalConnector (lmcache_mp_utils.py::get_lmcache_mp_deployment)"),
)


class SglangRule(msgspec.Struct, frozen=True):
    """What `sglang --enable-lmcache` builds, for the SGLang versions `holds_for` names."""

    holds_for: str
    mode: str
    source: str


SGLANG_RULES: tuple[SglangRule, ...] = (
    SglangRule("sglang<0.5.23", "embedded_sglang",
               "older SGLang: LMCRadixCache with the in-process LMCacheLayerwiseConnector "
               "(versions before 0.5.23 not read)"),
    SglangRule("sglang>=0.5.23", "mp",
               "SGLang 0.5.23 sglang/srt/mem_cache/registry.py builds LMCacheUnifiedRadixCache "
               "with lmcache.integration.sglang.unified_lmcache_mp_connector."
               "UnifiedLMCacheMPConnector against a standalone `lmcache server`"),
)


class _Cand(msgspec.Struct):
    weight: float = 0.0
    refs: list[EvidenceRef] = msgspec.field(default_factory=list)
    kinds: set[str] = msgspec.field(default_factory=set)


def _signals(packet: Packet) -> Iterator[tuple[str, float, Evidence, str, int | None]]:
    """(mode, weight, evidence, detail, line) for every signal in the packet."""
    for ev in packet.evidence:
        if ev.status not in ("ok", "partial") or ev.facts is None:
            continue
        f = ev.facts
        if isinstance(f, MetricsFacts):
            yield from _metric_signals(ev, f)
        elif isinstance(f, HttpFacts):
            if f.engine_type == "MPCacheServer" or (f.engine_type and "MP" in f.engine_type):
                yield "mp", 0.5, ev, f"/status engine_type={f.engine_type}", None
            elif f.version is not None and f.reachable:
                yield "mp", 0.3, ev, f"MP HTTP API answered (version {f.version})", None
            if f.p2p_enabled:
                yield "p2p", 0.4, ev, "/status p2p_enabled=true", None
            if f.cb_status_keys:
                yield "mp", 0.5, ev, "CacheBlend /status keys: " + ", ".join(
                    f.cb_status_keys), None
        elif isinstance(f, ControllerFacts):
            yield from _controller_signals(ev, f)
        elif isinstance(f, LogFacts):
            yield from _log_signals(ev, f)
        elif isinstance(f, LaunchFacts):
            yield from _launch_signals(ev, f)
        elif isinstance(f, OtelFacts):
            mp_spans = [s for s in f.spans if s.name.startswith(("mp.", "cb.", "transfer."))
                        or s.name == "request"]
            if mp_spans:
                yield ("mp", 0.4, ev, "MP server spans: "
                       + ", ".join(sorted({s.name for s in mp_spans})[:6]), None)
        elif isinstance(f, TraceFacts) and (f.summary.total_records or f.summary.header.level):
            yield ("mp", 0.4, ev, f".lct trace recording (level {f.summary.header.level}, "
                       f"{f.summary.total_records} records): only the MP server writes these",
                       None)


def _metric_signals(ev: Evidence, f: MetricsFacts
                    ) -> Iterator[tuple[str, float, Evidence, str, int | None]]:
    names = [fam.name for fam in f.families]
    mp = [n for n in names if n.startswith("lmcache_mp_")]
    blend = [n for n in names if n.startswith("lmcache_blend_")]
    # The controller's own gauges are its surface, not an engine's in-process LMCache.
    emb = [n for n in names if n.startswith(("lmcache:", "lmcache_")) and n not in mp
           and n not in blend and not n.startswith(("lmcache_mp", CONTROLLER_PREFIX))]
    if mp or blend:
        yield "mp", 0.5, ev, f"{len(mp) + len(blend)} lmcache_mp_*/lmcache_blend_* families", None
    if emb and not mp:
        yield (EMBEDDED if not any(n.startswith(("vllm:", "sglang:")) for n in names) else
               "embedded_vllm" if any(n.startswith("vllm:") for n in names) else
               "embedded_sglang", 0.4, ev, f"{len(emb)} lmcache:* families without lmcache_mp_*",
               None)
    p2p = [fam for fam in f.families if fam.name.startswith(
        ("lmcache:p2p_", "lmcache_p2p_")) and fam.nonzero_samples]
    if p2p:
        yield "p2p", 0.5, ev, "P2P transfer histograms with data: " + ", ".join(
            x.name for x in p2p), None
    by_norm = {normalize_name(fam.name): fam for fam in f.families}
    for spec in _CONNECTOR_HITS:
        ext = by_norm.get(normalize_name(spec.name))
        if ext is not None and ext.total > 0:
            # vLLM's own count of tokens a KV connector served: measured, connector-agnostic.
            for mode in ("embedded_vllm", "mp"):
                yield (mode, 0.1, ev, f"{ext.name}={ext.total:g} (connector hits seen by vLLM)",
                       None)


_LOG_MODES: dict[str, tuple[str, float]] = {
    "mp_server": ("mp", 0.4),
    "blend": ("mp", 0.4),
    "mp_connector": ("mp", 0.4),
    "embedded_vllm": ("embedded_vllm", 0.4),
    "stale_connector": ("embedded_vllm", 0.3),
    "sglang_lmcache": ("embedded_sglang", 0.4),
    "p2p": ("p2p", 0.4),
    "pd": ("pd", 0.4),
}


def _controller_signals(ev: Evidence, f: ControllerFacts
                        ) -> Iterator[tuple[str, float, Evidence, str, int | None]]:
    """Workers registered with a P2P init URL, or an engine configured with enable_p2p, are
    P2P evidence; a controller by itself is not (it also serves non-P2P deployments)."""
    peers = [w for w in f.workers if w.peer_init_url]
    if peers:
        yield ("p2p", 0.4, ev, f"controller lists {len(peers)} worker(s) with a P2P init URL",
               None)
    if f.config.get("enable_p2p") is True:
        yield "p2p", 0.3, ev, "engine config enable_p2p=true (internal API /conf)", None
    if f.server == "internal_api" and f.reachable:
        # An LMCacheEngine answers in some process: an engine's, or a standalone worker's.
        yield EMBEDDED, 0.3, ev, "an LMCache internal API server answered", None


def _log_signals(ev: Evidence, f: LogFacts
                 ) -> Iterator[tuple[str, float, Evidence, str, int | None]]:
    for h in f.hints:
        if h.id == "sglang_mp_connector":
            yield "mp", 0.4, ev, f"log: {h.meaning} ({h.count}x)", h.first_line
            continue
        if h.category == "offload_flag":
            yield f"{OFFLOAD}:lmcache", 0.2, ev, f"log: {h.meaning}", h.first_line
            continue
        if h.id == "sglang_enable_lmcache":
            yield SGLANG, 0.4, ev, f"log: {h.meaning} ({h.count}x)", h.first_line
            continue
        if h.id in ("embedded_lookup", "embedded_retrieved", "embedded_stored"):
            yield "embedded_vllm", 0.2, ev, f"log: {h.meaning} ({h.count}x)", h.first_line
            continue
        target = _LOG_MODES.get(h.category)
        if target is not None:
            yield target[0], target[1], ev, f"log: {h.meaning} ({h.count}x)", h.first_line


def _launch_signals(ev: Evidence, f: LaunchFacts
                    ) -> Iterator[tuple[str, float, Evidence, str, int | None]]:
    for launch in f.launches:
        if launch.program == "lmcache_server":
            yield "mp", 0.5, ev, "launch: lmcache server", launch.line
        elif launch.program == "lmcache_standalone":
            yield "standalone_worker", 0.5, ev, "launch: python -m lmcache.v1.standalone", \
                launch.line
        elif launch.program == "vllm":
            conn = launch.kv_connector or ""
            if conn.startswith("LMCacheMPConnector"):
                yield "mp", 0.5, ev, f"launch: vLLM kv_connector={conn}", launch.line
            elif conn.startswith("LMCacheConnectorV1"):
                yield "embedded_vllm", 0.5, ev, f"launch: vLLM kv_connector={conn}", launch.line
            if launch.kv_role in ("kv_producer", "kv_consumer"):
                yield "pd", 0.4, ev, f"launch: vLLM kv_role={launch.kv_role}", launch.line
            backend = launch.kv_offloading_backend
            # vLLM ignores the backend without a size (see OFFLOAD_RULES).
            if backend in ("lmcache", "lmcache_mp") and launch.flags.get(
                    "kv-offloading-size") not in (None, True):
                yield (f"{OFFLOAD}:{backend}", 0.5, ev,
                       f"launch: --kv-offloading-backend {backend}", launch.line)
            extra = (launch.flags.get("kv-transfer-config") or {})
            cfg = extra.get("kv_connector_extra_config") if isinstance(extra, dict) else None
            if isinstance(cfg, dict) and cfg.get("enable_p2p") in (True, "true", "True"):
                yield "p2p", 0.3, ev, "launch: enable_p2p in kv_connector_extra_config", \
                    launch.line
        elif launch.program == "sglang" and launch.lmcache_enabled:
            yield SGLANG, 0.5, ev, "launch: sglang --enable-lmcache", launch.line


def _level(kinds: set[str]) -> str:
    measured = kinds & MEASURED_KINDS
    if len(kinds) >= 2 and measured:
        return SUPPORTED
    if measured:
        return PARTIAL
    return INFERRED


def detect_mode(packet: Packet) -> ModeDetection:
    """The mode the evidence supports, with every candidate and what it rests on."""
    cands: dict[str, _Cand] = {}
    notes: list[str] = []
    selected: list[str] = []
    versions = version_report(packet).versions
    resolve = _resolver(packet, notes, versions, selected)
    for pseudo, weight, ev, detail, line in _signals(packet):
        for mode, factor in resolve(pseudo):
            c = cands.setdefault(mode, _Cand())
            c.weight += weight * factor
            c.kinds.add(ev.kind)
            c.refs.append(EvidenceRef(ev.kind, source_label(ev), detail, line))
    denied = _p2p_denied(packet)
    p2p = cands.get("p2p")
    if denied and p2p is not None and not (p2p.kinds & _P2P_MEASURED):
        # Measured beats hinted: a worker's config or the controller says P2P is not used.
        notes.append("P2P hinted by " + ", ".join(sorted(p2p.kinds)) + " but not used: "
                     + "; ".join(denied))
        del cands["p2p"]
    candidates = sorted(
        (ModeCandidate(m, round(min(1.0, c.weight), 3), sorted(c.kinds), _level(c.kinds),
                       c.refs) for m, c in cands.items()),
        key=lambda c: (-c.confidence, c.mode))
    strong = [c for c in candidates if c.confidence >= THRESHOLD]
    overlay = [c for c in strong if c.mode in ("p2p", "pd")]
    base = [c for c in strong if c.mode not in ("p2p", "pd")]
    if overlay and overlay[0].confidence >= 0.4:
        chosen = overlay[0]
        if base:
            notes.append(f"{chosen.mode} on top of {base[0].mode}")
    elif base:
        chosen = base[0]
    elif (ctrl := _controller_only(packet)):
        chosen = ModeCandidate("controller_only", 0.3, ["controller"], PARTIAL, ctrl)
        candidates.insert(0, chosen)
        notes.append("controller answers without engine or cache metrics: control-plane "
                     "state (workers, heartbeats, full sync, key counts), not cache "
                     "performance proof")
    else:
        chosen = ModeCandidate("unknown", 0.0, [], MISSING_SIGNAL, [])
        notes.append("no signal reaches the threshold; add metrics, HTTP, logs or launch "
                     "evidence")
    if len(base) > 1 and base[1].confidence >= 0.5:
        notes.append(f"conflicting evidence: {base[0].mode} and {base[1].mode} both have "
                     "strong signals")
    if chosen.mode != "unknown" and len(chosen.evidence_kinds) == 1:
        notes.append(f"only {chosen.evidence_kinds[0]} evidence supports {chosen.mode}: "
                     "one surface never proves full compatibility")
    flavor = None
    blend = [f"{ev.kind}: {s}" for ev in packet.evidence if ev.status in ("ok", "partial")
             and ev.facts is not None for s in blend_signals(ev)]
    if blend and chosen.mode == "mp":
        flavor = BLEND_FLAVOR
        notes.append("CacheBlend server (lmcache server --engine-type blend): judged on "
                     "lmcache_blend_*; CB lookups do not feed lmcache_mp_lookup_* (" +
                     "; ".join(blend[:3]) + ")")
    engine = _engine_of(packet)
    deployment = mp_connector = None
    if chosen.mode in ("mp", "p2p", "pd") or "mp" in {c.mode for c in base[:1]}:
        deployment = _deployment(packet, versions)
        mp_connector = _mp_connector(packet)
        if deployment == "local":
            notes.append("lmcache.mp.deployment=local (vLLM main, not a release): LMCache MP "
                         "shards run inside the vLLM workers; no standalone lmcache server, "
                         "its HTTP API or its /metrics are expected")
        if mp_connector == "builtin":
            notes.append("vLLM runs its builtin LMCacheMPConnectorUpstream (the log says it "
                         "fell back or LMCACHE_USE_UPSTREAM_MP forced it): its "
                         "build_prom_metrics() returns None, so no "
                         "vllm:lmcache_mp_lookup_duration_seconds")
    return ModeDetection(chosen.mode, chosen.confidence, chosen.level, candidates, notes,
                         flavor, engine=engine, deployment=deployment,
                         mp_connector=mp_connector, rules=list(dict.fromkeys(selected)))


def _launches(packet: Packet) -> list[Launch]:
    return [x for e in packet.evidence if e.status in ("ok", "partial")
            and isinstance(e.facts, LaunchFacts) for x in e.facts.launches]


def _deployment(packet: Packet, versions: dict[str, str]) -> str | None:
    """`local` when a vLLM launch asks for in-worker shards (`lmcache.mp.deployment: local`
    in kv_connector_extra_config, or the lmcache_mp offload backend), `external` when it
    says external or a standalone MP server shows itself; None when nothing says."""
    for x in _launches(packet):
        if x.program != "vllm":
            continue
        if x.mp_deployment in ("local", "external"):
            return x.mp_deployment
        if x.kv_offloading_backend == "lmcache_mp" and x.flags.get("kv-offloading-size") \
                not in (None, True):
            rule, _ = _offload_rule("lmcache_mp", versions)
            if rule is not None and rule.deployment:
                return rule.deployment
    if any(x.program == "lmcache_server" for x in _launches(packet)):
        return "external"
    for e in packet.evidence:
        f = e.facts
        if e.status not in ("ok", "partial"):
            continue
        if isinstance(f, HttpFacts) and f.reachable:
            return "external"
        if isinstance(f, LogFacts) and "mp_server" in f.categories():
            return "external"
        if isinstance(f, MetricsFacts) and any(fam.name.startswith("lmcache_mp_")
                                               for fam in f.families):
            return "external"
    return None


def _mp_connector(packet: Packet) -> str | None:
    """Which LMCacheMPConnector vLLM resolved, from its log lines (vLLM 0.33.0
    lmcache_mp_connector.py `_resolve_lmcache_mp_connector`), else from
    LMCACHE_USE_UPSTREAM_MP in the launch environment (forces the builtin one)."""
    ext = builtin = 0
    for e in packet.evidence:
        f = e.facts
        if e.status in ("ok", "partial") and isinstance(f, LogFacts):
            ext += f.count("vllm_mp_connector_external")
            builtin += f.count("vllm_mp_connector_builtin")
    if ext and builtin:
        return "mixed"
    if ext or builtin:
        return "external" if ext else "builtin"
    for e in packet.evidence:
        f = e.facts
        if e.status in ("ok", "partial") and isinstance(f, LaunchFacts) \
                and f.env.get("LMCACHE_USE_UPSTREAM_MP") not in (None, ""):
            # upstream tests the variable's truth as a string: "0" forces it too
            return "builtin"
    return None


# Evidence kinds that measure P2P (an HTTP answer, a scrape, the controller's worker list);
# launch lines and log hints only hint at it.
_P2P_MEASURED = frozenset(["http", "lmcache_metrics", "engine_metrics", "controller"])


def _p2p_denied(packet: Packet) -> list[str]:
    """What says P2P is not used: an engine config with enable_p2p=false (internal API
    /conf), or the controller logging that a worker registered without a peer init URL
    ("only register when p2p is used", 0.5.6 controller)."""
    out = []
    for e in packet.evidence:
        f = e.facts
        if e.status not in ("ok", "partial"):
            continue
        if isinstance(f, ControllerFacts) and f.config.get("enable_p2p") is False:
            out.append(f"{source_label(e)}: enable_p2p=false")
        elif isinstance(f, LogFacts) and (n := f.count("ctrl_no_peer_init_url")):
            out.append(f"{source_label(e)}: peer init url is None x{n}")
    return out


def _offload_rule(backend: str, versions: dict[str, str]) -> tuple[OffloadRule | None, bool]:
    """The offload rule for this backend and the vLLM version seen: (rule, assumed). With no
    vLLM version the newest release read (`NEWEST_READ`) is assumed; a backend that release
    lacks takes its newest rule."""
    rows = [r for r in OFFLOAD_RULES if r.backend == backend]
    if not rows:
        return None, False
    if "vllm" in versions:
        return next((r for r in rows if holds(r.holds_for, versions)), None), False
    assumed = {"vllm": NEWEST_READ["vllm"]}
    return next((r for r in rows if holds(r.holds_for, assumed)), rows[-1]), True


def _sglang_rule(versions: dict[str, str]) -> tuple[SglangRule, bool]:
    if "sglang" in versions:
        hit = next((r for r in SGLANG_RULES if holds(r.holds_for, versions)), None)
        if hit is not None:
            return hit, False
    assumed = {"sglang": NEWEST_READ["sglang"]}
    return next(r for r in SGLANG_RULES if holds(r.holds_for, assumed)), True


Resolved = tuple[tuple[str, float], ...]  # (mode, weight factor)


def _resolver(packet: Packet, notes: list[str], versions: dict[str, str],
              selected: list[str]) -> Callable[[str], Resolved]:
    """Map the pseudo-modes of hinted signals to real modes, from what else the packet says:
    the offload flag to the connector the engine log says it created, else to what the vLLM
    version makes of it (`OFFLOAD_RULES`); `sglang --enable-lmcache` to the connector the
    SGLang log names, else to what the SGLang version builds (`SGLANG_RULES`); a scrape's
    `lmcache:*` families to the engine the packet shows (else a standalone LMCacheEngine
    worker). A rule picked without a stated version weighs less, and a note says so."""
    logs = [e.facts for e in packet.evidence if isinstance(e.facts, LogFacts)
            and e.status in ("ok", "partial")]
    created = sorted({m for lf in logs for cat, m in (("mp_connector", "mp"),
                                                       ("embedded_vllm", "embedded_vllm"))
                      if cat in lf.categories()})
    sglang_created = sorted(
        {m for lf in logs for hid, m in (("sglang_mp_connector", "mp"),
                                         ("sglang_layerwise_connector", "embedded_sglang"),
                                         ("sglang_lmc_radix_cache", "embedded_sglang"))
         if lf.count(hid)})
    engine = _engine_of(packet)
    embedded = {"vllm": "embedded_vllm", "sglang": "embedded_sglang"}.get(
        engine or "", "standalone_worker")
    said: set[str] = set()

    def once(key: str, text: str) -> None:
        if key not in said:
            said.add(key)
            notes.append(text)

    def resolve(mode: str) -> Resolved:
        if mode.startswith(OFFLOAD):
            backend = mode.partition(":")[2] or "lmcache"
            if len(created) == 1:
                once("offload", f"--kv-offloading-backend {backend}: the engine log shows it "
                                f"created the {created[0]} connector")
                return ((created[0], 1.0),)
            rule, assumed = _offload_rule(backend, versions)
            if rule is None:
                return (("embedded_vllm", 0.4), ("mp", 0.4))
            selected.append(f"offload:{rule.backend}:{rule.holds_for}")
            if assumed:
                once("offload", f"--kv-offloading-backend {backend}: no vLLM version in the "
                                f"evidence; vLLM {NEWEST_READ['vllm']} (the newest release "
                                f"read) would create {rule.connector} ({rule.source})")
                return ((rule.mode, 0.6),)
            once("offload", f"--kv-offloading-backend {backend}: vLLM {versions['vllm']} "
                            f"creates {rule.connector} ({rule.source})")
            return ((rule.mode, 1.0),)
        if mode == SGLANG:
            if len(sglang_created) == 1:
                once("sglang", f"sglang --enable-lmcache: the SGLang log shows the "
                               f"{sglang_created[0]} connector")
                return ((sglang_created[0], 1.0),)
            srule, assumed = _sglang_rule(versions)
            selected.append(f"sglang:{srule.holds_for}")
            if assumed:
                once("sglang", "sglang --enable-lmcache: no SGLang version in the evidence; "
                               f"SGLang {NEWEST_READ['sglang']} (the newest read) is "
                               f"{srule.mode} ({srule.source})")
                return ((srule.mode, 0.6),)
            once("sglang", f"sglang --enable-lmcache: SGLang {versions['sglang']} is "
                           f"{srule.mode} ({srule.source})")
            return ((srule.mode, 1.0),)
        if mode == EMBEDDED:
            if embedded == "standalone_worker":
                once("worker", "lmcache:* families without any vLLM/SGLang evidence: a "
                               "standalone LMCacheEngine worker (lmcache.v1.standalone), not "
                               "an engine's in-process LMCache")
            return ((embedded, 1.0),)
        return ((mode, 1.0),)
    return resolve


def engine_in_names(names: Sequence[str], *, bare: bool = False) -> str | None:
    """vllm / sglang when a metric family name carries that engine's prefix (`vllm:`; with
    `bare` also `vllm_`, the underscore spelling), vllm first: one test for every caller."""
    for engine in ("vllm", "sglang"):
        prefixes = (engine + ":", engine + "_") if bare else (engine + ":",)
        if any(n.startswith(prefixes) for n in names):
            return engine
    return None


def _engine_of(packet: Packet) -> str | None:
    """vllm / sglang when any scrape, launch or log of the packet shows that engine."""
    for e in packet.evidence:
        f = e.facts
        if e.status not in ("ok", "partial") or f is None:
            continue
        if isinstance(f, MetricsFacts):
            engine = engine_in_names([fam.name for fam in f.families])
            if engine is not None:
                return engine
        elif isinstance(f, LaunchFacts):
            for x in f.launches:
                if x.program in ("vllm", "sglang"):
                    return x.program
        elif isinstance(f, LogFacts):
            cats = f.categories()
            if cats & {"embedded_vllm", "mp_connector", "offload_flag"}:
                return "vllm"
            if "sglang_lmcache" in cats:
                return "sglang"
    return None


def controller_scrape(f: object) -> bool:
    """A scrape whose LMCache families are all the controller's own gauges (its /metrics,
    given as a metrics file): the controller's surface, not an engine's."""
    if not isinstance(f, MetricsFacts):
        return False
    lm = [fam.name for fam in f.families if fam.name.startswith(("lmcache:", "lmcache_"))]
    return bool(lm) and all(n.startswith(CONTROLLER_PREFIX) for n in lm) and not any(
        fam.name.startswith(("vllm:", "sglang:")) for fam in f.families)


def _controller_only(packet: Packet) -> list[EvidenceRef]:
    """References to the controller answers when they are the only evidence of note (no
    engine or cache metrics); empty otherwise."""
    scrapes = [e for e in packet.evidence if e.status in ("ok", "partial")
               and e.kind in ("lmcache_metrics", "engine_metrics")]
    if any(not controller_scrape(e.facts) for e in scrapes):
        return []
    refs = [EvidenceRef(e.kind, source_label(e), "the controller's own /metrics "
                        "(lmcache:cache_controller_* gauges only)") for e in scrapes]
    for e in packet.evidence:
        f = e.facts
        if (e.status in ("ok", "partial") and isinstance(f, ControllerFacts)
                and f.server == "controller" and f.reachable):
            keys = f.total_key_count if f.total_key_count is not None else f.gauge(
                "kv_pool_keys_count")
            refs.append(EvidenceRef(e.kind, source_label(e), f"{f.server} answered: "
                                    f"{f.workers_listed if f.workers_listed is not None else '?'}"
                                    f" worker(s) listed, {keys if keys is not None else '?'} "
                                    "key(s)"))
    return refs
