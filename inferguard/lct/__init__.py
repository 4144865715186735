"""`.lct` trace recordings: bytes → frames → typed records, columnar scan, summary, key rows,
analytics and export (native C scan with a pure-Python twin giving identical results)."""

from inferguard.lct._export import ExportFormat, export_trace
from inferguard.lct._file import (
    TraceColumns,
    TraceFile,
    TraceFinding,
    TraceFormatError,
    TraceHeader,
    TraceRecord,
    TraceSummary,
    summarize_trace,
)
from inferguard.lct._stats import (
    TraceAnalysis,
    TraceStats,
    TraceStatsArrays,
    TraceStatsFinding,
    analyze_trace,
    iter_key_columns,
    trace_findings,
    trace_stats,
)

__all__ = [
    "ExportFormat",
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
    "analyze_trace",
    "export_trace",
    "iter_key_columns",
    "summarize_trace",
    "trace_findings",
    "trace_stats",
]
