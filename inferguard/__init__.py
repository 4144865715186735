"""InferGuard: tells, from evidence alone, whether LMCache is really running, in which mode,
and what its telemetry does and does not prove.

The flow, one layer per subpackage: bytes (`inferguard.lct`, `inferguard.prom`, C via
`inferguard._native`) → `inferguard.evidence` → `Packet` → `inferguard.judge` (`detect_mode`,
`compat`) → `inferguard.findings` (`diagnose`) → `inferguard.cli`. The names below are the
public API; everything else is reached through its subpackage.
"""

import msgspec as _msgspec

from inferguard._native import native_available, native_backend
from inferguard._packet import Packet, PacketSettings
from inferguard._version import __version__
from inferguard.collect import CollectOptions, collect_lmcache
from inferguard.evidence import Evidence, EvidenceSource, Problem, read_evidence
from inferguard.findings import Diagnosis, Finding, diagnose
from inferguard.html import render_html
from inferguard.judge import (
    CompatReport,
    ModeDetection,
    Rate,
    RateWindow,
    compat,
    detect_mode,
    packet_rates,
)
from inferguard.lct import (
    TraceAnalysis,
    TraceColumns,
    TraceFile,
    TraceFinding,
    TraceFormatError,
    TraceHeader,
    TraceRecord,
    TraceStats,
    TraceStatsArrays,
    TraceStatsFinding,
    TraceSummary,
    analyze_trace,
    export_parquet,
    export_trace,
    query_dataset,
    summarize_trace,
    trace_findings,
)
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
from inferguard.verdict import (
    Claim,
    Claims,
    Comparison,
    FleetOptions,
    FleetReport,
    FleetRow,
    Verdict,
    collect_and_judge,
    compare_packet_dirs,
    compare_packets,
    diagnose_packet,
    judge_fleet,
    judge_packet,
)

__all__ = [
    "Claim",
    "Claims",
    "CollectOptions",
    "Comparison",
    "CompatReport",
    "Diagnosis",
    "Evidence",
    "EvidenceSource",
    "Exemplar",
    "Exposition",
    "Finding",
    "FleetOptions",
    "FleetReport",
    "FleetRow",
    "MetricFamily",
    "MetricsSummary",
    "ModeDetection",
    "Packet",
    "PacketSettings",
    "ParseProblem",
    "Problem",
    "PromParseError",
    "Rate",
    "RateWindow",
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
    "Verdict",
    "__version__",
    "analyze_trace",
    "collect_and_judge",
    "collect_lmcache",
    "compare_packet_dirs",
    "compare_packets",
    "compat",
    "detect_mode",
    "diagnose",
    "diagnose_packet",
    "export_parquet",
    "export_trace",
    "judge_fleet",
    "judge_packet",
    "native_available",
    "native_backend",
    "normalize_name",
    "otel_to_prometheus",
    "packet_rates",
    "parse_file",
    "parse_text",
    "query_dataset",
    "read_evidence",
    "render_html",
    "stack_series",
    "summarize_metrics",
    "summarize_trace",
    "trace_findings",
]

# Reprs and docs say `inferguard.X` (httpx's way): the private module path is not API.
# msgspec resolves a Struct's postponed annotations in the Struct's module, once, and keeps
# the result on the class: building a decoder first resolves them where they were written.
for _name in __all__:
    _obj = globals()[_name]
    if not getattr(_obj, "__module__", "").startswith("inferguard."):
        continue
    if isinstance(_obj, type) and issubclass(_obj, _msgspec.Struct):
        _msgspec.json.Decoder(_obj)
    _obj.__module__ = "inferguard"
del _name, _obj
