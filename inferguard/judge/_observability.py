"""The `lmcache_mp_observability` section of the product page: service instances, salts,
L2 adapters, EventBus drop risk, sampled histograms, and what config disabled."""

from __future__ import annotations

from inferguard._packet import Packet, PacketSettings
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._metrics import MetricsFacts
from inferguard.judge._catalog import FAMILIES
from inferguard.judge._facts import readable
from inferguard.judge._index import MetricsIndex
from inferguard.judge._report import (
    DisabledByConfig,
    EventBusRisk,
    MpObservability,
    SampledSparsity,
)

_BY_ROLE = {f.role: f for f in FAMILIES if f.role}


def mp_observability(packet: Packet, m: MetricsIndex, settings: PacketSettings,
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
    logs = [e.facts for e in readable(packet, "log") if isinstance(e.facts, LogFacts)]
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
