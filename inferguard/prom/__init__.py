"""Prometheus / OpenMetrics text: bytes → tokens (native C with a pure-Python twin) → a
columnar exposition with lookups, a numpy view and a summary."""

from inferguard.prom._model import (
    Exemplar,
    Exposition,
    MetricFamily,
    MetricsSummary,
    ParseProblem,
    PromParseError,
    Sample,
    SeriesArray,
    parse_file,
    parse_text,
    stack_series,
    summarize_metrics,
)
from inferguard.prom._names import normalize_name, otel_to_prometheus

__all__ = [
    "Exemplar",
    "Exposition",
    "MetricFamily",
    "MetricsSummary",
    "ParseProblem",
    "PromParseError",
    "Sample",
    "SeriesArray",
    "normalize_name",
    "otel_to_prometheus",
    "parse_file",
    "parse_text",
    "stack_series",
    "summarize_metrics",
]
