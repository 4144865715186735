"""`.lct` trace recordings: bytes → frames → typed records, columnar scan, summary, key rows,
analytics and export (native C scan with a pure-Python twin giving identical results)."""

from inferguard.lct._export import (
    READY_QUERIES,
    ExportFormat,
    export_parquet,
    export_trace,
    query_dataset,
)
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
    "READY_QUERIES",
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
    "export_parquet",
    "export_trace",
    "iter_key_columns",
    "query_dataset",
    "summarize_trace",
    "trace_findings",
    "trace_stats",
]
