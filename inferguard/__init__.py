"""InferGuard: tells, from evidence alone, whether LMCache is really running, in which mode,
and what its telemetry does and does not prove.

The flow, one layer per subpackage: bytes (`inferguard.lct`, `inferguard.prom`, C via
`inferguard._native`) → `inferguard.evidence` → `Packet` → `inferguard.judge` (`detect_mode`,
`compat`) → `inferguard.findings` (`diagnose`) → `inferguard.cli`. The names below are the
public API; everything else is reached through its subpackage.

Importing `inferguard` (or `inferguard.cli`) does no work: each public name is imported on
first access (module `__getattr__`), so a command pays only for the layers it uses.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from inferguard._version import __version__

if TYPE_CHECKING:  # what mypy and readers see; at run time `__getattr__` imports on demand
    from inferguard._native import native_available, native_backend
    from inferguard._packet import Packet, PacketSettings
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

# Where each public name lives (a suffix of "inferguard"): imported on first access, so
# `import inferguard.cli` stays light (tests/test_startup.py keeps it so).
_WHERE: dict[str, str] = {
    "FleetOptions": ".verdict",
    "FleetReport": ".verdict",
    "FleetRow": ".verdict",
    "judge_fleet": ".verdict",
    "export_parquet": ".lct",
    "query_dataset": ".lct",
    "Claim": ".verdict",
    "Claims": ".verdict",
    "CollectOptions": ".collect",
    "Comparison": ".verdict",
    "CompatReport": ".judge",
    "Diagnosis": ".findings",
    "Evidence": ".evidence",
    "EvidenceSource": ".evidence",
    "Exemplar": ".prom",
    "Exposition": ".prom",
    "Finding": ".findings",
    "MetricFamily": ".prom",
    "MetricsSummary": ".prom",
    "ModeDetection": ".judge",
    "Packet": "._packet",
    "PacketSettings": "._packet",
    "ParseProblem": ".prom",
    "Problem": ".evidence",
    "PromParseError": ".prom",
    "Rate": ".judge",
    "RateWindow": ".judge",
    "Sample": ".prom",
    "SeriesArray": ".prom",
    "TraceAnalysis": ".lct",
    "TraceColumns": ".lct",
    "TraceFile": ".lct",
    "TraceFinding": ".lct",
    "TraceFormatError": ".lct",
    "TraceHeader": ".lct",
    "TraceRecord": ".lct",
    "TraceStats": ".lct",
    "TraceStatsArrays": ".lct",
    "TraceStatsFinding": ".lct",
    "TraceSummary": ".lct",
    "Verdict": ".verdict",
    "analyze_trace": ".lct",
    "collect_and_judge": ".verdict",
    "collect_lmcache": ".collect",
    "compare_packet_dirs": ".verdict",
    "compare_packets": ".verdict",
    "compat": ".judge",
    "detect_mode": ".judge",
    "diagnose": ".findings",
    "diagnose_packet": ".verdict",
    "export_trace": ".lct",
    "judge_packet": ".verdict",
    "native_available": "._native",
    "native_backend": "._native",
    "normalize_name": ".prom",
    "otel_to_prometheus": ".prom",
    "packet_rates": ".judge",
    "parse_file": ".prom",
    "parse_text": ".prom",
    "read_evidence": ".evidence",
    "render_html": ".html",
    "stack_series": ".prom",
    "summarize_metrics": ".prom",
    "summarize_trace": ".lct",
    "trace_findings": ".lct",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it as a module attribute.

    Reprs and docs say `inferguard.X` (httpx's way): the private module path is not API.
    msgspec resolves a Struct's postponed annotations in the Struct's module, once, and keeps
    the result on the class: a decoder is built first so they resolve where they were
    written, then `__module__` is set.
    """
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'inferguard' has no attribute {name!r}")
    obj = getattr(_importlib.import_module("inferguard" + where), name)
    if getattr(obj, "__module__", "").startswith("inferguard."):
        import msgspec

        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            msgspec.json.Decoder(obj)
        obj.__module__ = "inferguard"
    globals()[name] = obj
    return obj


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
