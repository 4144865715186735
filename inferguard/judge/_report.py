"""The compat report's types: per-family and per-group results, the MP observability
section, checklist items, and `CompatReport` itself (JSON round-trippable)."""

from __future__ import annotations

from typing import Literal

import msgspec

from inferguard._packet import PacketSettings
from inferguard.judge._catalog import Caveat
from inferguard.judge._facts import ReportFacts
from inferguard.judge._mode import ModeDetection
from inferguard.judge._rates import Rate
from inferguard.judge._versions import VersionReport

COMPAT_SCHEMA = "inferguard.lmcache_compat/1"


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
    reason: str | None = None


class EventBusRisk(msgspec.Struct, frozen=True, omit_defaults=True):
    dropped_events: float | None
    tail_drop_risk: str
    queue_size: int | None = None
    note: str = ("0.5.6 binds event_bus_queue_depth and drain_lag_seconds to the dead default "
                 "bus: they always read 0 and prove nothing")


RateSource = Literal["config", "launch", "declared", "default"]


class SampledSparsity(msgspec.Struct, frozen=True):
    """The MP server's lifecycle/reuse histogram sampling. `source` says what decided the
    rate: the server's `/config` answer, the `lmcache server` launch line, the operator's
    declaration, or upstream's default (0.01); evidence beats a declaration."""

    sample_rate: float
    sample_rate_declared: bool
    families: dict[str, int]
    explanation: str
    source: RateSource = "default"


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
    coverage: float | None
    evidence: list[EvidenceSummary]
    lmcache_mp_observability: MpObservability | None = None
    facts: ReportFacts = msgspec.field(default_factory=ReportFacts)
    # Hit rates with their windows (judge/_rates.py; docs/rates.md): one per target and rate.
    rates: list[Rate] = msgspec.field(default_factory=list)
    schema: str = COMPAT_SCHEMA
    versions: VersionReport | None = None
    caveats: list[Caveat] = msgspec.field(default_factory=list)

    def family(self, name: str) -> FamilyResult | None:
        return next((f for f in self.families if f.name == name), None)

    def group(self, gid: str) -> GroupResult | None:
        return next((g for g in self.groups if g.id == gid), None)
