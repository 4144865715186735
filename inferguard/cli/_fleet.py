"""`inferguard fleet` and `collect-lmcache --prometheus-url`: parse, call
`verdict._fleet`, print. No judgement here.

Exit codes as elsewhere: 0 done and no --fail-on condition holds; 1 a --fail-on condition
holds for some instance (`unjudged`: some instance could not be judged); 2 bad usage or the
Prometheus server could not list its targets.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

from inferguard.cli._common import (
    EXAMPLES,
    HelpFormatter,
    add_expect_mode,
    add_fail_on,
    add_html,
    add_json,
    emit_json,
    error,
    to_document,
)
from inferguard.cli._common import safe as safe_text
from inferguard.cli._compat import FAIL_CLASSES, failed_classes

if _TYPE_CHECKING:
    from inferguard.verdict._fleet import FleetOptions, FleetOutcome, FleetReport

FLEET_FAIL_CLASSES = (*FAIL_CLASSES, "unjudged")


def add_prometheus_args(p: argparse.ArgumentParser, *, collect: bool = False) -> None:
    """The Prometheus-source flags (shared by `fleet` and `collect-lmcache`)."""
    a = p.add_argument
    a("--prometheus-url", metavar="URL", required=not collect,
      help="a Prometheus HTTP API (or Thanos/Mimir/VictoriaMetrics), read-only GETs"
           + ("; builds one packet per instance under --output-dir" if collect else ""))
    a("--match", action="append", default=[], metavar="SELECTOR",
      help="series selector of LMCache targets, e.g. '{job=~\"lmcache.*\"}' (repeatable; "
           "none: every active target)")
    a("--engine-match", action="append", default=[], metavar="SELECTOR",
      help="series selector of engine (vLLM/SGLang) targets (repeatable)")
    a("--instance", metavar="NAME", help="only this instance (the group label's value)")
    a("--group-label", default="instance", metavar="LABEL",
      help="targets sharing this target label's value form one packet (default: instance)")
    a("--window", type=float, metavar="SECONDS",
      help="also the samples at the window's start (rates need both ends)")
    a("--at", type=float, metavar="UNIX_SECONDS", help="evaluate at this time (default: now)")
    if not collect:
        a("--concurrency", type=int, default=8, metavar="N",
          help="instances judged at once (default 8)")
        a("--http-timeout", type=float, default=5.0, metavar="SECONDS",
          help="seconds per request (default 5)")
        a("--instance-timeout", type=float, default=30.0, metavar="SECONDS",
          help="seconds per instance before its row says it was not judged (default 30)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fleet` to the top-level subcommands."""
    p = sub.add_parser(
        "fleet", help="judge every instance a Prometheus server knows",
        description="Judge every instance a Prometheus server (or anything speaking its HTTP "
                    "API) knows, each as one packet: one row per instance (mode, level, hit "
                    "rate over the window, worst finding) and a roll-up (instances per mode "
                    "and per finding code). Read-only GETs; bounded concurrency and timeouts; "
                    "an instance that cannot be judged is a row saying why (docs/fleet.md).",
        epilog=EXAMPLES + "  inferguard fleet --prometheus-url http://prom:9090\n"
               "  inferguard fleet --prometheus-url http://prom:9090 --match "
               "'{job=~\"lmcache.*\"}' --engine-match '{job=\"vllm\"}' --window 300 --json\n"
               "  inferguard fleet --prometheus-url http://prom:9090 --group-label node "
               "--fail-on error-finding --fail-on unjudged --parquet dataset/\n"
               "\nexit codes: 0 done, 1 a --fail-on condition holds for some instance, 2 bad "
               "usage or the server cannot list its targets\n",
        formatter_class=HelpFormatter)
    add_prometheus_args(p)
    add_expect_mode(p, "the mode every instance should use")
    add_fail_on(p, FLEET_FAIL_CLASSES, "exit 1 when this holds for some instance (repeatable): "
                + ", ".join(FLEET_FAIL_CLASSES))
    add_json(p, "print the fleet report as JSON (schema inferguard.fleet/1)")
    add_html(p, "also write the fleet report as one self-contained HTML page (its JSON "
                "embedded)")
    p.add_argument("--parquet", metavar="DIR",
                   help="also write the rows as a Parquet dataset, DIR/fleet/node=<instance>/ "
                        "(needs inferguard[fleet])")
    p.set_defaults(func=_fleet, heavy=True)


def options_from_args(args: argparse.Namespace) -> FleetOptions:
    from inferguard._packet import PacketSettings
    from inferguard.verdict._fleet import FleetOptions

    return FleetOptions(
        prometheus_url=args.prometheus_url, match=args.match, engine_match=args.engine_match,
        instance=args.instance, group_label=args.group_label, at=args.at,
        window_s=args.window, concurrency=getattr(args, "concurrency", 8),
        timeout=getattr(args, "http_timeout", 5.0),
        instance_timeout=getattr(args, "instance_timeout", 30.0),
        settings=PacketSettings(expected_mode=getattr(args, "expect_mode", None)))


def _when(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def render_fleet(r: FleetReport) -> str:
    """The human table: one row per instance, then the roll-up."""
    win = f"; window {r.window_s:g} s" if r.window_s else ""
    out = [f"fleet: {len(r.rows)} instances from {r.prometheus_url} at {_when(r.evaluated_at)}"
           + win]
    w = max([len("instance"), *(len(x.instance) for x in r.rows)])
    wm = max([len("mode"), *(len(x.mode or "-") for x in r.rows)])
    wl = max([len("level"), *(len(x.level or "-") for x in r.rows)])
    out.append(f"{'instance':<{w}}  {'mode':<{wm}}  {'level':<{wl}}  {'hit rate':>8}  "
               "worst finding")
    for x in r.rows:
        if not x.judged:
            out.append(f"{x.instance:<{w}}  {'-':<{wm}}  {'-':<{wl}}  {'-':>8}  "
                       f"not judged: {x.reason}")
            continue
        rate = "n/a" if x.hit_rate is None else f"{x.hit_rate:.1%}"
        worst = (f"{x.worst_severity.upper()} {x.worst_code}" if x.worst_code
                 and x.worst_severity else "none")
        line = (f"{x.instance:<{w}}  {x.mode or '-':<{wm}}  {x.level or '-':<{wl}}  "
                f"{rate:>8}  {worst}")
        if x.reason:
            line += f"  ({x.reason})"
        out.append(line)
        if x.hit_rate_window:
            out.append(f"{'':<{w}}  {x.hit_rate_name}: {x.hit_rate_window}")
        out += [f"{'':<{w}}  note: {n}" for n in x.notes]
    out.append("")
    out.append("by mode: " + (", ".join(f"{m}={n}" for m, n in r.by_mode.items()) or "none"))
    out.append("by finding (instances):" + ("" if r.by_finding else " none"))
    out += [f"  {c}: {n}" for c, n in r.by_finding.items()]
    out.append(f"not judged: {r.unjudged}")
    return "\n".join(safe_text(line) for line in out)


def fleet_failures(outcome: FleetOutcome, classes: list[str]) -> dict[str, list[str]]:
    """Per instance, the --fail-on classes that hold."""
    out: dict[str, list[str]] = {}
    for row in outcome.report.rows:
        held = ["unjudged"] if not row.judged and "unjudged" in classes else []
        v = outcome.verdicts.get(row.instance)
        if v is not None:
            held += failed_classes(v.report, v.diagnosis,
                                   [c for c in classes if c != "unjudged"])
        if held:
            out[row.instance] = held
    return out


def _fleet(args: argparse.Namespace) -> int:
    from inferguard.collect._prometheus import PromError
    from inferguard.verdict._fleet import judge_fleet, write_fleet_parquet

    try:
        outcome = judge_fleet(options_from_args(args))
    except (PromError, ValueError) as exc:
        return error(str(exc))
    if args.parquet:
        try:
            write_fleet_parquet(outcome.report, args.parquet)
        except (ImportError, OSError) as exc:
            return error(str(exc))
    if args.html:
        from inferguard.cli._report import write_page
        from inferguard.html import render_document_html

        page = render_document_html(outcome.report, title="InferGuard fleet",
                                    document=to_document(outcome.report))
        if write_page(args.html, page) != 0:
            return 2
    if args.json:
        emit_json(outcome.report)
    else:
        print(render_fleet(outcome.report))
    failed = fleet_failures(outcome, args.fail_on)
    if failed:
        print("inferguard: failing on: " + "; ".join(
            f"{safe_text(i)}: {', '.join(c)}" for i, c in failed.items()), file=sys.stderr)
        return 1
    return 0


def collect_from_prometheus(args: argparse.Namespace, others: list[str]) -> int:
    """`collect-lmcache --prometheus-url`: one packet per instance under --output-dir;
    `others` are the other evidence sources given (refused: never dropped silently)."""
    import msgspec

    from inferguard._packet import PacketSettings
    from inferguard.collect._prometheus import PromError
    from inferguard.verdict._fleet import collect_prometheus_packets

    if others:
        flags = ", ".join("--" + n.replace("_", "-") for n in others)
        return error(f"--prometheus-url builds one packet per instance from the API alone; it "
                     f"does not take {flags} (collect those into a packet of their own)")
    opts = msgspec.structs.replace(options_from_args(args), timeout=args.http_timeout,
                                   settings=PacketSettings(expected_mode=args.expect_mode,
                                                           l2_configured=args.l2_configured))
    try:
        written = collect_prometheus_packets(opts, args.output_dir, overwrite=args.force)
    except (PromError, ValueError, OSError) as exc:
        return error(str(exc))
    print(f"{len(written)} packets written under {safe_text(args.output_dir)}")
    for name, path, notes in written:
        print(f"  {safe_text(name)}: {safe_text(str(path))}")
        for n in notes:
            print(f"      note: {safe_text(n)}")
    return 0
