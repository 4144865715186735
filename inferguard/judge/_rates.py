"""Hit rates over a window: counter deltas between scrapes of one target, and the rates
operators ask for (LMCache lookup hit rate, L1/L2 share, vLLM external and local prefix-cache
hit rates, embedded LMCache hit rate), each with its numerator, denominator, window and level.

A packet may hold several scrapes of the same target (a before/after pair, or a series). A
target is one exporter: the scrape URL, or, for files, the evidence kind (LMCache `/metrics`
vs the engine's), in packet order. Between two consecutive scrapes a counter's delta is
`after - before`; a counter reset (the total went down, or `process_start_time_seconds` or
the `service_instance_id` changed: another process) makes the delta `after` (the new process
counted from 0) and is said so in the window. A family absent from an earlier scrape and
present later counts from 0 (labelled series appear on first use). A single scrape gives the
"since process start" figure, labelled so. A zero denominator gives no rate (`value` None):
nothing was asked, which is not a 0 % hit rate.

Rates come from scrapes only (Prometheus pull); they are `measured` evidence. OTLP exports
are cumulative points without a scrape series and are not used here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._lookup_hashes import LookupHashFacts
from inferguard.evidence._metrics import MetricsFacts
from inferguard.evidence._model import Evidence, source_label
from inferguard.judge._facts import readable
from inferguard.prom._names import normalize_name

RATES_SCHEMA = "inferguard.rates/1"
START_FAMILY = "process_start_time_seconds"

WindowKind = Literal["between_scrapes", "since_process_start", "lookup_hash_replay"]


class RateSpec(msgspec.Struct, frozen=True):
    """One rate as data: its name, what it means, and its numerator/denominator families
    (the first spelling each scrape has wins: 0.5.7 renames are listed as alternatives)."""

    name: str
    title: str
    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    surface: str
    share: bool = False


# THE table of rates (formula: numerator delta / denominator delta over the window).
RATES: tuple[RateSpec, ...] = (
    RateSpec("lmcache_mp_lookup_hit_rate", "LMCache MP lookup hit rate (tokens)",
             ("lmcache_mp_lookup_hit_tokens_total",),
             ("lmcache_mp_lookup_requested_tokens_total",), "lmcache_mp"),
    RateSpec("lmcache_mp_prompt_hit_rate", "LMCache MP request hit rate over prompt tokens "
             "(0.5.7+)", ("lmcache_mp_lookup_request_hit_tokens_total",),
             ("lmcache_mp_lookup_prompt_tokens_total",), "lmcache_mp"),
    RateSpec("lmcache_mp_l1_share", "share of LMCache MP hit tokens served from L1",
             ("lmcache_mp_lookup_hit_l1_tokens_total",),
             ("lmcache_mp_lookup_hit_tokens_total",), "lmcache_mp", share=True),
    RateSpec("lmcache_mp_l2_share", "share of LMCache MP hit tokens served from L2",
             ("lmcache_mp_lookup_hit_l2_tokens_total",),
             ("lmcache_mp_lookup_hit_tokens_total",), "lmcache_mp", share=True),
    # Embedded (lmcache 0.5.6 observability.py): num_hit_tokens counts tokens retrieved
    # (on_retrieve_finished) over num_requested_tokens; num_lookup_hits every token a lookup
    # found (on_lookup_finished), prefixes vLLM still held included, over num_lookup_tokens.
    RateSpec("lmcache_embedded_hit_rate", "embedded LMCache retrieve hit rate (tokens)",
             ("lmcache:num_hit_tokens",), ("lmcache:num_requested_tokens",), "lmcache"),
    RateSpec("lmcache_embedded_lookup_hit_rate", "embedded LMCache lookup hit rate (tokens)",
             ("lmcache:num_lookup_hits",), ("lmcache:num_lookup_tokens",), "lmcache"),
    RateSpec("vllm_external_prefix_cache_hit_rate",
             "vLLM external (KV connector) prefix-cache hit rate",
             ("vllm:external_prefix_cache_hits",), ("vllm:external_prefix_cache_queries",),
             "vllm"),
    RateSpec("vllm_local_prefix_cache_hit_rate", "vLLM local (GPU) prefix-cache hit rate",
             ("vllm:prefix_cache_hits",), ("vllm:prefix_cache_queries",), "vllm"),
)


class RateWindow(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a figure covers: between two scrapes (`start` → `end`, `seconds` when both
    scrape times are known), or since the process started (one scrape). `resets` says each
    counter reset crossed inside the window and why it was taken for one."""

    kind: WindowKind
    end: str
    label: str
    start: str | None = None
    seconds: float | None = None
    scrapes: int = 1
    resets: list[str] = msgspec.field(default_factory=list)


class Rate(msgspec.Struct, frozen=True, omit_defaults=True):
    """One rate: `value` = `numerator` / `denominator` (None when the denominator is 0 —
    nothing asked is not a 0 % rate), the families behind them, the window and the target."""

    name: str
    title: str
    target: str
    numerator_family: str
    denominator_family: str
    numerator: float
    denominator: float
    value: float | None
    window: RateWindow
    level: str = "measured"
    note: str | None = None

    def percent(self) -> str:
        """The value as a percentage for people ("n/a" without a denominator)."""
        return "n/a" if self.value is None else f"{100 * self.value:.1f}%"


class CounterDelta(msgspec.Struct, frozen=True, omit_defaults=True):
    """A counter's growth over a window of one target (resets accounted for)."""

    family: str
    target: str
    first: float
    last: float
    delta: float
    window: RateWindow


def _totals(facts: MetricsFacts) -> dict[str, float]:
    return {normalize_name(f.name): f.total for f in facts.families}


def _start(facts: MetricsFacts) -> float | None:
    fam = facts.family(START_FAMILY)
    return None if fam is None or fam.samples != 1 else fam.total


def _reset_cause(a: MetricsFacts, b: MetricsFacts) -> str | None:
    """Why scrape b is another process than scrape a (a reset for every counter), or None."""
    sa, sb = _start(a), _start(b)
    if sa is not None and sb is not None and sa != sb:
        return f"process_start_time_seconds changed ({sa:.0f} → {sb:.0f}): a restart"
    if a.service_instance_ids and b.service_instance_ids and (
            a.service_instance_ids != b.service_instance_ids):
        return (f"service_instance_id changed ({','.join(a.service_instance_ids)} → "
                f"{','.join(b.service_instance_ids)}): another process")
    return None


def target_of(ev: Evidence) -> str:
    """The exporter a scrape belongs to: its URL, else its evidence kind (files, in order)."""
    return ev.source.url or ev.kind


def scrape_series(packet: Packet) -> dict[str, list[Evidence]]:
    """Readable scrapes of the packet grouped by target, each list in packet order."""
    out: dict[str, list[Evidence]] = {}
    for ev in readable(packet, "lmcache_metrics", "engine_metrics"):
        if isinstance(ev.facts, MetricsFacts):
            out.setdefault(target_of(ev), []).append(ev)
    return out


def _window(series: Sequence[Evidence], resets: list[str]) -> RateWindow:
    last = series[-1]
    assert isinstance(last.facts, MetricsFacts)
    if len(series) == 1:
        return RateWindow("since_process_start", source_label(last),
                          "since process start (one scrape)")
    first = series[0]
    assert isinstance(first.facts, MetricsFacts)
    t0, t1 = first.facts.scraped_at, last.facts.scraped_at
    seconds = t1 - t0 if t0 is not None and t1 is not None else None
    span = (f"{seconds:.1f} s" if seconds is not None and seconds < 10 else
            f"{seconds:.0f} s" if seconds is not None else "duration unknown")
    a, b = source_label(first), source_label(last)
    what = f"{len(series)} scrapes of {b}" if a == b else f"{a} → {b} ({len(series)} scrapes"
    label = f"{what}, {span}" + ("" if a == b else ")")
    return RateWindow("between_scrapes", source_label(last), label,
                      start=source_label(first), seconds=seconds, scrapes=len(series),
                      resets=resets)


def counter_delta(series: Sequence[Evidence], names: Sequence[str]
                  ) -> tuple[str, float, float, float, list[str]] | None:
    """(family, first, last, delta, resets) of the first of `names` the last scrape has,
    summed over consecutive scrapes with resets taken into account; None when the last
    scrape does not have the family."""
    facts = [e.facts for e in series if isinstance(e.facts, MetricsFacts)]
    tots = [_totals(f) for f in facts]
    key = next((normalize_name(n) for n in names if normalize_name(n) in tots[-1]), None)
    if key is None:
        return None
    name = next(n for n in names if normalize_name(n) == key)
    labels = [source_label(e) for e in series]
    delta, resets = 0.0, []
    prev = tots[0].get(key, 0.0) if len(facts) > 1 else 0.0
    for i in range(1, len(facts)):
        cur = tots[i].get(key, 0.0)
        cause = _reset_cause(facts[i - 1], facts[i])
        if cause is None and cur < prev:
            cause = f"{name} went down ({_num(prev)} → {_num(cur)}): a counter reset"
        if cause is not None:
            resets.append(f"{labels[i - 1]} → {labels[i]}: {cause}")
            delta += cur
        else:
            delta += cur - prev
        prev = cur
    if len(facts) == 1:
        delta = tots[0][key]
    first = tots[0].get(key, 0.0)
    return name, first, tots[-1][key], delta, resets


def _num(v: float) -> str:
    return f"{v:.0f}" if math.isfinite(v) and v == int(v) else f"{v:g}"


def rates_of_series(target: str, series: Sequence[Evidence],
                    specs: Sequence[RateSpec] = RATES) -> list[Rate]:
    """Every rate whose two families the last scrape of `series` has."""
    out: list[Rate] = []
    for spec in specs:
        num = counter_delta(series, spec.numerator)
        den = counter_delta(series, spec.denominator)
        if num is None or den is None:
            continue
        resets = list(dict.fromkeys(num[4] + den[4]))
        window = _window(series, resets)
        value = None if den[3] == 0 else num[3] / den[3]
        note = None
        if value is None:
            note = (f"{den[0]} did not grow over the window: nothing to divide, so no rate "
                    "(not a 0 % rate)")
        elif value == 0 and not spec.share:
            note = "lookups happened and none hit: a measured zero (evidence against hits)"
        out.append(Rate(spec.name, spec.title, target, num[0], den[0], num[3], den[3], value,
                        window, note=note))
    return out


def packet_rates(packet: Packet) -> list[Rate]:
    """The rates of every target of the packet (targets in first-seen order), then the
    achievable hit rates replayed from lookup-hash logs."""
    return [*(r for target, series in scrape_series(packet).items()
              for r in rates_of_series(target, series)), *achievable_rates(packet)]


def achievable_rates(packet: Packet) -> list[Rate]:
    """What LRU caches would have served on the packet's lookup sequences (level
    `simulated`: a replay of the logged lookups, not a measurement of the cache)."""
    out: list[Rate] = []
    for ev in readable(packet, "lookup_hash"):
        if not isinstance(ev.facts, LookupHashFacts):
            continue
        label = source_label(ev)
        window = RateWindow("lookup_hash_replay", label,
                            f"replay of {ev.facts.lookups} logged lookups ({label})")
        for a in ev.facts.achievable:
            cap = "unbounded" if a.capacity is None else f"lru_{a.capacity}"
            what = ("an unbounded cache" if a.capacity is None
                    else f"an LRU of {a.capacity} chunks")
            out.append(Rate(f"achievable_hit_rate_{cap}",
                            f"token hit rate {what} would have reached", label,
                            "lookup-hash replay: prefix hit tokens", "lookup-hash seq_len",
                            float(a.hit_tokens), float(a.tokens), a.hit_rate, window,
                            level="simulated",
                            note=("what the logged lookups allow, next to the measured rate "
                                  "(upstream simulator semantics; keys are model + chunk)")
                            if a.capacity is None else None))
    return out


def packet_deltas(packet: Packet, names: Sequence[str]) -> list[CounterDelta]:
    """The delta of each named counter on every target that has it."""
    out: list[CounterDelta] = []
    for target, series in scrape_series(packet).items():
        for n in names:
            d = counter_delta(series, (n,))
            if d is not None:
                out.append(CounterDelta(d[0], target, d[1], d[2], d[3], _window(series, d[4])))
    return out
