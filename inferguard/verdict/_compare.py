"""`compare(a, b)`: what changed between two judged packets (before/after a config change,
two nodes, two versions) — family status changes, rate changes with their windows, findings
that appeared or cleared, mode and settings that differ, and the vLLM TTFT change per
quantile when both packets hold a TTFT histogram. `regressions` lists the changes that count
against B (what `inferguard compare --fail-on regression` exits 1 on); each says why.

A regression is: a family populated in A that is zero or missing in B; a hit rate (not a
share) lower in B by more than `RATE_TOLERANCE` (both windows had lookups); an error finding
new in B; a detected mode that changed. TTFT changes are reported, not judged: two runs'
latencies differ with load, which the packets do not hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._metrics import FamilyStats, MetricsFacts
from inferguard.judge._rates import RATES, Rate, RateWindow, scrape_series
from inferguard.prom._names import normalize_name
from inferguard.verdict._verdict import Verdict, judge_packet

COMPARE_SCHEMA = "inferguard.compare/1"
RATE_TOLERANCE = 0.01  # an absolute drop of more than one percentage point
TTFT_FAMILY = "vllm:time_to_first_token_seconds"
QUANTILES = (0.5, 0.9, 0.99)
_SHARES = frozenset(s.name for s in RATES if s.share)


class FamilyChange(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    group: str
    a: str
    b: str
    total_a: float | None = None
    total_b: float | None = None


class RateChange(msgspec.Struct, frozen=True, omit_defaults=True):
    """One rate on both sides (None where a side has no such rate, or no denominator)."""

    name: str
    a: float | None
    b: float | None
    window_a: RateWindow | None
    window_b: RateWindow | None
    change: float | None = None


class SettingChange(msgspec.Struct, frozen=True):
    name: str
    a: str
    b: str


class QuantileChange(msgspec.Struct, frozen=True, omit_defaults=True):
    """A TTFT quantile (seconds, interpolated within the histogram bucket as Prometheus'
    `histogram_quantile` does) on both sides."""

    quantile: float
    a: float | None
    b: float | None
    change: float | None = None


class TtftComparison(msgspec.Struct, frozen=True, omit_defaults=True):
    family: str
    count_a: float
    count_b: float
    quantiles: list[QuantileChange]
    window_a: str
    window_b: str


class Comparison(msgspec.Struct, frozen=True):
    """Everything that differs between A and B, and what of it counts as a regression."""

    a: str
    b: str
    mode_a: str
    mode_b: str
    families: list[FamilyChange]
    rates: list[RateChange]
    findings_appeared: list[str]
    findings_cleared: list[str]
    settings: list[SettingChange]
    regressions: list[str]
    ttft: TtftComparison | None = None
    schema: str = COMPARE_SCHEMA


def _rate_key(rates: Sequence[Rate]) -> dict[str, Rate]:
    """Rates keyed by name (then `name@target` when one name has several targets)."""
    out: dict[str, Rate] = {}
    for r in rates:
        key = r.name if r.name not in out else f"{r.name}@{r.target}"
        out[key] = r
    return out


def compare_verdicts(va: Verdict, vb: Verdict, *, a: str = "A", b: str = "B",
                     ttft: TtftComparison | None = None) -> Comparison:
    """The differences between two verdicts (B judged against A)."""
    ra, rb = va.report, vb.report
    fa = {f.name: f for f in ra.families}
    fams: list[FamilyChange] = []
    regress: list[str] = []
    for f in rb.families:
        old = fa.get(f.name)
        if old is None or old.status == f.status:
            continue
        fams.append(FamilyChange(f.name, f.group, old.status, f.status, old.total, f.total))
        if old.status == "populated" and f.status in ("zero", "missing"):
            regress.append(f"{f.name}: populated in {a}, {f.status} in {b}")
    ka, kb = _rate_key(ra.rates), _rate_key(rb.rates)
    rates: list[RateChange] = []
    for key in list(dict.fromkeys([*ka, *kb])):
        x, y = ka.get(key), kb.get(key)
        va_, vb_ = (None if x is None else x.value), (None if y is None else y.value)
        change = None if va_ is None or vb_ is None else vb_ - va_
        rates.append(RateChange(key, va_, vb_, None if x is None else x.window,
                                None if y is None else y.window, change))
        name = key.split("@", 1)[0]
        if change is not None and name not in _SHARES and change < -RATE_TOLERANCE:
            regress.append(f"{key}: {100 * va_:.1f}% in {a} → {100 * vb_:.1f}% in {b}"  # type: ignore[operator]
                           f" ({100 * change:+.1f} points)")
    codes_a = {f.code: f for f in va.diagnosis.findings}
    codes_b = {f.code: f for f in vb.diagnosis.findings}
    appeared = [c for c in codes_b if c not in codes_a]
    cleared = [c for c in codes_a if c not in codes_b]
    regress += [f"finding {c} ({codes_b[c].severity}) appeared in {b}" for c in appeared
                if codes_b[c].severity == "error"]
    settings: list[SettingChange] = []
    if ra.detected.mode != rb.detected.mode:
        regress.append(f"detected mode changed: {ra.detected.mode} in {a}, "
                       f"{rb.detected.mode} in {b}")
    for name, x_, y_ in (("detected_mode", ra.detected.mode, rb.detected.mode),
                         ("flavor", ra.detected.flavor, rb.detected.flavor),
                         ("effective_mode", ra.effective_mode, rb.effective_mode)):
        if x_ != y_:
            settings.append(SettingChange(name, str(x_), str(y_)))
    sa, sb = msgspec.structs.asdict(ra.settings), msgspec.structs.asdict(rb.settings)
    for name in sa:
        if sa[name] != sb[name]:
            settings.append(SettingChange(f"settings.{name}", str(sa[name]), str(sb[name])))
    return Comparison(a, b, ra.detected.mode, rb.detected.mode, fams, rates, appeared, cleared,
                      settings, regress, ttft)


def compare_packets(pa: Packet, pb: Packet, *, a: str = "A", b: str = "B") -> Comparison:
    """Judge both packets, then compare them (TTFT from their vLLM histograms)."""
    return compare_verdicts(judge_packet(pa), judge_packet(pb), a=a, b=b,
                            ttft=compare_ttft(pa, pb))


def compare_packet_dirs(a: str, b: str) -> Comparison:
    """`inferguard compare A B` on two packet directories (each re-judged from evidence)."""
    return compare_packets(Packet.read(a), Packet.read(b), a=a, b=b)


# -- TTFT ---------------------------------------------------------------------------------

def _ttft_stats(packet: Packet) -> tuple[FamilyStats, FamilyStats | None, str] | None:
    """The TTFT histogram of the packet's engine scrapes: (last, first or None, window)."""
    key = normalize_name(TTFT_FAMILY)
    for target, series in scrape_series(packet).items():
        fams = [f for e in series if isinstance(e.facts, MetricsFacts)
                for f in e.facts.families if normalize_name(f.name) == key]
        if not fams or not fams[-1].buckets:
            continue
        if len(fams) > 1 and fams[0].total <= fams[-1].total:
            return fams[-1], fams[0], f"{target}: between {len(fams)} scrapes"
        return fams[-1], None, f"{target}: since process start"
    return None


def _delta_buckets(last: FamilyStats, first: FamilyStats | None
                   ) -> tuple[list[tuple[float, float]], float]:
    if first is None:
        return list(last.buckets), last.total
    before = dict(first.buckets)
    return ([(le, c - before.get(le, 0.0)) for le, c in last.buckets],
            last.total - first.total)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]], count: float
                       ) -> float | None:
    """The q-quantile of a cumulative histogram (finite bounds, total `count`), linear
    within the bucket; None without observations or when it falls above the last bound."""
    if count <= 0 or not buckets:
        return None
    rank = q * count
    lo_b, lo_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if c == lo_c:
                return le
            return lo_b + (le - lo_b) * (rank - lo_c) / (c - lo_c)
        lo_b, lo_c = le, c
    return None


def compare_ttft(pa: Packet, pb: Packet) -> TtftComparison | None:
    """TTFT per quantile on both sides, when both packets hold a vLLM TTFT histogram."""
    sa, sb = _ttft_stats(pa), _ttft_stats(pb)
    if sa is None or sb is None:
        return None
    (ba, ca), (bb, cb) = _delta_buckets(sa[0], sa[1]), _delta_buckets(sb[0], sb[1])
    qs = []
    for q in QUANTILES:
        x, y = histogram_quantile(q, ba, ca), histogram_quantile(q, bb, cb)
        qs.append(QuantileChange(q, x, y, None if x is None or y is None
                                 or not math.isfinite(x - y) else y - x))
    return TtftComparison(sa[0].name, ca, cb, qs, sa[2], sb[2])
