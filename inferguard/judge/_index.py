"""`MetricsIndex`: every readable scrape of a packet (and OTLP metric exports, and the
controller's gauges) indexed by normalised family name, for the catalog lookups of compat."""

from __future__ import annotations

from inferguard._packet import Packet
from inferguard.evidence._controller import ControllerFacts
from inferguard.evidence._metrics import FamilyStats, MetricsFacts
from inferguard.evidence._model import Evidence
from inferguard.evidence._otel import OtelFacts
from inferguard.judge._catalog import FamilySpec
from inferguard.judge._facts import readable
from inferguard.prom._names import normalize_name


class MetricsIndex:
    """All readable scrapes, and the metrics of OTLP exports (under the name the Prometheus
    exporter would give them: a server with `--otlp-endpoint` pushes its families instead of
    serving them on /metrics), indexed by normalised family name."""

    def __init__(self, packet: Packet) -> None:
        self.by_norm: dict[str, tuple[FamilyStats, Evidence]] = {}
        self.sources: dict[str, list[Evidence]] = {"lmcache_metrics": [], "engine_metrics": [],
                                                   "otel_metrics": []}
        for ev in readable(packet, "lmcache_metrics", "engine_metrics"):
            assert isinstance(ev.facts, MetricsFacts)
            self.sources[ev.kind].append(ev)
            for fam in ev.facts.families:
                self._add(normalize_name(fam.name), fam, ev)
        for ev in readable(packet, "otel"):
            assert isinstance(ev.facts, OtelFacts)
            if ev.facts.metrics:  # an OTLP metric export: the pushed surface itself
                self.sources["otel_metrics"].append(ev)
            for om in ev.facts.metrics:
                self._add(normalize_name(om.prometheus_name), FamilyStats(
                    om.name, om.metric_type, om.points, om.points, om.nonzero_points, om.total),
                    ev)
        for ev in readable(packet, "controller"):  # the controller's own /metrics gauges
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
