"""Regenerate the code table of `docs/finding-codes.md` from `diagnose.FINDING_CODES`.

`python -m inferguard._finding_docs [docs/finding-codes.md]` rewrites the table in place
(everything else in the page is kept); `tests/test_docs.py` checks the page matches.
"""

from __future__ import annotations

import sys
from pathlib import Path

from inferguard.findings._diagnose import FINDING_CODES

HEADER = "| code | severity | what it means | next step |"


def table_rows() -> list[str]:
    """One markdown row per code, in table order."""
    return [f"| `{code}` | {spec.severity} | {spec.title} | {spec.next_step} |"
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
