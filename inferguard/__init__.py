"""InferGuard: tells, from evidence alone, whether LMCache is really running and what its
telemetry does and does not prove."""

from inferguard._native import native_available, native_backend
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
    "summarize_trace",
]
