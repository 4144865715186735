"""Prometheus/OpenMetrics scrapes as evidence: per-family stats (what compat needs of a family:
presence, size, zero or not, totals, label sets) and the scrape's exporters."""

from __future__ import annotations

import math
import os
from typing import Any

import msgspec

from inferguard.evidence._capture import http_date
from inferguard.evidence._model import (
    Evidence,
    EvidenceKind,
    EvidenceSource,
    Problem,
    read_source,
    status_from,
)
from inferguard.prom._model import Exposition, MetricsSummary, parse_text

# A parsed exposition takes ~10-12x its size in memory: 32 MiB keeps a read < 512 MB
# (real /metrics answers are far smaller: vLLM's is ~100 KB, a fleet's few MB).
MAX_METRICS_BYTES = 32 << 20


MAX_LABEL_VALUES = 64


class LabelValues(msgspec.Struct, frozen=True):
    """The values one label takes in a family (at most 64 kept, all counted)."""

    distinct: int
    values: list[str]


class FamilyStats(msgspec.Struct, frozen=True, omit_defaults=True):
    """What compat needs of one family: presence, size, zero or not, totals, label sets.

    `total` sums counter and gauge samples, or histogram/summary `_count` samples;
    `_created` samples (timestamps) never count as data. `buckets` are a histogram's
    cumulative counts per finite `le`, summed over series (an outlier shows as the one
    observation above the rest); `label_totals` split a counter or gauge by the values of its
    only label (`retrieve_noops_total{reason}`) or of the only label whose value varies."""

    name: str
    type: str
    samples: int
    series: int
    nonzero_samples: int
    total: float
    labels: dict[str, LabelValues] = msgspec.field(default_factory=dict)
    buckets: list[tuple[float, float]] = msgspec.field(default_factory=list)
    label_totals: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)


class MetricsFacts(msgspec.Struct, frozen=True, tag="metrics", omit_defaults=True):
    """A Prometheus/OpenMetrics scrape: its summary, per-family stats, and who exported it.

    `scraped_at` (seconds since the epoch) is when the scrape was taken, when that is known:
    the answer's `date:` header (live), or the `date:` line of a `<name>.headers` file saved
    beside a scrape file; None otherwise (rate windows then have no duration)."""

    summary: MetricsSummary
    service_instance_ids: list[str] = msgspec.field(default_factory=list)
    families: list[FamilyStats] = msgspec.field(default_factory=list)
    scraped_at: float | None = None

    def family(self, name: str) -> FamilyStats | None:
        return next((f for f in self.families if f.name == name), None)


def family_stats(exp: Exposition) -> list[FamilyStats]:
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
        if math.isfinite(bound):
            acc[bound] = acc.get(bound, 0.0) + s.value
    return sorted(acc.items())[:MAX_LABEL_VALUES]


def _label_totals(data: list[Any], labels: dict[str, set[str]]
                  ) -> dict[str, dict[str, float]]:
    """Totals per value of the one label a counter or gauge splits by: its only label, or the
    only one of several whose value varies (vLLM's `{engine, model_name, source}` splits by
    `source` when one engine and one model show); none otherwise."""
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


def read_metrics_bytes(data: bytes, source: EvidenceSource, kind: EvidenceKind,
                       scraped_at: float | None = None) -> Evidence:
    exp = parse_text(data, path=source.path or source.url or "<metrics>")
    summary = exp.summary()
    ids: set[str] = set()
    for name in ("target_info", "target"):
        if exp.family(name) is not None:
            ids |= exp.label_values(name, "service_instance_id")
    problems = [Problem(f"expected {p.expected}", line=p.line, column=p.column)
                for p in summary.problems]
    if summary.problem_count > len(problems):
        problems.append(Problem(f"{summary.problem_count - len(problems)} more problems"))
    status = status_from(problems, readable=summary.families > 0 or not problems)
    return Evidence(kind=kind, source=source, status=status,
                    facts=MetricsFacts(summary, sorted(ids), family_stats(exp), scraped_at),
                    problems=problems)


def read_metrics(path: str | os.PathLike[str], kind: EvidenceKind = "lmcache_metrics"
                 ) -> Evidence:
    data, source, problem = read_source(path, max_bytes=MAX_METRICS_BYTES)
    if data is None:
        assert problem is not None
        return Evidence(kind=kind, source=source, status="malformed", problems=[problem])
    return read_metrics_bytes(data, source, kind, headers_date(path))


def headers_date(path: str | os.PathLike[str]) -> float | None:
    """The `date:` of the response headers saved beside a scrape file (`x.headers` for
    `x.txt` or `x`), or None when there is no such file or line."""
    p = os.fspath(path)
    stem = p[:-4] if p.endswith(".txt") else p
    try:
        with open(stem + ".headers", "rb") as f:
            head = f.read(65536).decode("latin-1")
    except OSError:
        return None
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "date":
            return http_date(value.strip())
    return None


