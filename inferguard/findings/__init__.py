"""Findings: the one table of codes and the rules that emit them; `diagnose(report)`."""

from inferguard.findings._diagnose import FINDING_CODES, Diagnosis, Finding, diagnose

__all__ = ["FINDING_CODES", "Diagnosis", "Finding", "diagnose"]
