"""`inferguard compare A B`: parse, call `verdict.compare_packet_dirs`, print a table or JSON.

Exit codes: 0 compared (and no --fail-on condition holds), 1 `--fail-on regression` and the
comparison lists a regression, 2 a packet directory cannot be read."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

from inferguard.cli._common import (
    EXAMPLES,
    HelpFormatter,
    add_fail_on,
    add_html,
    add_json,
    emit_json,
    path_type,
    to_document,
)

if _TYPE_CHECKING:
    from inferguard.verdict._compare import Comparison


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `compare` to the top-level subcommands."""
    p = sub.add_parser(
        "compare", help="what changed between two packets (rates, families, findings, mode, "
                        "TTFT)",
        description="Compare two packets (before/after a change, two nodes, two versions): "
                    "family status changes, hit rates with their windows, findings that "
                    "appeared or cleared, mode and settings, TTFT per quantile. Exit 1 with "
                    "--fail-on regression when B regressed.",
        epilog=EXAMPLES + "  inferguard compare before-pkt after-pkt\n"
               "  inferguard compare before-pkt after-pkt --json --fail-on regression\n"
               "  inferguard compare before-pkt after-pkt --html compare.html\n",
        formatter_class=HelpFormatter)
    p.add_argument("a", metavar="A", type=path_type("A", "dir"),
                   help="the baseline packet directory")
    p.add_argument("b", metavar="B", type=path_type("B", "dir"),
                   help="the packet judged against A")
    add_json(p, "print the comparison as JSON")
    add_html(p, "also write the comparison as one self-contained HTML page")
    add_fail_on(p, ("regression",), "exit 1 when B regressed against A", metavar=None)
    p.set_defaults(func=_compare)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1e3:.1f} ms"


def render_comparison(c: Comparison) -> str:
    """The human view: mode, rates (with windows), families, findings, settings, TTFT."""
    from inferguard.evidence._logs import safe_text

    out = [f"A: {c.a}", f"B: {c.b}", f"mode: {c.mode_a} → {c.mode_b}", ""]
    out.append(f"{'rate':<44} {'A':>7} {'B':>7} {'change':>8}  windows")
    for r in c.rates:
        ch = "" if r.change is None else f"{100 * r.change:+.1f}pt"
        wins = " | ".join(w.label if w is not None else "-" for w in (r.window_a, r.window_b))
        out.append(f"{r.name:<44} {_pct(r.a):>7} {_pct(r.b):>7} {ch:>8}  {wins}")
    if not c.rates:
        out.append("  (no rate on either side)")
    out.append("")
    shown = [f for f in c.families if "not_applicable" not in (f.a, f.b)]
    out.append("family status changes:" + ("" if shown else " none"))
    out += [f"  {f.name:<52} {f.a} → {f.b}" for f in shown]
    if len(shown) < len(c.families):
        out.append(f"  ({len(c.families) - len(shown)} more to or from not_applicable: the "
                   "judged surface differs; --json lists them)")
    out.append("findings appeared: " + (", ".join(c.findings_appeared) or "none"))
    out.append("findings cleared: " + (", ".join(c.findings_cleared) or "none"))
    out.append("mode/settings differences:" + ("" if c.settings else " none"))
    out += [f"  {s.name}: {s.a} → {s.b}" for s in c.settings]
    if c.ttft is not None:
        out.append("")
        out.append(f"TTFT ({c.ttft.family}; A {c.ttft.count_a:.0f} requests, "
                   f"B {c.ttft.count_b:.0f}):")
        for q in c.ttft.quantiles:
            ch = "" if q.change is None else f"{q.change * 1e3:+.1f} ms"
            out.append(f"  p{100 * q.quantile:g}: {_s(q.a)} → {_s(q.b)} {ch}".rstrip())
        out.append(f"  windows: {c.ttft.window_a} | {c.ttft.window_b}")
    out.append("")
    out.append("regressions:" + ("" if c.regressions else " none"))
    out += [f"  {r}" for r in c.regressions]
    return "\n".join(safe_text(line) for line in out)


def _compare(args: argparse.Namespace) -> int:
    from inferguard.cli._report import write_page
    from inferguard.evidence._logs import safe_text
    from inferguard.html import render_document_html
    from inferguard.verdict._compare import compare_packet_dirs

    try:
        c = compare_packet_dirs(args.a, args.b)
    except (OSError, ValueError) as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    if args.html and write_page(args.html, render_document_html(
            c, title=f"InferGuard compare: {c.a} → {c.b}", document=to_document(c))) != 0:
        return 2
    if args.json:
        emit_json(c)
    else:
        print(render_comparison(c))
    if "regression" in args.fail_on and c.regressions:
        print(f"inferguard: failing on: regression ({len(c.regressions)})", file=sys.stderr)
        return 1
    return 0
