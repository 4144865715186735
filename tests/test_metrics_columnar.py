"""The columnar per-family stats of a scrape (`Exposition.family_facts`, what metrics evidence
keeps) equal a plain per-sample computation over `MetricFamily`/`Sample` objects, on every
recorded scrape, generated vLLM/LMCache expositions in both formats, and hand-made edge
cases (escapes, repeated and reordered labels, odd `le` values, `_created`, NaN/Inf)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard import native_available
from inferguard.evidence._metrics import MAX_LABEL_VALUES, FamilyStats, LabelValues, family_stats
from inferguard.prom._model import Exposition, parse_file, parse_text
from tests.prom_gen import generate_exposition

REPO = Path(__file__).resolve().parent.parent
SCRAPES = sorted(p for p in (REPO / "tests" / "fixtures").rglob("*")
                 if p.is_file() and p.stat().st_size < (8 << 20)
                 and ("metrics" in p.name or p.suffix in (".prom", ".txt"))
                 and b"# TYPE" in p.read_bytes()[:1 << 16])
BACKENDS = ["python"] + (["native"] if native_available() else [])

EDGE = b"""# TYPE c_total counter
c_total{a="x"} 1
c_total{a="x\\\"q"} 2
c_total{a="y"} NaN
c_total{a="y"} +Inf
c_total{a="z"} 0
c_created{a="x"} 1700000000
# TYPE g gauge
g{a="1",b="2"} 3
g{b="2",a="1"} 4
g{a="1",a="9"} 5
g 0
# TYPE h histogram
h_bucket{le="0.1",m="a"} 1
h_bucket{m="a",le="1"} 2
h_bucket{le="1.0",m="b"} 3
h_bucket{le="abc",m="a"} 4
h_bucket{le="+Inf",m="a"} 9
h_bucket{le="NaN",m="a"} 5
h_bucket{m="a"} 6
h_bucket{le="2",le="3",m="c"} 7
h_bucket{le="5",m="c"} NaN
h_count{m="a"} 9
h_count{m="b"} -Inf
h_sum{m="a"} 1.5
h_created{m="a"} 5
# TYPE s summary
s{quantile="0.5"} 1
s_count 4
s_sum 2
# TYPE one gauge
one{reason="a"} 0.1
one{reason="b"} 0.2
one{reason="a"} 0.7
one{other="z"} 1
# TYPE r gauge
r{reason="a"} 0.1
r{reason="b"} 0.2
r{reason="a"} 0.7
# TYPE two gauge
two{x="1",y="1"} 1
two{x="2",y="2"} 2
# TYPE u untyped
u 1
"""


def oracle_family_stats(exp: Exposition) -> list[FamilyStats]:
    """The per-sample reference: every Sample object, plain Python sets and sums."""
    out = []
    for fam in exp.families:
        data = [s for s in fam.samples if not s.name.endswith("_created")]
        if fam.type in ("histogram", "gaugehistogram", "summary"):
            counted = [s for s in data if s.name.endswith("_count")]
        else:
            counted = data
        series = {(s.name, s.labels) for s in data}
        labels: dict[str, set[str]] = {}
        for s in data:
            for k, v in s.labels:
                if k not in ("le", "quantile"):
                    labels.setdefault(k, set()).add(v)
        total = math.fsum(s.value for s in counted if math.isfinite(s.value))
        out.append(FamilyStats(
            name=fam.name, type=fam.type, samples=len(data), series=len(series),
            nonzero_samples=sum(1 for s in data if s.value != 0 and not math.isnan(s.value)),
            total=total,
            labels={k: LabelValues(len(v), sorted(v)[:MAX_LABEL_VALUES])
                    for k, v in sorted(labels.items())},
            buckets=_buckets(data) if fam.type in ("histogram", "gaugehistogram") else [],
            label_totals=_label_totals(data, labels) if fam.type in ("counter", "gauge")
            else {}))
    return out


def _buckets(data: list[Any]) -> list[tuple[float, float]]:
    """Cumulative bucket counts per finite `le`, summed over series (at most 64 bounds)."""
    acc: dict[float, float] = {}
    for s in data:
        if not s.name.endswith("_bucket") or not math.isfinite(s.value):
            continue
        le = next((v for k, v in s.labels if k == "le"), None)
        try:
            bound = float(le) if le is not None else math.inf
        except ValueError:
            continue
        if math.isfinite(bound):  # + 0.0: "-0" and "0" are one bucket, reported as 0.0
            acc[bound + 0.0] = acc.get(bound + 0.0, 0.0) + s.value
    return sorted(acc.items())[:MAX_LABEL_VALUES]


def _label_totals(data: list[Any], labels: dict[str, set[str]]
                  ) -> dict[str, dict[str, float]]:
    """Totals per value of the one label a counter or gauge splits by: its only label, or the
    only one of several whose value varies; none otherwise."""
    varying = [k for k, v in labels.items() if len(v) > 1]
    if len(labels) == 1:
        key = next(iter(labels))
    elif len(varying) == 1:
        key = varying[0]
    else:
        return {}
    values = labels[key]
    if len(values) > MAX_LABEL_VALUES:
        return {}
    acc: dict[str, float] = {}
    for s in data:
        v = next((lv for k, lv in s.labels if k == key), None)
        if v is not None and math.isfinite(s.value):
            acc[v] = acc.get(v, 0.0) + s.value
    return {key: dict(sorted(acc.items()))}




def _check(exp: Exposition) -> None:
    got = msgspec.json.encode(family_stats(exp.family_facts(MAX_LABEL_VALUES)))
    want = msgspec.json.encode(oracle_family_stats(exp))
    assert got == want


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", SCRAPES, ids=lambda p: str(p.relative_to(REPO)))
def test_columnar_stats_equal_the_per_sample_oracle_on_recorded_scrapes(
        path: Path, backend: str) -> None:
    _check(parse_file(path, backend=backend))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("openmetrics", [False, True])
def test_columnar_stats_equal_the_oracle_on_generated_expositions(
        backend: str, openmetrics: bool) -> None:
    data = generate_exposition(12, openmetrics=openmetrics, seed=5)
    _check(parse_text(data, backend=backend))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_columnar_stats_on_edge_cases(backend: str) -> None:
    exp = parse_text(EDGE, backend=backend)  # type: ignore[arg-type]
    _check(exp)
    by = {f.name: f for f in family_stats(exp.family_facts(MAX_LABEL_VALUES))}
    # Hand-checked: NaN/Inf not in totals, `_created` not a sample, labels in another order
    # are another series (as written), the one (varying) label splits totals, two do not.
    c = by["c_total"]
    assert (c.samples, c.series, c.nonzero_samples, c.total) == (5, 4, 3, 3.0)
    assert c.label_totals == {"a": {"x": 1.0, 'x"q': 2.0, "z": 0.0}}
    assert by["g"].series == 3 and by["g"].labels["a"] == LabelValues(1, ["1"])
    assert by["h"].buckets == [(0.1, 1.0), (1.0, 5.0)] and by["h"].total == 9.0
    assert by["r"].label_totals == {"reason": {"a": 0.1 + 0.7, "b": 0.2}}
    assert by["one"].label_totals == {"reason": {"a": 0.1 + 0.7, "b": 0.2}}
    assert by["two"].label_totals == {} and by["g"].label_totals == {}
    assert by["s"].total == 4.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_minus_zero_bound_and_a_zero_bound_are_one_bucket(backend: str) -> None:
    """Whichever is written first, "-0" and "0" are one bucket reported as 0.0; "+Inf",
    NaN and unparsable bounds are no bucket; the sums follow the samples' order."""
    for first, second in (("-0", "0"), ("0", "-0"), ("-0.0", "-0")):
        text = (f'# TYPE h histogram\nh_bucket{{le="{first}",m="a"}} 0.5\n'
                f'h_bucket{{le="{second}",m="b"}} 0.25\nh_bucket{{le="0.5",m="a"}} 1\n'
                'h_bucket{le="+Inf",m="a"} 2\nh_bucket{le="NaN",m="a"} 3\n'
                'h_bucket{le="x",m="a"} 4\nh_count{m="a"} 2\n').encode()
        exp = parse_text(text, backend=backend)  # type: ignore[arg-type]
        got = {f.name: f for f in family_stats(exp.family_facts(MAX_LABEL_VALUES))}["h"].buckets
        assert [(math.copysign(1.0, b), b, s) for b, s in got] == [
            (1.0, 0.0, 0.75), (1.0, 0.5, 1.0)], (first, second)
        _check(exp)


def test_the_oracle_sees_a_difference() -> None:
    # Near miss: a changed value changes both; the comparison is not vacuous.
    a = oracle_family_stats(parse_text(EDGE))
    b = oracle_family_stats(parse_text(EDGE.replace(b"c_total{a=\"x\"} 1", b"c_total{a=\"x\"} 2")))
    assert msgspec.json.encode(a) != msgspec.json.encode(b)
