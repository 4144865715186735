"""Prometheus / OpenMetrics text: bytes → tokens (native C with a pure-Python twin) → a
columnar exposition with lookups, a numpy view and a summary.

Names load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferguard import _lazy

if TYPE_CHECKING:
    from inferguard.prom._brief import summarize_metrics
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

_WHERE: dict[str, str] = {
    "Exemplar": "._model",
    "Exposition": "._model",
    "MetricFamily": "._model",
    "MetricsSummary": "._model",
    "ParseProblem": "._model",
    "PromParseError": "._model",
    "Sample": "._model",
    "SeriesArray": "._model",
    "normalize_name": "._names",
    "otel_to_prometheus": "._names",
    "parse_file": "._model",
    "parse_text": "._model",
    "stack_series": "._model",
    "summarize_metrics": "._brief",
}


__getattr__, __dir__ = _lazy.exports(__name__, _WHERE, __all__)
