"""InferGuard: tells, from evidence alone, whether LMCache is really running and what its
telemetry does and does not prove."""

from inferguard._native import native_available, native_backend
from inferguard.prom import (
    Exemplar,
    Exposition,
    MetricFamily,
    MetricsSummary,
    ParseProblem,
    PromParseError,
    Sample,
    SeriesArray,
    normalize_name,
    otel_to_prometheus,
    parse_file,
    parse_text,
    stack_series,
    summarize_metrics,
)
from inferguard.trace import (
    TraceColumns,
    TraceFile,
    TraceFinding,
    TraceFormatError,
    TraceHeader,
    TraceRecord,
    TraceSummary,
    summarize_trace,
)

__version__ = "0.1.0"

__all__ = [
    "Exemplar",
    "Exposition",
    "MetricFamily",
    "MetricsSummary",
    "ParseProblem",
    "PromParseError",
    "Sample",
    "SeriesArray",
    "TraceColumns",
    "TraceFile",
    "TraceFinding",
    "TraceFormatError",
    "TraceHeader",
    "TraceRecord",
    "TraceSummary",
    "__version__",
    "native_available",
    "native_backend",
    "normalize_name",
    "otel_to_prometheus",
    "parse_file",
    "parse_text",
    "stack_series",
    "summarize_metrics",
    "summarize_trace",
]
