"""Rules and what they emit: `@rule(emits=(...))`, `Finding`, `Diagnosis`, and the checks
that keep the code table and the rules in one-to-one agreement.

A rule is a function of the `CompatReport` that yields findings; it declares every code it
may emit. Registration (`check_registry`, run when `inferguard.findings` is imported) fails
when a table code has no rule, has two, or a rule declares a code the table lacks; at run
time a rule that yields a code it did not declare is an error (`FindingCodeError`), never a
silently skipped finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import msgspec

from inferguard.findings._codes import FINDING_CODES, Severity
from inferguard.judge._report import CompatReport

DIAGNOSIS_SCHEMA = "inferguard.diagnosis/1"
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


class FindingCodeError(LookupError):
    """A rule produced a code that is not in the table or not in its `emits`."""


class Finding(msgspec.Struct, frozen=True, omit_defaults=True):
    """One diagnosis: a stable code, its severity (from the table), the evidence level it
    rests on, what was seen, the next step, and the evidence references."""

    code: str
    severity: Severity
    level: str
    message: str
    next_step: str
    evidence: list[str] = msgspec.field(default_factory=list)


class Diagnosis(msgspec.Struct, frozen=True):
    """Every finding for one report, errors first."""

    mode: str
    findings: list[Finding]
    schema: str = DIAGNOSIS_SCHEMA

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def finding(self, code: str) -> Finding | None:
        """The first finding with this code, or None."""
        return next((f for f in self.findings if f.code == code), None)


RuleFn = Callable[[CompatReport], Iterator[Finding]]


class Rule(NamedTuple):
    """A registered rule: its function, the codes it declares, where it lives."""

    fn: RuleFn
    emits: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__name__}"


RULES: list[Rule] = []


def rule(*, emits: tuple[str, ...]) -> Callable[[RuleFn], RuleFn]:
    """Register a rule that may emit exactly the codes in `emits`."""
    def register(fn: RuleFn) -> RuleFn:
        RULES.append(Rule(fn, emits))
        return fn
    return register


def finding(code: str, message: str, level: str, evidence: list[str]) -> Finding:
    """A finding with the table's severity and next step for `code`."""
    try:
        spec = FINDING_CODES[code]
    except KeyError:
        raise FindingCodeError(f"finding code {code!r} is not in FINDING_CODES") from None
    return Finding(code, spec.severity, level, message, spec.next_step, evidence)


def rule_of() -> dict[str, Rule]:
    """code → the one rule that emits it."""
    return {code: r for r in RULES for code in r.emits}


def check_registry() -> None:
    """Every table code has exactly one rule; every declared code is in the table."""
    owners: dict[str, list[str]] = {}
    for r in RULES:
        for code in r.emits:
            owners.setdefault(code, []).append(r.name)
    unknown = sorted(set(owners) - set(FINDING_CODES))
    orphans = sorted(set(FINDING_CODES) - set(owners))
    twice = {c: names for c, names in owners.items() if len(names) > 1}
    if unknown or orphans or twice:
        raise FindingCodeError(f"finding registry out of step with FINDING_CODES: declared but "
                               f"not in the table {unknown}; in the table without a rule "
                               f"{orphans}; declared by several rules {twice}")


def run_rules(report: CompatReport) -> list[Finding]:
    """Every rule over the report; a code outside a rule's `emits` raises."""
    out: list[Finding] = []
    for r in RULES:
        for f in r.fn(report):
            if f.code not in r.emits:
                raise FindingCodeError(f"{r.name} emitted {f.code!r}, which it does not "
                                       f"declare (emits={r.emits})")
            out.append(f)
    out.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.code))
    return out
