"""`.lct` trace recordings: bytes → frames → typed records, columnar scan, summary, key rows,
analytics and export (native C scan with a pure-Python twin giving identical results).

Names load on first access: `trace info` needs neither the analytics nor the exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferguard import _lazy

if TYPE_CHECKING:
    from inferguard.lct._columns import TraceColumns
    from inferguard.lct._export import (
        ExportFormat,
        export_parquet,
        export_trace,
        query_dataset,
    )
    from inferguard.lct._file import (
        TraceFile,
        TraceFinding,
        TraceFormatError,
        TraceHeader,
        TraceRecord,
        TraceSummary,
        summarize_trace,
    )
    from inferguard.lct._queries import READY_QUERIES
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

_WHERE: dict[str, str] = {
    "READY_QUERIES": "._queries",
    "export_parquet": "._export",
    "query_dataset": "._export",
    "ExportFormat": "._export",
    "TraceAnalysis": "._stats",
    "TraceColumns": "._columns",
    "TraceFile": "._file",
    "TraceFinding": "._file",
    "TraceFormatError": "._file",
    "TraceHeader": "._file",
    "TraceRecord": "._file",
    "TraceStats": "._stats",
    "TraceStatsArrays": "._stats",
    "TraceStatsFinding": "._stats",
    "TraceSummary": "._file",
    "analyze_trace": "._stats",
    "export_trace": "._export",
    "iter_key_columns": "._stats",
    "summarize_trace": "._file",
    "trace_findings": "._stats",
    "trace_stats": "._stats",
}


__getattr__, __dir__ = _lazy.exports(__name__, _WHERE, __all__)
