"""Regenerate the code table of `docs/finding-codes.md` from `FINDING_CODES` and the rules.

`python -m inferguard.findings._docs [docs/finding-codes.md]` rewrites the table in place
(everything else in the page is kept); `tests/test_docs.py` checks the page matches. Each row
names the rule that emits the code (module and function), so a reader of a finding reaches
its rule in one hop.
"""

from __future__ import annotations

import sys
from pathlib import Path

from inferguard.findings._codes import FINDING_CODES
from inferguard.findings._diagnose import diagnose  # noqa: F401 - registers every rule
from inferguard.findings._registry import rule_of

HEADER = "| code | severity | what it means | next step | rule |"


def table_rows() -> list[str]:
    """One markdown row per code, in table order."""
    owner = rule_of()
    return [f"| `{code}` | {spec.severity} | {spec.title} | {spec.next_step} | "
            f"`{owner[code].name.removeprefix('inferguard.')}` |"
            for code, spec in FINDING_CODES.items()]


def rewrite(text: str) -> str:
    """The page with its code table replaced by the rows of `FINDING_CODES`."""
    lines = text.splitlines()
    start = lines.index(HEADER) + 2  # header and separator
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[:start] + table_rows() + lines[end:]) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "docs/finding-codes.md")
    path.write_text(rewrite(path.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
