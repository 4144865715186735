"""InferGuard: tells, from evidence alone, whether LMCache is really running and what its
telemetry does and does not prove.

(`inferguard.trace_stats` is the trace analytics module; its `trace_stats()` function is not
re-exported here, so the name keeps meaning the module.)"""

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
from inferguard.trace_stats import (
    TraceAnalysis,
    TraceStats,
    TraceStatsArrays,
    TraceStatsFinding,
    analyze_trace,
    export_trace,
    trace_findings,
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
    "TraceAnalysis",
    "TraceColumns",
    "TraceFile",
    "TraceFinding",
    "TraceFormatError",
    "TraceHeader",
    "TraceRecord",
    "TraceStats",
    "TraceStatsArrays",
    "TraceStatsFinding",
    "TraceSummary",
    "__version__",
    "analyze_trace",
    "export_trace",
    "native_available",
    "native_backend",
    "normalize_name",
    "otel_to_prometheus",
    "parse_file",
    "parse_text",
    "stack_series",
    "summarize_metrics",
    "summarize_trace",
    "trace_findings",
]
