"""What `inferguard metrics summary` reports and what the metrics evidence keeps of a family,
and the summary's assembly from per-family counts (shared by `Exposition.summary` and the
road without numpy, `_brief`)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from inferguard.prom._names import lmcache_flavour
from inferguard.prom._rules import ParseProblem

SUMMARY_SCHEMA = "inferguard.metrics_summary/1"


class FamilyFacts(msgspec.Struct, frozen=True):
    """Per-family figures computed on the columns, without a Python object per sample
    (what the metrics evidence keeps of a family; `Exposition.family_facts` and, without
    numpy, `_brief.clean_facts`).

    `_created` samples never count. `total`: finite values of the counted samples (all of
    them, or the `_count` ones of a histogram / summary), summed exactly (`exact_sum`).
    `labels`: per label name (not `le` / `quantile`), how many distinct values and the
    first `keep` in sorted order. `buckets`: a histogram's finite `le` bounds and the sum
    of its finite `_bucket` values per bound, in ascending bound order. `label_totals`: a
    counter or gauge split by its only label, or by the only one of several whose value
    varies (at most `keep` values): the finite values summed per label value."""

    name: str
    type: str
    samples: int
    series: int
    nonzero_samples: int
    total: float
    labels: dict[str, tuple[int, list[str]]]
    buckets: list[tuple[float, float]]
    label_totals: dict[str, dict[str, float]]


_HISTOGRAM_TYPES = ("histogram", "gaugehistogram")
_COUNTED_TYPES = ("histogram", "gaugehistogram", "summary")


class FamilyBrief(msgspec.Struct, frozen=True):
    """A family without its samples, for summaries."""

    name: str
    type: str
    help: str
    unit: str
    samples: int
    series: int
    all_zero: bool
    lmcache: str | None = None


class MetricsSummary(msgspec.Struct, frozen=True):
    """What `inferguard metrics summary` reports about one exposition."""

    path: str
    format: str
    backend: str
    size_bytes: int
    families: int
    samples: int
    series: int
    types: dict[str, int]
    family_list: list[FamilyBrief]
    all_zero: list[str]
    no_samples: list[str]
    lmcache: dict[str, list[str]]
    problems: list[ParseProblem]
    problem_count: int
    schema: str = SUMMARY_SCHEMA


def assemble_summary(path: str, format: str, backend: str, size_bytes: int,
                     fams: Sequence[tuple[str, str, str, str, int]], samples: list[int],
                     zeros: list[int], series: list[int], n_samples: int,
                     problems: Sequence[ParseProblem], max_problems: int) -> MetricsSummary:
    """The summary from per-family (name, type, help, unit, line) and counts: families by
    type, all-zero and sample-less families, and the LMCache-looking families
    (`lmcache_mp_*`, `lmcache_blend_*`, `lmcache:*`, `lmcache_*`)."""
    briefs: list[FamilyBrief] = []
    types: dict[str, int] = {}
    lm: dict[str, list[str]] = {}
    for i, (name, typ, help_, unit, _line) in enumerate(fams):
        flavour = lmcache_flavour(name)
        briefs.append(FamilyBrief(name, typ, help_, unit, samples[i], series[i],
                                  bool(samples[i] and zeros[i] == samples[i]), flavour))
        types[typ] = types.get(typ, 0) + 1
        if flavour is not None:
            lm.setdefault(flavour, []).append(name)
    return MetricsSummary(
        path=path, format=format, backend=backend, size_bytes=size_bytes, families=len(fams),
        samples=n_samples, series=sum(series), types=dict(sorted(types.items())),
        family_list=briefs, all_zero=[b.name for b in briefs if b.all_zero],
        no_samples=[b.name for b in briefs if b.samples == 0], lmcache=lm,
        problems=list(problems[:max_problems]), problem_count=len(problems))
