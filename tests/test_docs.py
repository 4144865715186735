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


README = DOCS.parent / "README.md"
QUICK_START_MARK = "<!-- quick-start-output:"


def _quick_start() -> tuple[list[str], str]:
    """The quick start's commands and the output block shown under them."""
    text = README.read_text()
    section = text[text.index("## Quick start"):text.index("## What is here")]
    commands = section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    shown = section.split(QUICK_START_MARK, 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    return commands, shown


def test_readme_quick_start_judges_the_bundled_packet() -> None:
    """The first command installs and judges a real packet; the second is the test suite."""
    commands, _ = _quick_start()
    assert commands[0].startswith("pip install -e '.[test]' && inferguard lmcache-compat "
                                  "--packet examples/")
    assert commands[1] == "python -m pytest"
    packet = DOCS.parent / commands[0].rsplit(" ", 1)[1]
    assert (packet / "packet.json").is_file()


def test_readme_quick_start_output() -> None:
    """The output the README shows is what the command prints today (recomputed here, by the
    same CLI a user runs)."""
    import subprocess
    import sys

    commands, shown = _quick_start()
    argv = commands[0].split(" && ", 1)[1].split()[1:]
    proc = subprocess.run([sys.executable, "-m", "inferguard.cli", *argv], cwd=DOCS.parent,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown
