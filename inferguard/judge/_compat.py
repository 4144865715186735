"""`compat(packet)`: what each metric family and each evidence surface shows.

Families come from the catalog (`inferguard.judge._catalog`); each gets `populated`, `zero`,
`missing` or `not_applicable` with the samples behind it and, when it is absent, the reason
the facts give (created on first use, transfer-path only, sampled, L2 not configured ...).
Groups add `partial`. The report also carries the MP observability section, the
required-evidence checklist for the mode with a coverage score; claims are drawn later, from
the findings (`inferguard.verdict`). It is pure: a function of the packet and its settings.
"""

from __future__ import annotations

import msgspec

from inferguard._packet import Packet, PacketSettings
from inferguard.evidence._controller import GAUGE_PREFIX as CONTROLLER_PREFIX
from inferguard.evidence._controller import ControllerFacts
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._metrics import MetricsFacts
from inferguard.evidence._model import source_label
from inferguard.evidence._otel import OtelFacts
from inferguard.judge._catalog import (
    CAVEATS,
    FAMILIES,
    GROUPS,
    LMCACHE_PREFIXES,
    OTLP_SHUTDOWN_GONE,
    Caveat,
    FamilySpec,
    GroupSpec,
    known_names,
)
from inferguard.judge._checklist import checklist
from inferguard.judge._facts import readable, report_facts
from inferguard.judge._index import MetricsIndex
from inferguard.judge._mode import ModeDetection, detect_mode, engine_in_names
from inferguard.judge._observability import mp_observability, sample_rate
from inferguard.judge._rates import Rate, packet_rates
from inferguard.judge._report import (
    CompatReport,
    EvidenceSummary,
    FamilyResult,
    GroupResult,
)
from inferguard.judge._versions import holds, spec_product, version_report, with_selected
from inferguard.prom._names import normalize_name

_LAZY_FAMILIES = frozenset(f.name for f in FAMILIES if f.lazy)
_EVENT_FAMILIES = frozenset(f.name for f in FAMILIES if "event" in f.applies)
_TRAFFIC = tuple(f for f in FAMILIES if f.traffic)

# Which metric surfaces each mode is judged on.
SURFACES: dict[str, tuple[str, ...]] = {
    "mp": ("lmcache_mp", "lmcache_blend", "vllm", "sglang"),
    "embedded_vllm": ("lmcache", "vllm", "lmcache_controller"),
    "embedded_sglang": ("lmcache", "sglang", "sglang_hicache", "lmcache_controller"),
    "p2p": ("lmcache", "vllm", "lmcache_controller"),
    "pd": ("lmcache", "vllm"),
    "controller_only": ("lmcache_controller",),
    "standalone_worker": ("lmcache", "lmcache_controller"),
    "unknown": ("lmcache_mp", "lmcache", "lmcache_blend", "vllm", "sglang", "sglang_hicache",
                "lmcache_controller"),
}


def _vllm_conditions(launch: list[LaunchFacts], logs: list[LogFacts], m: MetricsIndex,
                     detected: ModeDetection) -> dict[str, bool]:
    """vLLM's configuration-gated families (0.33.0 loggers.py): what the launch line, its
    environment or the family itself shows."""
    vllm = [x for lf in launch for x in lf.launches if x.program == "vllm"]
    env = {k: v for lf in launch for k, v in lf.env.items()}

    def seen(cond: str) -> bool:
        return any(m.get(f) is not None for f in FAMILIES if cond in f.applies)

    return {
        "kv_cache_metrics": any(x.flags.get("kv-cache-metrics") not in (None, "false", "False")
                                for x in vllm) or seen("kv_cache_metrics"),
        # vllm/envs.py reads VLLM_COMPUTE_NANS_IN_LOGITS as "1"/"true" (bool(int(...)) form)
        "nans_in_logits": env.get("VLLM_COMPUTE_NANS_IN_LOGITS", "").lower() in ("1", "true")
        or seen("nans_in_logits"),
        "watermark": seen("watermark"),
        "lora": any("enable-lora" in x.flags for x in vllm) or seen("lora"),
        "external_mp_connector": detected.mp_connector != "builtin"
        or seen("external_mp_connector"),
    }


def _conditions(packet: Packet, m: MetricsIndex, settings: PacketSettings) -> dict[str, bool]:
    logs = [e.facts for e in readable(packet, "log") if isinstance(e.facts, LogFacts)]
    http = [e.facts for e in readable(packet, "http") if isinstance(e.facts, HttpFacts)]
    launch = [e.facts for e in readable(packet, "launch_config")
              if isinstance(e.facts, LaunchFacts)]

    def any_family(group: str) -> bool:
        return any(m.get(f) is not None for f in FAMILIES if f.group == group)

    blend = any_family("blend") or any(
        lf.flags.get("engine-type") == "blend" for lf_ in launch for lf in lf_.launches)
    controllers = [e.facts for e in readable(packet, "controller")
                   if isinstance(e.facts, ControllerFacts)]
    return {
        "coordinator": any("coordinator-url" in lf.flags for lf_ in launch
                           for lf in lf_.launches)
        or any(m.get(f) is not None for f in FAMILIES if "coordinator" in f.applies),
        "controller_metrics": any(c.gauges for c in controllers) or any(
            fam.name.startswith(CONTROLLER_PREFIX) for e in readable(
                packet, "lmcache_metrics", "engine_metrics") if isinstance(e.facts, MetricsFacts)
            for fam in e.facts.families),
        "non_blend": not blend,
        "l2": settings.l2_configured,
        "l2_seen": any((h.num_l2_adapters or 0) > 0 for h in http) or any_family("mp_l2"),
        "lmcache_driven": any_family("mp_transfer") or any_family("mp_l0_l1_throughput")
        or any(lf.count("mp_transfer_lmcache_driven") for lf in logs),
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


def _traffic(m: MetricsIndex, logs: list[LogFacts]) -> bool:
    """Did any request reach the cache? (lookups, L1 reads/writes, lifecycle log lines)."""
    for spec in _TRAFFIC:
        hit = m.get(spec)
        if hit is not None and hit[0].total > 0:
            return True
    return any(h.category == "lifecycle" for lf in logs for h in lf.hints)


# The surfaces an MP server's OTLP metric export stands for (`--otlp-endpoint`: its
# MeterProvider pushes instead of serving them on /metrics).
_PUSHED_SURFACES = ("lmcache_mp", "lmcache_blend")


class _Pushed:
    """How the MP metric surface arrived: only as OTLP exports (no scrape carries an
    lmcache_mp_* family), and whether each export holds a single collection."""

    def __init__(self, m: MetricsIndex, logs: list[LogFacts]) -> None:
        exports = [e.facts for e in m.sources["otel_metrics"] if isinstance(e.facts, OtelFacts)]
        scraped = any(f.name.startswith("lmcache_mp_") for e in m.sources["lmcache_metrics"]
                      if isinstance(e.facts, MetricsFacts) for f in e.facts.families)
        self.only = bool(exports) and not scraped
        self.single = bool(exports) and all(x.metric_lines <= 1 for x in exports)
        self.shutdown_logged = any(lf.count("mp_server_shutdown") for lf in logs)

    def shutdown_gap(self, spec: FamilySpec) -> str | None:
        """Why an observable gauge is absent from an export that is only the shutdown
        collection (upstream ordering, not a broken gauge); None when that is not the case."""
        owner = OTLP_SHUTDOWN_GONE.get(spec.name)
        if owner is None or not (self.only and self.single):
            return None
        seen = "; the server log shows the shutdown" if self.shutdown_logged else ""
        return (f"absent from the OTLP export, which holds a single collection: the one the OTel "
                f"SDK makes at exit, after {owner} has deregistered this observable gauge's "
                f"target, so its callback reports no data point (lmcache 0.5.6 ordering){seen}; "
                "not evidence that the gauge is missing while the server ran")


def _explain_missing(spec: FamilySpec, cond: dict[str, bool], m: MetricsIndex, surface: str,
                     sample_rate: float, pushed: _Pushed) -> str:
    via_otlp = surface in _PUSHED_SURFACES and bool(m.sources["otel_metrics"])
    have_source = surface == "lmcache_controller" or via_otlp or bool(
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
    gap = pushed.shutdown_gap(spec) if surface in _PUSHED_SURFACES else None
    if gap is not None:
        return gap
    if via_otlp and pushed.only:
        return "expected from startup but absent from the OTLP metric export"
    return "expected from startup but absent"


def compat(packet: Packet) -> CompatReport:
    """Judge the packet's telemetry against the catalog for the expected/detected mode.

    What the operator declares (expected mode, L2, MP flags) lives on the packet's settings
    (`packet.with_settings(...)`): one road for every parameter."""
    settings = packet.settings
    detected = detect_mode(packet)
    expected = settings.expected_mode
    effective = expected or detected.mode
    m = MetricsIndex(packet)
    cond = _conditions(packet, m, settings)
    cond.update(_vllm_conditions(
        [e.facts for e in readable(packet, "launch_config") if isinstance(e.facts, LaunchFacts)],
        [e.facts for e in readable(packet, "log") if isinstance(e.facts, LogFacts)], m,
        detected))
    vreport = version_report(packet)
    versions = vreport.versions
    selected: list[str] = list(detected.rules)
    vnotes: list[str] = []
    local_mp = detected.deployment == "local" and effective == "mp"
    if detected.flavor == "blend":  # spans, /status keys or log lines show a blend server
        cond["blend"], cond["non_blend"] = True, False
    surfaces = set(SURFACES.get(effective, SURFACES["unknown"]))
    if effective == "mp" and not cond["blend"]:
        surfaces.discard("lmcache_blend")
    engine = _engine_kind(m) or detected.engine
    if engine == "vllm" or (engine is None and effective != "embedded_sglang"):
        surfaces.discard("sglang")
        surfaces.discard("sglang_hicache")
    elif engine == "sglang":
        surfaces.discard("vllm")
    if effective in ("p2p",):
        cond["p2p"] = True
    sampling = sample_rate(packet, settings)
    rate = sampling.rate
    groups_by_id = {g.id: g for g in GROUPS}
    pushed = _Pushed(m, [e.facts for e in readable(packet, "log") if isinstance(e.facts, LogFacts)])
    excused: set[str] = set()  # absent for an upstream reason the explanation gives

    results: list[FamilyResult] = []
    for spec in FAMILIES:
        g = groups_by_id[spec.group]
        in_surface = g.surface in surfaces
        required = (spec.core and effective in g.required_for and in_surface
                    and not _engine_surface_absent(g, m)
                    and not (local_mp and g.surface in _PUSHED_SURFACES))
        hit = m.get(spec)
        gate = holds(spec.versions, versions) if spec.versions else None
        if spec.versions and gate is not None:
            selected.append(f"family:{spec.name}:{spec.versions}"
                            + ("" if gate else " (not this version)"))
        elif spec.versions and hit is None and in_surface:
            vnotes.append(f"no {spec_product(spec.versions)} version in the evidence: "
                          f"families of {spec.versions} are expected (the newest known rules)")
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
                source_label(ev), expl))
            continue
        if not in_surface:
            status, expl = "not_applicable", f"not part of the {effective} surface"
        elif gate is False:
            product = spec_product(spec.versions)
            status, expl = "not_applicable", (f"registered only by {spec.versions}; this run is "
                                              f"{product} {versions[product]}")
        elif local_mp and g.surface in _PUSHED_SURFACES:
            status, expl = "not_applicable", (
                "lmcache.mp.deployment=local: LMCache runs as shards inside the vLLM workers, "
                "with no standalone lmcache server whose /metrics would carry this family")
        elif "never" in spec.applies:
            status, expl = "not_applicable", spec.note
        elif unmet and unmet != ["event"]:
            status = "not_applicable"
            expl = _unmet_text(unmet)
        else:
            status = "missing"
            expl = _explain_missing(spec, cond, m, g.surface, rate, pushed)
            if g.surface in _PUSHED_SURFACES and pushed.shutdown_gap(spec) == expl:
                excused.add(spec.name)
        results.append(FamilyResult(spec.name, spec.group, status, spec.type, required,
                                    spec.sampled, explanation=expl))

    groups = [_group_result(g, [r for r in results if r.group == g.id], effective, surfaces,
                            not cond["traffic"], excused) for g in GROUPS]
    known = known_names()
    unknown = sorted(fam.name for key, (fam, _) in m.by_norm.items()
                     if fam.name.startswith(LMCACHE_PREFIXES) and key not in known)
    # Before any traffic, lazily-created families are absent (and gauges read 0) by design.
    idle = not cond["traffic"]
    missing_req = [r.name for r in results if r.required and r.status == "missing"
                   and not (idle and r.name in _LAZY_FAMILIES) and r.name not in excused]
    zero_req = [] if idle else [r.name for r in results if r.required and r.status == "zero"]
    items = checklist(packet, effective, m, detected)
    # Mode unknown: there is no mode whose evidence a checklist could cover.
    coverage = (round(sum(c.present for c in items) / len(items), 3)
                if items and effective != "unknown" else None)
    mp_obs = mp_observability(packet, m, settings, sampling) if (
        effective == "mp" or m.sources["lmcache_metrics"]) else None
    facts = report_facts(packet)
    caveats = []
    for c in CAVEATS:
        ok = holds(c.holds_for, versions)
        present = [r for r in results if r.name in c.figures and r.status in ("populated", "zero")]
        if present and ok is not False:
            caveats.append(c)
            selected.append(f"caveat:{c.id}:{c.holds_for}" + ("" if ok else " (no version seen)"))
    return CompatReport(
        detected=detected, expected_mode=expected, effective_mode=effective,
        # The detected mode only: a weaker candidate never makes a declared mode match.
        mode_match=None if expected is None else detected.mode == expected,
        settings=settings, conditions=cond, families=results, groups=groups,
        unknown_lmcache_families=unknown, missing_required=missing_req,
        zero_required=zero_req, checklist=items, coverage=coverage,
        evidence=[EvidenceSummary(e.kind, source_label(e), e.status, len(e.problems))
                  for e in packet.evidence],
        lmcache_mp_observability=mp_obs, facts=facts,
        rates=[_with_caveats(rt, caveats) for rt in packet_rates(packet)],
        versions=with_selected(vreport, selected, vnotes), caveats=caveats)


def _with_caveats(rate: Rate, caveats: list[Caveat]) -> Rate:
    """A rate with the counting caveats of the families it divides, in its note."""
    fams = {normalize_name(rate.numerator_family), normalize_name(rate.denominator_family)}
    held = [c for c in caveats if fams & {normalize_name(f) for f in c.figures}]
    if not held:
        return rate
    text = "; ".join(f"caveat {c.id}: {c.text} ({c.source.split(';')[0]})" for c in held)
    return msgspec.structs.replace(rate, note=f"{rate.note}; {text}" if rate.note else text)


def _engine_kind(m: MetricsIndex) -> str | None:
    """The engine the engine scrapes name (either prefix spelling): it outranks the packet-wide
    `detect_mode` engine, which also reads launches and logs."""
    return engine_in_names([f.name for e in m.sources["engine_metrics"]
                            if isinstance(e.facts, MetricsFacts) for f in e.facts.families],
                           bare=True)


def _engine_surface_absent(g: GroupSpec, m: MetricsIndex) -> bool:
    """Engine families are required only when an engine scrape was given at all."""
    return g.surface in ("vllm", "sglang") and not m.sources["engine_metrics"]


def _unmet_text(unmet: list[str]) -> str:
    words = {"l2": "no L2 adapter configured (pass --l2-configured when the run had one)",
             "lmcache_driven": "only on the lmcache-driven transfer path, not seen in this run",
             "gpu": "needs a GPU engine driving the server",
             "blend": "CacheBlend server only (--engine-type blend)",
             "non_blend": "a CacheBlend server: CB lookups do not feed lmcache_mp_lookup_*",
             "p2p": "P2P not enabled", "p2p_serving": "recorded only by a P2P serving peer",
             "legacy": "older LMCache versions only",
             "kv_cache_metrics": "vLLM registers it only with --kv-cache-metrics",
             "nans_in_logits": "vLLM registers it only with VLLM_COMPUTE_NANS_IN_LOGITS",
             "watermark": "vLLM registers it only with a watermark_config",
             "lora": "vLLM registers it only with LoRA enabled",
             "external_mp_connector": "builtin fallback in use: vLLM's "
                                      "LMCacheMPConnectorUpstream.build_prom_metrics() returns "
                                      "None (only LMCache's own connector registers it)"}
    return "; ".join(words.get(u, u) for u in unmet if u != "event")


def _group_reason(status: str, rs: list[FamilyResult]) -> str | None:
    """Why a group is missing, partial or zero, from its families' own explanations (the
    most common first)."""
    if status == "zero":
        return "every present family reads 0"
    if status not in ("missing", "partial"):
        return None
    why: dict[str, int] = {}
    for r in rs:
        if r.status == "missing" and r.explanation:
            why[r.explanation] = why.get(r.explanation, 0) + 1
    if not why:
        return None
    top = sorted(why.items(), key=lambda kv: -kv[1])
    return top[0][0] + (f" (+{len(top) - 1} other reasons)" if len(top) > 1 else "")


def _group_result(g: GroupSpec, rs: list[FamilyResult], mode: str, surfaces: set[str],
                  idle: bool, excused: set[str]) -> GroupResult:
    """populated / zero / missing / not_applicable, and `partial` when some of the group's
    required families are present and others are not (the product page's definition)."""
    counts = {s: sum(1 for r in rs if r.status == s)
              for s in ("populated", "zero", "missing", "not_applicable")}
    # A family that appears only when its event happens tells nothing by being absent.
    silent = sum(1 for r in rs if r.status == "missing" and r.name in _EVENT_FAMILIES)
    applicable = len(rs) - counts["not_applicable"] - silent
    present = counts["populated"] + counts["zero"]
    core_missing = any(r.required and r.status == "missing" and r.name not in excused
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
                       counts["not_applicable"], g.note or None, _group_reason(status, rs))


