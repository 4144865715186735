"""The docs that name contract items stay true to the code."""

from __future__ import annotations

from pathlib import Path

from inferguard.findings import FINDING_CODES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_finding_code_is_documented() -> None:
    text = (DOCS / "finding-codes.md").read_text()
    missing = [code for code in FINDING_CODES if f"`{code}`" not in text]
    assert missing == []


def test_exit_codes_documented() -> None:
    text = (DOCS / "compatibility.md").read_text()
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in text


def test_finding_code_table_is_generated_from_the_code() -> None:
    """`python -m inferguard.findings._docs` leaves docs/finding-codes.md unchanged."""
    from inferguard.findings._docs import rewrite

    text = (DOCS / "finding-codes.md").read_text()
    assert rewrite(text) == text
