"""`inferguard report --packet DIR --html OUT.html`: re-judge a packet and write the verdict
as one self-contained HTML page (and/or print its JSON). Parses and writes only.

Exit codes: 0 written, 2 bad usage or unreadable packet / unwritable output.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import msgspec

from inferguard.evidence._logs import safe_text
from inferguard.html import render_html
from inferguard.verdict._verdict import diagnose_packet


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="the verdict of a packet as a self-contained HTML page")
    p.add_argument("--packet", required=True, metavar="DIR", help="packet directory")
    p.add_argument("--html", metavar="OUT.html", help="write the page here")
    p.add_argument("--json", action="store_true",
                   help="print the verdict JSON (the document the page embeds)")
    p.set_defaults(func=_report)


def _write(path: str, text: str) -> None:
    """Write atomically: a temp file beside the target, then rename over it."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".inferguard-", suffix=".html", dir=d)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_page(path: str, html: str) -> int:
    """Write a page (atomically) and say so on stderr: 0, or 2 with the reason."""
    try:
        _write(path, html)
    except OSError as exc:
        print(f"inferguard: error: cannot write {safe_text(path)}: "
              f"{safe_text(exc.strerror or str(exc))}", file=sys.stderr)
        return 2
    print(f"wrote {safe_text(path)}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    if not args.html and not args.json:
        print("inferguard: error: give --html OUT.html and/or --json", file=sys.stderr)
        return 2
    try:
        verdict = diagnose_packet(args.packet)
    except (OSError, ValueError) as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    if args.html and write_page(args.html, render_html(verdict)) != 0:
        return 2
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(verdict), indent=2).decode()
                         + "\n")
    return 0
