"""`inferguard report --packet DIR --html OUT.html`: re-judge a packet and write the verdict
as one self-contained HTML page (and/or print its JSON). Parses and writes only.

Exit codes: 0 written, 2 bad usage, an unreadable packet or an unwritable output.
"""

from __future__ import annotations

import argparse
import os
import sys

from inferguard.cli._common import (
    EXAMPLES,
    HelpFormatter,
    add_html,
    add_json,
    add_packet,
    emit_json,
    error,
    safe,
    to_document,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `report` to the top-level subcommands."""
    p = sub.add_parser(
        "report", help="the verdict of a packet as one self-contained HTML page",
        description="Re-judge a packet's evidence and write the verdict as one HTML file that "
                    "works offline and without JavaScript: the answer (is LMCache serving "
                    "hits, and how we know), hit rates, findings, groups and families, the "
                    "checklist, pictures of the trace, spans and scrapes, and the verdict JSON "
                    "embedded (docs/report.md).",
        epilog=EXAMPLES + "  inferguard report --packet examples/vllm-lmcache-mp/packet "
               "--html report.html\n"
               "  inferguard report --packet pkt --html report.html --json > verdict.json\n",
        formatter_class=HelpFormatter)
    add_packet(p, required=True)
    add_html(p, "write the page here (replaced whole: written beside it, then renamed)")
    add_json(p, "print the verdict as JSON (schema inferguard.verdict/1), the document the "
                "page embeds")
    p.set_defaults(func=_report, heavy=True)


def _write(path: str, text: str) -> None:
    """Write atomically: a temp file beside the target (the umask's mode), then rename."""
    d = os.path.dirname(os.path.abspath(path))
    import tempfile

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
        return error(f"cannot write {path}: {exc.strerror or exc}")
    print(f"wrote {safe(path)}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from inferguard.html import render_html
    from inferguard.verdict._verdict import diagnose_packet

    if not args.html and not args.json:
        return error("report: give --html OUT.html and/or --json")
    try:
        verdict = diagnose_packet(args.packet)
    except (OSError, ValueError) as exc:
        return error(str(exc))
    if args.html and write_page(args.html, render_html(verdict, document=to_document(verdict))
                                ) != 0:
        return 2
    if args.json:
        emit_json(verdict)
    return 0
