"""`.lct` trace recordings: bytes → frames → typed records, columnar scan, summary, key rows,
analytics and export (native C scan with a pure-Python twin giving identical results).

Names load on first access: `trace info` needs neither the analytics nor the exporter.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE: dict[str, str] = {
    "ExportFormat": "._export",
    "TraceAnalysis": "._stats",
    "TraceColumns": "._file",
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


def __getattr__(name: str) -> Any:
    """Import a name of `__all__` on first use (so one private module costs only itself)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    obj = getattr(_importlib.import_module("inferguard.lct" + where), name)
    globals()[name] = obj
    return obj


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
