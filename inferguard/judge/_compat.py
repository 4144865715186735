"""`compat(packet)`: what each metric family, each evidence surface and each claim shows.

Families come from the catalog (`inferguard.catalog`); each gets `populated`, `zero`,
`missing` or `not_applicable` with the samples behind it and, when it is absent, the reason
the facts give (created on first use, transfer-path only, sampled, L2 not configured ...).
Groups add `partial`. The report also carries the MP observability section, the
required-evidence checklist for the mode with a coverage score, and claims with evidence
levels. It is pure: a function of the packet and the declared settings.
"""

from __future__ import annotations

import msgspec

from inferguard._packet import Packet, PacketSettings
from inferguard.evidence._controller import ControllerFacts
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._metrics import FamilyStats, MetricsFacts
from inferguard.evidence._model import Evidence
from inferguard.evidence._otel import OtelFacts
from inferguard.judge._catalog import FAMILIES, GROUPS, LMCACHE_PREFIXES, FamilySpec, GroupSpec
from inferguard.judge._facts import ReportFacts, report_facts
from inferguard.judge._mode import (
    INFERRED,
    MISSING_SIGNAL,
    PARTIAL,
    SUPPORTED,
    EvidenceRef,
    ModeDetection,
    detect_mode,
)
from inferguard.prom._names import normalize_name

COMPAT_SCHEMA = "inferguard.lmcache_compat/1"
_LAZY_FAMILIES = frozenset(f.name for f in FAMILIES if f.lazy)
_EVENT_FAMILIES = frozenset(f.name for f in FAMILIES if "event" in f.applies)
_TRAFFIC = tuple(f for f in FAMILIES if f.traffic)
# Hit counters that show the cache (LMCache itself, or vLLM's count of connector hits)
# served tokens; the engine's own local prefix cache is not LMCache.
_CACHE_HITS = frozenset(f.name for f in FAMILIES if f.hit_scope in ("lmcache", "connector"))
_BY_ROLE = {f.role: f for f in FAMILIES if f.role}
MP_DEFAULT_SAMPLE_RATE = 0.01

# Which metric surfaces each mode is judged on.
SURFACES: dict[str, tuple[str, ...]] = {
    "mp": ("lmcache_mp", "lmcache_blend", "vllm", "sglang"),
    "embedded_vllm": ("lmcache", "vllm", "lmcache_controller"),
    "embedded_sglang": ("lmcache", "sglang", "sglang_hicache", "lmcache_controller"),
    "p2p": ("lmcache", "vllm", "lmcache_controller"),
    "pd": ("lmcache", "vllm"),
    "controller_only": ("lmcache_controller",),
    "unknown": ("lmcache_mp", "lmcache", "lmcache_blend", "vllm", "sglang", "sglang_hicache",
                "lmcache_controller"),
}


class FamilyResult(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    group: str
    status: str
    type: str
    required: bool = False
    sampled: bool = False
    samples: int = 0
    nonzero_samples: int = 0
    total: float | None = None
    found_as: str | None = None
    source: str | None = None
    explanation: str | None = None


class GroupResult(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    title: str
    surface: str
    status: str
    required: bool
    populated: int = 0
    zero: int = 0
    missing: int = 0
    not_applicable: int = 0
    note: str | None = None


class EventBusRisk(msgspec.Struct, frozen=True, omit_defaults=True):
    dropped_events: float | None
    tail_drop_risk: str
    queue_size: int | None = None
    note: str = ("0.5.6 binds event_bus_queue_depth and drain_lag_seconds to the dead default "
                 "bus: they always read 0 and prove nothing")


class SampledSparsity(msgspec.Struct, frozen=True):
    sample_rate: float
    sample_rate_declared: bool
    families: dict[str, int]
    explanation: str


class DisabledByConfig(msgspec.Struct, frozen=True, omit_defaults=True):
    metrics: bool | None = None
    metrics_via_otlp: bool | None = None
    tracing: bool | None = None
    logging: bool | None = None


class MpObservability(msgspec.Struct, frozen=True, omit_defaults=True):
    """The `lmcache_mp_observability` section of the product page."""

    service_instance_ids: list[str]
    cache_salts: list[str]
    cache_salt_cardinality: int
    l2_adapter_labels: list[str]
    event_bus: EventBusRisk
    sampled_histograms: SampledSparsity
    disabled_by_config: DisabledByConfig
    prometheus_port_note: str | None = None


class ChecklistItem(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    description: str
    present: bool
    evidence: list[str] = msgspec.field(default_factory=list)


class Claim(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    statement: str
    level: str
    evidence: list[str] = msgspec.field(default_factory=list)


class EvidenceSummary(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    source: str
    status: str
    problems: int = 0


class CompatReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """The `lmcache-compat` report: everything `diagnose()` needs, in one document."""

    detected: ModeDetection
    expected_mode: str | None
    effective_mode: str
    mode_match: bool | None
    settings: PacketSettings
    conditions: dict[str, bool]
    families: list[FamilyResult]
    groups: list[GroupResult]
    unknown_lmcache_families: list[str]
    missing_required: list[str]
    zero_required: list[str]
    checklist: list[ChecklistItem]
    coverage: float
    claims: list[Claim]
    evidence: list[EvidenceSummary]
    lmcache_mp_observability: MpObservability | None = None
    facts: ReportFacts = msgspec.field(default_factory=ReportFacts)
    schema: str = COMPAT_SCHEMA

    def family(self, name: str) -> FamilyResult | None:
        return next((f for f in self.families if f.name == name), None)

    def group(self, gid: str) -> GroupResult | None:
        return next((g for g in self.groups if g.id == gid), None)


def _src(ev: Evidence) -> str:
    return ev.source.copied_as or ev.source.path or ev.source.url or "-"


def _readable(packet: Packet, *kinds: str) -> list[Evidence]:
    return [e for e in packet.of_kind(*kinds) if e.status in ("ok", "partial")
            and e.facts is not None]


class _Metrics:
    """All readable scrapes, and the metrics of OTLP exports (under the name the Prometheus
    exporter would give them: a server with `--otlp-endpoint` pushes its families instead of
    serving them on /metrics), indexed by normalised family name."""

    def __init__(self, packet: Packet) -> None:
        self.by_norm: dict[str, tuple[FamilyStats, Evidence]] = {}
        self.sources: dict[str, list[Evidence]] = {"lmcache_metrics": [], "engine_metrics": []}
        for ev in _readable(packet, "lmcache_metrics", "engine_metrics"):
            assert isinstance(ev.facts, MetricsFacts)
            self.sources[ev.kind].append(ev)
            for fam in ev.facts.families:
                self._add(normalize_name(fam.name), fam, ev)
        for ev in _readable(packet, "otel"):
            assert isinstance(ev.facts, OtelFacts)
            for om in ev.facts.metrics:
                self._add(normalize_name(om.prometheus_name), FamilyStats(
                    om.name, om.metric_type, om.points, om.points, om.nonzero_points, om.total),
                    ev)
        for ev in _readable(packet, "controller"):  # the controller's own /metrics gauges
            assert isinstance(ev.facts, ControllerFacts)
            for name, v in ev.facts.gauges.items():
                self._add(normalize_name(name), FamilyStats(name, "gauge", 1, 1, int(v != 0), v),
                          ev)

    def _add(self, key: str, fam: FamilyStats, ev: Evidence) -> None:
        prev = self.by_norm.get(key)
        # Several sources: keep the one with the most data (the latest, loaded one).
        if prev is None or (fam.nonzero_samples, fam.total) >= (
                prev[0].nonzero_samples, prev[0].total):
            self.by_norm[key] = (fam, ev)

    def get(self, spec: FamilySpec) -> tuple[FamilyStats, Evidence] | None:
        for name in (spec.name, *spec.forms):
            hit = self.by_norm.get(normalize_name(name))
            if hit is not None:
                return hit
        return None

    def total(self, name: str) -> float | None:
        hit = self.by_norm.get(normalize_name(name))
        return None if hit is None else hit[0].total

    def label_values(self, prefix: str, label: str) -> set[str]:
        out: set[str] = set()
        for fam, _ in self.by_norm.values():
            if fam.name.startswith(prefix) and label in fam.labels:
                out |= set(fam.labels[label].values)
        return out

    def names(self) -> list[str]:
        return [fam.name for fam, _ in self.by_norm.values()]


def _conditions(packet: Packet, m: _Metrics, settings: PacketSettings) -> dict[str, bool]:
    logs = [e.facts for e in _readable(packet, "log") if isinstance(e.facts, LogFacts)]
    http = [e.facts for e in _readable(packet, "http") if isinstance(e.facts, HttpFacts)]
    launch = [e.facts for e in _readable(packet, "launch_config")
              if isinstance(e.facts, LaunchFacts)]

    def any_family(group: str) -> bool:
        return any(m.get(f) is not None for f in FAMILIES if f.group == group)

    blend = any_family("blend") or any(
        lf.flags.get("engine-type") == "blend" for lf_ in launch for lf in lf_.launches)
    controllers = [e.facts for e in _readable(packet, "controller")
                   if isinstance(e.facts, ControllerFacts)]
    return {
        "coordinator": any("coordinator-url" in lf.flags for lf_ in launch
                           for lf in lf_.launches)
        or any(m.get(f) is not None for f in FAMILIES if "coordinator" in f.applies),
        "controller_metrics": any(c.gauges for c in controllers),
        "non_blend": not blend,
        "l2": settings.l2_configured,
        "l2_seen": any((h.num_l2_adapters or 0) > 0 for h in http) or any_family("mp_l2"),
        "lmcache_driven": any_family("mp_transfer") or any_family("mp_l0_l1_throughput")
        or any(lf.count("mp_stored") or lf.count("mp_retrieved") for lf in logs),
        "gpu": any_family("mp_l0_lifecycle"),
        "blend": blend,
        "p2p": any(h.p2p_enabled for h in http) or any("p2p" in lf.categories() for lf in logs),
        "p2p_serving": any(lf.count("p2p_transfer_finished") or lf.count("p2p_handler_start")
                           for lf in logs) or any_family("p2p"),
        "event": False,
        "legacy": False,
        "never": False,
        "traffic": _traffic(m, logs),
    }


def _traffic(m: _Metrics, logs: list[LogFacts]) -> bool:
    """Did any request reach the cache? (lookups, L1 reads/writes, lifecycle log lines)."""
    for spec in _TRAFFIC:
        hit = m.get(spec)
        if hit is not None and hit[0].total > 0:
            return True
    return any(h.category == "lifecycle" for lf in logs for h in lf.hints)


def _explain_missing(spec: FamilySpec, cond: dict[str, bool], m: _Metrics, surface: str,
                     sample_rate: float) -> str:
    have_source = surface == "lmcache_controller" or bool(
        m.sources["engine_metrics"] if surface in ("vllm", "sglang", "sglang_hicache")
        else m.sources["lmcache_metrics"] or m.sources["engine_metrics"])
    if not have_source:
        return "no scrape of this surface is in the packet"
    if surface == "lmcache" and m.sources["engine_metrics"] and not any(
            n.startswith(("lmcache:", "lmcache_")) and not n.startswith(
                "lmcache:cache_controller_") for n in m.names()):
        return ("no lmcache:* at all: vLLM's /metrics omits them unless PROMETHEUS_MULTIPROC_DIR "
                "is set before launch (use vllm:external_prefix_cache_* or the internal API "
                "server)")
    if "event" in spec.applies:
        return "appears only when its event happens (eviction, failure, timeout)"
    if spec.lazy and not cond["traffic"]:
        return "created on first use; no traffic reached the cache in this evidence"
    if spec.sampled and sample_rate < 1.0:
        return (f"sampled at --metrics-sample-rate {sample_rate:g}: few or no observations "
                "is expected at low traffic")
    if spec.lazy:
        return "created on first use; the workload did not exercise it"
    return "expected from startup but absent"


def compat(packet: Packet) -> CompatReport:
    """Judge the packet's telemetry against the catalog for the expected/detected mode.

    What the operator declares (expected mode, L2, MP flags) lives on the packet's settings
    (`packet.with_settings(...)`): one road for every parameter."""
    settings = packet.settings
    detected = detect_mode(packet)
    expected = settings.expected_mode
    effective = expected or detected.mode
    m = _Metrics(packet)
    cond = _conditions(packet, m, settings)
    if detected.flavor == "blend":  # spans, /status keys or log lines show a blend server
        cond["blend"], cond["non_blend"] = True, False
    surfaces = set(SURFACES.get(effective, SURFACES["unknown"]))
    if effective == "mp" and not cond["blend"]:
        surfaces.discard("lmcache_blend")
    engine = _engine_kind(m)
    if engine == "vllm" or (engine is None and effective != "embedded_sglang"):
        surfaces.discard("sglang")
        surfaces.discard("sglang_hicache")
    elif engine == "sglang":
        surfaces.discard("vllm")
    if effective in ("p2p",):
        cond["p2p"] = True
    rate = settings.mp_metrics_sample_rate or MP_DEFAULT_SAMPLE_RATE
    groups_by_id = {g.id: g for g in GROUPS}

    results: list[FamilyResult] = []
    for spec in FAMILIES:
        g = groups_by_id[spec.group]
        in_surface = g.surface in surfaces
        required = (spec.core and effective in g.required_for and in_surface
                    and not _engine_surface_absent(g, m))
        hit = m.get(spec)
        unmet = [c for c in spec.applies if not cond.get(c, False)]
        if hit is not None:
            fam, ev = hit
            populated = fam.nonzero_samples > 0 and (fam.total != 0 or fam.type == "gauge")
            status = "populated" if populated else "zero"
            expl = None
            if spec.dead:
                expl = spec.dead
            elif not in_surface:
                expl = f"outside the {effective} surface"
            elif ev.kind == "otel":
                expl = "from the OTLP metric export (pushed, not served on /metrics)"
            results.append(FamilyResult(
                spec.name, spec.group, status, fam.type, required, spec.sampled, fam.samples,
                fam.nonzero_samples, fam.total, fam.name if fam.name != spec.name else None,
                _src(ev), expl))
            continue
        if not in_surface:
            status, expl = "not_applicable", f"not part of the {effective} surface"
        elif "never" in spec.applies:
            status, expl = "not_applicable", spec.note
        elif unmet and unmet != ["event"]:
            status = "not_applicable"
            expl = _unmet_text(unmet)
        else:
            status = "missing"
            expl = _explain_missing(spec, cond, m, g.surface, rate)
        results.append(FamilyResult(spec.name, spec.group, status, spec.type, required,
                                    spec.sampled, explanation=expl))

    groups = [_group_result(g, [r for r in results if r.group == g.id], effective, surfaces,
                            not cond["traffic"]) for g in GROUPS]
    known = {normalize_name(n) for f in FAMILIES for n in (f.name, *f.forms)}
    unknown = sorted(fam.name for key, (fam, _) in m.by_norm.items()
                     if fam.name.startswith(LMCACHE_PREFIXES) and key not in known)
    # Before any traffic, lazily-created families are absent (and gauges read 0) by design.
    idle = not cond["traffic"]
    missing_req = [r.name for r in results if r.required and r.status == "missing"
                   and not (idle and r.name in _LAZY_FAMILIES)]
    zero_req = [] if idle else [r.name for r in results if r.required and r.status == "zero"]
    checklist = _checklist(packet, effective, m)
    coverage = round(sum(c.present for c in checklist) / len(checklist), 3) if checklist else 0.0
    mp_obs = _mp_observability(packet, m, settings, rate) if (
        effective == "mp" or m.sources["lmcache_metrics"]) else None
    return CompatReport(
        detected=detected, expected_mode=expected, effective_mode=effective,
        mode_match=None if expected is None else (detected.mode == expected or any(
            c.mode == expected and c.confidence >= 0.3 for c in detected.candidates)),
        settings=settings, conditions=cond, families=results, groups=groups,
        unknown_lmcache_families=unknown, missing_required=missing_req,
        zero_required=zero_req, checklist=checklist, coverage=coverage,
        claims=_claims(packet, results, detected, effective, m),
        evidence=[EvidenceSummary(e.kind, _src(e), e.status, len(e.problems))
                  for e in packet.evidence],
        lmcache_mp_observability=mp_obs, facts=report_facts(packet))


def _engine_kind(m: _Metrics) -> str | None:
    names = [n for e in m.sources["engine_metrics"] if isinstance(e.facts, MetricsFacts)
             for n in (f.name for f in e.facts.families)]
    if any(n.startswith("vllm:") or n.startswith("vllm_") for n in names):
        return "vllm"
    if any(n.startswith("sglang:") or n.startswith("sglang_") for n in names):
        return "sglang"
    return None


def _engine_surface_absent(g: GroupSpec, m: _Metrics) -> bool:
    """Engine families are required only when an engine scrape was given at all."""
    return g.surface in ("vllm", "sglang") and not m.sources["engine_metrics"]


def _unmet_text(unmet: list[str]) -> str:
    words = {"l2": "no L2 adapter configured (pass --l2-configured when the run had one)",
             "lmcache_driven": "only on the lmcache-driven transfer path, not seen in this run",
             "gpu": "needs a GPU engine driving the server",
             "blend": "CacheBlend server only (--engine-type blend)",
             "non_blend": "a CacheBlend server: CB lookups do not feed lmcache_mp_lookup_*",
             "p2p": "P2P not enabled", "p2p_serving": "recorded only by a P2P serving peer",
             "legacy": "older LMCache versions only"}
    return "; ".join(words.get(u, u) for u in unmet if u != "event")


def _group_result(g: GroupSpec, rs: list[FamilyResult], mode: str, surfaces: set[str],
                  idle: bool) -> GroupResult:
    """populated / zero / missing / not_applicable, and `partial` when some of the group's
    required families are present and others are not (the product page's definition)."""
    counts = {s: sum(1 for r in rs if r.status == s)
              for s in ("populated", "zero", "missing", "not_applicable")}
    # A family that appears only when its event happens tells nothing by being absent.
    silent = sum(1 for r in rs if r.status == "missing" and r.name in _EVENT_FAMILIES)
    applicable = len(rs) - counts["not_applicable"] - silent
    present = counts["populated"] + counts["zero"]
    core_missing = any(r.required and r.status == "missing"
                       and not (idle and r.name in _LAZY_FAMILIES) for r in rs)
    if applicable == 0:
        status = "not_applicable"
    elif present == 0:
        status = "missing"
    elif core_missing:
        status = "partial"
    elif counts["populated"] == 0:
        status = "zero"
    else:
        status = "populated"
    return GroupResult(g.id, g.title, g.surface, status, any(r.required for r in rs),
                       counts["populated"], counts["zero"], counts["missing"],
                       counts["not_applicable"], g.note or None)


def _checklist(packet: Packet, mode: str, m: _Metrics) -> list[ChecklistItem]:
    kinds = {e.kind: e for e in reversed(packet.evidence) if e.status in ("ok", "partial")}
    http = [e.facts for e in _readable(packet, "http") if isinstance(e.facts, HttpFacts)]
    launch = [lf for e in _readable(packet, "launch_config") if isinstance(e.facts, LaunchFacts)
              for lf in e.facts.launches]
    logs = [e for e in _readable(packet, "log") if isinstance(e.facts, LogFacts)]

    def log_has(*cats: str) -> list[str]:
        return [_src(e) for e in logs if isinstance(e.facts, LogFacts)
                and e.facts.categories() & set(cats)]

    def item(id_: str, desc: str, refs: list[str]) -> ChecklistItem:
        return ChecklistItem(id_, desc, bool(refs), refs)

    lm = [_src(e) for e in m.sources["lmcache_metrics"]]
    em = [_src(e) for e in m.sources["engine_metrics"]]
    seeds = {lf_env for e in _readable(packet, "launch_config") if isinstance(e.facts, LaunchFacts)
             for lf_env in [e.facts.env.get("PYTHONHASHSEED")] if lf_env is not None}
    if mode == "mp":
        return [
            item("lmcache_server_launch", "lmcache server command and config",
                 [f"launch line {x.line}" for x in launch if x.program == "lmcache_server"]
                 + log_has("mp_server")),
            item("mp_connector", "vLLM connector config showing LMCacheMPConnector",
                 [f"launch line {x.line}" for x in launch
                  if (x.kv_connector or "").startswith("LMCacheMPConnector")]
                 + log_has("mp_connector")),
            item("lmcache_healthcheck", "LMCache healthcheck",
                 [f"/healthcheck healthy={h.healthy}" for h in http if h.healthy is not None]),
            item("engine_healthcheck", "vLLM healthcheck", []),
            item("lmcache_metrics", "LMCache /metrics", lm),
            item("engine_metrics", "vLLM /metrics", em),
            item("lmcache_logs", "LMCache server logs", log_has("mp_server")),
            item("otel_or_trace", "OTel / trace recording / replay artifacts (optional)",
                 [_src(kinds[k]) for k in ("otel", "trace", "trace_replay") if k in kinds]),
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
            item("lmcache_metrics", "lmcache:* or normalised LMCache metrics",
                 [n for n in m.names() if n.startswith(("lmcache:", "lmcache_"))][:3]),
            item("lifecycle_logs", "logs showing store and retrieve", log_has("lifecycle")),
        ]
    if mode == "p2p":
        return [
            item("engine_launches", "at least two engine launch commands",
                 [f"launch line {x.line}" for x in launch if x.program in ("vllm", "sglang")]
                 if sum(x.program in ("vllm", "sglang") for x in launch) >= 2 else []),
            item("controller", "controller launch / logs / answers",
                 [f"launch line {x.line}" for x in launch if x.program == "lmcache_controller"]
                 + log_has("controller") + [_src(e) for e in _readable(packet, "controller")]),
            item("hash_seed", "consistent PYTHONHASHSEED",
                 [f"PYTHONHASHSEED={s}" for s in sorted(seeds)] if len(seeds) == 1 else []),
            item("peer_logs", "peer connection and cross-engine retrieval logs", log_has("p2p")),
            item("p2p_metrics", "P2P metrics (serving peer)",
                 [n for n in m.names() if "p2p_time_to_transfer" in n]),
        ]
    if mode == "controller_only":
        ctrl = [e for e in _readable(packet, "controller") if isinstance(e.facts, ControllerFacts)]
        return [
            item("controller_workers", "controller /controller/workers answer",
                 [_src(e) for e in ctrl if e.facts.workers_listed is not None]),
            item("controller_metrics", "controller /metrics (lmcache:cache_controller_*)",
                 [_src(e) for e in ctrl if e.facts.gauges]),
            item("controller_logs", "controller logs",
                 log_has("controller", "control_plane")),
            item("engine_metrics", "engine or LMCache /metrics (needed for any cache claim)",
                 lm + em),
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
            item("any_logs", "any log", [_src(e) for e in logs])]


def _claims(packet: Packet, rs: list[FamilyResult], det: ModeDetection, mode: str,
            m: _Metrics) -> list[Claim]:
    claims = [Claim("mode", f"LMCache runs in {det.mode} mode", det.level,
                    [r.detail for c in det.candidates[:1] for r in c.evidence[:4]])]
    hits = [r for r in rs if r.name in _CACHE_HITS]
    populated = [r for r in hits if r.status == "populated"]
    logs_hits = [e for e in _readable(packet, "log") if isinstance(e.facts, LogFacts)
                 and (e.facts.count("mp_prefetch_completed") or e.facts.count("mp_retrieved")
                      or e.facts.count("embedded_retrieved"))]
    if populated:
        claims.append(Claim("cache_hits", "the cache served hits", SUPPORTED,
                            [f"{r.name}={r.total:g}" for r in populated]))
    elif logs_hits:
        claims.append(Claim("cache_hits", "the cache served hits", INFERRED,
                            [_src(e) for e in logs_hits]))
    elif any(r.status == "zero" for r in hits):
        claims.append(Claim("cache_hits", "the cache served hits", PARTIAL,
                            [f"{r.name}=0" for r in hits if r.status == "zero"]))
    else:
        claims.append(Claim("cache_hits", "the cache served hits", MISSING_SIGNAL))
    l2 = [r for r in rs if r.group in ("mp_l2", "mp_l2_throughput") and r.status == "populated"]
    if l2:
        claims.append(Claim("l2_in_use", "an L2 adapter stored or loaded data", SUPPORTED,
                            [r.name for r in l2[:4]]))
    spans = _readable(packet, "otel")
    traces = _readable(packet, "trace")
    if spans or traces:
        claims.append(Claim("request_level_evidence", "request-level spans or trace records",
                            SUPPORTED, [_src(e) for e in spans + traces]))
    return claims


def _mp_observability(packet: Packet, m: _Metrics, settings: PacketSettings,
                      rate: float) -> MpObservability:
    ids: set[str] = set()
    for e in m.sources["lmcache_metrics"]:
        assert isinstance(e.facts, MetricsFacts)
        ids |= set(e.facts.service_instance_ids)
    salts = m.label_values("lmcache_mp_", "cache_salt")
    l2 = m.label_values("lmcache_mp_", "l2_name")
    drops = _BY_ROLE["event_bus_drops"]
    hit = m.get(drops)
    dropped = None if hit is None else hit[0].total
    if dropped is None:
        risk = f"unknown: {drops.name} is absent, so drops would be invisible"
    elif dropped > 0:
        risk = f"drops observed: {dropped:g} events lost; counters and histograms undercount"
    else:
        risk = "no drops counted"
    lifecycle: dict[str, int] = {}
    for spec in FAMILIES:
        if spec.sampled and spec.name.startswith("lmcache_mp_"):
            hit = m.get(spec)
            lifecycle[spec.name] = int(hit[0].total) if hit else 0
    declared = settings.mp_metrics_sample_rate is not None
    expl = (f"lifecycle and reuse histograms observe about {rate:.0%} of keys "
            f"(--metrics-sample-rate {rate:g}{'' if declared else ', the default: not declared'}"
            "); counters count every event")
    logs = [e.facts for e in _readable(packet, "log") if isinstance(e.facts, LogFacts)]
    otlp = any(lf.count("mp_metrics_otlp") for lf in logs)
    has_mp = any(k.startswith("lmcache_mp_") for k in m.by_norm)
    metrics_off: bool | None = None
    if has_mp:
        metrics_off = False
    elif m.sources["lmcache_metrics"] and not otlp:
        metrics_off = True  # a scrape answered without any lmcache_mp_* family
    disabled = DisabledByConfig(
        metrics=metrics_off,
        metrics_via_otlp=otlp or None,
        tracing=(False if any(lf.count("tracing_enabled") for lf in logs) else
                 (True if settings.mp_tracing_enabled is False else None)),
        logging=None)
    note = None
    if settings.mp_prometheus_port is not None:
        note = ("lmcache server (0.5.6) serves /metrics on its HTTP API port, not on "
                f"--prometheus-port {settings.mp_prometheus_port}")
    return MpObservability(
        service_instance_ids=sorted(ids), cache_salts=sorted(salts)[:64],
        cache_salt_cardinality=len(salts), l2_adapter_labels=sorted(l2),
        event_bus=EventBusRisk(dropped, risk, settings.mp_event_bus_queue_size),
        sampled_histograms=SampledSparsity(rate, settings.mp_metrics_sample_rate is not None,
                                           lifecycle, expl),
        disabled_by_config=disabled, prometheus_port_note=note)


def evidence_ref_text(r: EvidenceRef) -> str:
    return f"{r.kind}:{r.source}{f':{r.line}' if r.line else ''} {r.detail}"
