"""`diagnose(report)`: every registered rule over a compat report, findings sorted errors
first. Importing this module imports every rules module, so the registry is complete and
checked (`check_registry`) before the first diagnosis."""

from __future__ import annotations

from inferguard.findings import (  # noqa: F401 - importing registers the rules
    _rules_blend,
    _rules_controller,
    _rules_engine,
    _rules_engine_health,
    _rules_evidence,
    _rules_hits,
    _rules_mode,
    _rules_mp,
    _rules_trace,
)
from inferguard.findings._registry import Diagnosis, check_registry, run_rules
from inferguard.judge._report import CompatReport

check_registry()


def diagnose(report: CompatReport) -> Diagnosis:
    """Run every rule; findings sorted by severity (errors first), then code."""
    return Diagnosis(report.detected.mode, run_rules(report))
