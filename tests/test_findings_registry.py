"""The finding registry keeps the code table and the rules one-to-one, and refuses codes it
does not know instead of skipping them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import inferguard as ig
from inferguard.findings import FINDING_CODES, RULES, Finding, FindingCodeError, Rule, rule_of
from inferguard.findings._registry import check_registry, finding, run_rules

from .conftest import UPSTREAM


def _report() -> ig.CompatReport:
    packet = ig.Packet.from_files([
        ("log", UPSTREAM / "logs" / "mp_server.log"),
        ("lmcache_metrics", UPSTREAM / "metrics" / "mp-l1-storage-trace" / "metrics_after.txt")])
    return ig.compat(packet)


def test_every_code_has_exactly_one_rule() -> None:
    owners = rule_of()
    assert set(owners) == set(FINDING_CODES)
    declared = [c for r in RULES for c in r.emits]
    assert len(declared) == len(set(declared))
    check_registry()  # the shipped registry passes


def test_a_declared_code_missing_from_the_table_fails_registration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def ghost(r: ig.CompatReport) -> Iterator[Finding]:
        yield from ()

    monkeypatch.setattr("inferguard.findings._registry.RULES",
                        [*RULES, Rule(ghost, ("lmcache_not_a_code",))])
    with pytest.raises(FindingCodeError, match="lmcache_not_a_code"):
        check_registry()


def test_a_table_code_without_a_rule_fails_registration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inferguard.findings._registry.RULES",
                        [r for r in RULES if "lmcache_l2_stall" not in r.emits])
    with pytest.raises(FindingCodeError, match="lmcache_l2_stall"):
        check_registry()


def test_a_code_claimed_by_two_rules_fails_registration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = next(r for r in RULES if "lmcache_l2_stall" in r.emits)
    monkeypatch.setattr("inferguard.findings._registry.RULES", [*RULES, first])
    with pytest.raises(FindingCodeError, match="several rules"):
        check_registry()


def test_a_rule_emitting_an_undeclared_code_is_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def sneaky(r: ig.CompatReport) -> Iterator[Finding]:
        yield finding("lmcache_l2_stall", "not mine", "supported", [])

    monkeypatch.setattr("inferguard.findings._registry.RULES",
                        [Rule(sneaky, ("lmcache_l1_pressure",))])
    with pytest.raises(FindingCodeError, match="does not declare"):
        run_rules(_report())


def test_an_unknown_code_is_an_error_not_a_skip() -> None:
    with pytest.raises(FindingCodeError, match="not in FINDING_CODES"):
        finding("lmcache_no_such_code", "x", "supported", [])


def test_findings_carry_the_table_severity_and_next_step() -> None:
    d = ig.diagnose(_report())
    assert d.findings
    for f in d.findings:
        assert f.severity == FINDING_CODES[f.code].severity
        assert f.next_step == FINDING_CODES[f.code].next_step
    order = {"error": 0, "warning": 1, "info": 2}
    assert [order[f.severity] for f in d.findings] == sorted(order[f.severity]
                                                             for f in d.findings)
