"""Prometheus/OpenMetrics scrapes as evidence: per-family stats (what compat needs of a family:
presence, size, zero or not, totals, label sets) and the scrape's exporters."""

from __future__ import annotations

import mmap
import os

import msgspec

from inferguard.evidence._capture import http_date
from inferguard.evidence._model import (
    Evidence,
    EvidenceKind,
    EvidenceSource,
    Problem,
    mapped_source,
    read_digesting,
    status_from,
)
from inferguard.prom._summary import FamilyFacts, MetricsSummary

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


def family_stats(facts: list[FamilyFacts]) -> list[FamilyStats]:
    """Per-family stats from the facts computed on the parse's columns
    (`Exposition.family_facts`, or `prom._brief.clean_facts` without numpy: no Python
    object per sample, so a 10 MB scrape costs milliseconds, not a second)."""
    return [FamilyStats(
        name=f.name, type=f.type, samples=f.samples, series=f.series,
        nonzero_samples=f.nonzero_samples, total=f.total,
        labels={k: LabelValues(n, v) for k, (n, v) in f.labels.items()},
        buckets=f.buckets, label_totals=f.label_totals)
        for f in facts]


def read_metrics_bytes(data: bytes | mmap.mmap, source: EvidenceSource, kind: EvidenceKind,
                       scraped_at: float | None = None) -> Evidence:
    """A scrape's bytes as metrics evidence. A well-formed Prometheus 0.0.4 scrape on the
    native backend takes the road without numpy (`prom._brief.clean_facts`); anything
    else, or anything with a problem to report, the columnar parse (the same facts)."""
    from inferguard.prom._brief import clean_facts

    path = source.path or source.url or "<metrics>"
    clean = clean_facts(data, path, MAX_LABEL_VALUES)
    if clean is not None:
        return Evidence(kind=kind, source=source, status=status_from([], readable=True),
                        facts=MetricsFacts(clean.summary, sorted(clean.service_instance_ids),
                                           family_stats(clean.families), scraped_at))
    return _read_parsed(data if isinstance(data, bytes) else data[:], path, source, kind,
                        scraped_at)


def _read_parsed(data: bytes, path: str, source: EvidenceSource, kind: EvidenceKind,
                 scraped_at: float | None) -> Evidence:
    from inferguard.prom._model import parse_text

    exp = parse_text(data, path=path)
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
                    facts=MetricsFacts(summary, sorted(ids),
                                       family_stats(exp.family_facts(MAX_LABEL_VALUES)),
                                       scraped_at),
                    problems=problems)


def read_metrics(path: str | os.PathLike[str], kind: EvidenceKind = "lmcache_metrics"
                 ) -> Evidence:
    with mapped_source(path, max_bytes=MAX_METRICS_BYTES, digest=False) as (data, source,
                                                                            problem):
        if data is None:
            assert problem is not None
            return Evidence(kind=kind, source=source, status="malformed", problems=[problem])
        return read_digesting(data, source, lambda: read_metrics_bytes(
            data, source, kind, headers_date(path)))


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


