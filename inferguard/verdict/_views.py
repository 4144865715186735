"""The aggregated series a verdict carries for pictures: each trace's timeline, key reuse
and lifecycle breaks (from the trace reader), one request's spans (from the OTLP reader) and
counter deltas between consecutive scrapes of one target (by `judge._rates`, the rates' own
definition of a delta and a reset).

Presentation reads these and computes nothing: every number the HTML report draws is here,
in the verdict JSON the CLI prints. Bounded whatever the input size (`TraceSeries` has at
most `MAX_POINTS` points, the request at most `MAX_STEPS` spans, deltas the top counters);
never a raw hash, token id or span id.
"""

from __future__ import annotations

import itertools

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._metrics import MetricsFacts
from inferguard.evidence._model import Evidence, Problem, source_label
from inferguard.evidence._otel import OtelFacts, SpanStep
from inferguard.evidence._trace import TraceFacts, TraceSeries
from inferguard.judge._mode import SUPPORTED
from inferguard.judge._rates import counter_delta, scrape_series

__all__ = ["SUPPORTED", "CounterDeltas", "Problem", "RequestView", "ScrapeDeltas", "SpanStep",
           "TraceSeries", "TraceView", "Views", "views_of"]
"""The view types, with the evidence types they hold and the claim level presentation
tells apart (`SUPPORTED`: decided by measured evidence), so presentation imports only
`verdict/`."""

MAX_COUNTERS = 12
"""Counters kept per scrape target: the ones that moved most between its first and last
scrape."""


class TraceView(msgspec.Struct, frozen=True):
    source: str
    series: TraceSeries


class RequestView(msgspec.Struct, frozen=True):
    source: str
    spans: list[SpanStep]


class CounterDeltas(msgspec.Struct, frozen=True, omit_defaults=True):
    """One counter's increase over each interval between consecutive scrapes, and how many
    resets those intervals crossed (`judge._rates.counter_delta`: a counter that went down,
    or a new process by `process_start_time_seconds` / `service_instance_id`, counts its new
    value)."""

    family: str
    deltas: list[float]
    resets: int = 0


class ScrapeDeltas(msgspec.Struct, frozen=True, omit_defaults=True):
    """Consecutive scrapes of one target (its URL; for files, the evidence kind), in packet
    order, as `judge._rates` groups them, and the top counters' increases between them. With
    fewer than two scrapes there is no interval."""

    target: str
    scrapes: list[str]
    counters: list[CounterDeltas] = msgspec.field(default_factory=list)


MAX_PROBLEMS = 20
"""Packet problems kept for the page (the first ones; the count says how many in all)."""


class Views(msgspec.Struct, frozen=True, omit_defaults=True):
    traces: list[TraceView] = msgspec.field(default_factory=list)
    request: RequestView | None = None
    scrape_deltas: list[ScrapeDeltas] = msgspec.field(default_factory=list)
    # What the packet itself could not read (a stored evidence file, a missing copy): the
    # verdict is judged without it, and the page says so.
    packet_problems: list[Problem] = msgspec.field(default_factory=list)
    packet_problem_count: int = 0


def _deltas(target: str, series: list[Evidence]) -> ScrapeDeltas:
    """Each counter's increase over each interval between consecutive scrapes of one target,
    by `judge._rates.counter_delta` (one definition of a delta and of a reset)."""
    names = [source_label(e) for e in series]
    if len(series) < 2:
        return ScrapeDeltas(target, names)
    counters = sorted({f.name for e in series if isinstance(e.facts, MetricsFacts)
                       for f in e.facts.families if f.type == "counter"})
    out = []
    for fam in counters:
        deltas, resets = [], 0
        for a, b in itertools.pairwise(series):
            d = counter_delta([a, b], (fam,))
            deltas.append(d[3] if d is not None else 0.0)
            resets += len(d[4]) if d is not None else 0
        if any(deltas):
            out.append(CounterDeltas(fam, deltas, resets))
    out.sort(key=lambda c: (-sum(c.deltas), c.family))
    return ScrapeDeltas(target, names, out[:MAX_COUNTERS])


def views_of(packet: Packet) -> Views:
    """The packet's pictures as data, read off its evidence's facts (no second pass)."""
    traces = [TraceView(source_label(e), e.facts.series) for e in packet.of_kind("trace")
              if isinstance(e.facts, TraceFacts) and e.facts.series is not None]
    request = None
    for e in packet.of_kind("otel"):
        if isinstance(e.facts, OtelFacts) and e.facts.example_request:
            request = RequestView(source_label(e), e.facts.example_request)
            break
    return Views(traces, request, [_deltas(t, v) for t, v in scrape_series(packet).items()],
                 list(packet.problems[:MAX_PROBLEMS]), len(packet.problems))
