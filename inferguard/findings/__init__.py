"""Findings: the one table of codes (`FINDING_CODES`), the rules that emit them (one
`_rules_*` module per surface, each rule declaring its codes with `@rule(emits=...)`), and
`diagnose(report)`."""

from inferguard.findings._codes import FINDING_CODES, CodeSpec, Severity
from inferguard.findings._diagnose import diagnose
from inferguard.findings._registry import (
    RULES,
    Diagnosis,
    Finding,
    FindingCodeError,
    Rule,
    rule_of,
)

__all__ = ["FINDING_CODES", "RULES", "CodeSpec", "Diagnosis", "Finding", "FindingCodeError",
           "Rule", "Severity", "diagnose", "rule_of"]
