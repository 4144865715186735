"""The `lmcache_mp_observability` section of the product page: service instances, salts,
L2 adapters, EventBus drop risk, sampled histograms, and what config disabled."""

from __future__ import annotations

import msgspec

from inferguard._packet import Packet, PacketSettings
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._metrics import MetricsFacts
from inferguard.judge._catalog import FAMILIES
from inferguard.judge._facts import readable
from inferguard.judge._index import MetricsIndex
from inferguard.judge._report import (
    DisabledByConfig,
    EventBusRisk,
    MpObservability,
    RateSource,
    SampledSparsity,
)

_BY_ROLE = {f.role: f for f in FAMILIES if f.role}
# lmcache 0.5.6 `ObservabilityConfig.metrics_sample_rate` (mp_observability/config.py).
MP_DEFAULT_SAMPLE_RATE = 0.01
_FROM = {"config": "the server's /config answer", "launch": "the lmcache server launch line"}
_WHERE = {"config": "from " + _FROM["config"], "launch": "from " + _FROM["launch"],
          "declared": "as declared", "default": "upstream's default: neither declared nor in "
          "the evidence"}


class SampleRate(msgspec.Struct, frozen=True):
    """The --metrics-sample-rate the judgement uses, what decided it, and any disagreement
    between the evidence and the operator's declaration."""

    rate: float
    source: RateSource
    declared: float | None = None
    conflict: str | None = None

    def text(self) -> str:
        return f"--metrics-sample-rate {self.rate:g}, {_WHERE[self.source]}" + (
            f"; {self.conflict}" if self.conflict else "")


def _rate(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        r = float(v) if isinstance(v, (int, float, str)) else None
    except ValueError:
        return None
    return r if r is not None and 0 < r <= 1 else None


def sample_rate(packet: Packet, settings: PacketSettings) -> SampleRate:
    """Evidence first (the running server's `/config`, then the `lmcache server` launch
    line's `--metrics-sample-rate`), then the declared setting, then upstream's default."""
    config = [h.metrics_sample_rate for e in readable(packet, "http")
              if isinstance(h := e.facts, HttpFacts) and h.metrics_sample_rate is not None]
    launch = [r for e in readable(packet, "launch_config") if isinstance(e.facts, LaunchFacts)
              for x in e.facts.launches if x.program == "lmcache_server"
              and (r := _rate(x.flags.get("metrics-sample-rate"))) is not None]
    declared = settings.mp_metrics_sample_rate
    notes: list[str] = []
    source: RateSource
    if config:
        rate, source = config[0], "config"
        if len(set(config)) > 1:
            notes.append("the servers' /config answers differ: " + ", ".join(
                f"{r:g}" for r in sorted(set(config))))
        if launch and launch[0] != rate:
            notes.append(f"the launch line says {launch[0]:g} but /config answers {rate:g}")
    elif launch:
        rate, source = launch[0], "launch"
    elif declared is not None:
        rate, source = declared, "declared"
    else:
        rate, source = MP_DEFAULT_SAMPLE_RATE, "default"
    if declared is not None and source in ("config", "launch") and declared != rate:
        notes.append(f"declared {declared:g}, but {_FROM[source]} says {rate:g}: the evidence "
                     "is used")
    return SampleRate(rate, source, declared, "; ".join(notes) or None)


def mp_observability(packet: Packet, m: MetricsIndex, settings: PacketSettings,
                     sampling: SampleRate) -> MpObservability:
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
    rate = sampling.rate
    share = "every key" if rate >= 1.0 else f"about {rate * 100:.3g}% of keys"
    expl = (f"lifecycle and reuse histograms observe {share} ({sampling.text()}); counters "
            "count every event")
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
                                           lifecycle, expl, sampling.source),
        disabled_by_config=disabled, prometheus_port_note=note)
