"""`inferguard watch`: parse, run `verdict.Watcher`, print each round as it comes (or one
JSON line per round with --json). Ctrl-C ends the run cleanly: the rounds done so far are
summarised and, with --output-dir, already written as a packet.

Exit codes: 0 the run ended (rounds or duration reached, or Ctrl-C), 2 bad usage or the
packet directory cannot be written."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

from inferguard.cli._common import EXAMPLES, HelpFormatter, add_json, add_urls, to_document
from inferguard.cli._rates import rate_lines

if _TYPE_CHECKING:
    from inferguard.verdict._watch import WatchTick


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `watch` to the top-level subcommands."""
    p = sub.add_parser(
        "watch", help="poll live /metrics and health endpoints; rates over the last window "
                      "and status changes as they happen",
        description="Poll live LMCache and engine /metrics (and read-only health routes) "
                    "every --interval seconds for a bounded time or until Ctrl-C; print rates "
                    "over the last window and status changes as they happen; with --output-dir "
                    "keep every scrape as a packet to judge afterwards. Read-only.",
        epilog=EXAMPLES + "  inferguard watch \\\n"
               "      --lmcache-metrics-url http://127.0.0.1:8080/metrics \\\n"
               "      --engine-metrics-url http://127.0.0.1:8000/metrics --interval 5 --rounds 12\n"
               "  inferguard watch --lmcache-metrics-url http://127.0.0.1:8080/metrics \\\n"
               "      --output-dir run-pkt\n",
        formatter_class=HelpFormatter)

    add_urls(p, "--lmcache-metrics-url", "LMCache /metrics URL (MP server HTTP port or embedded)")
    add_urls(p, "--engine-metrics-url", "vLLM/SGLang /metrics URL")
    add_urls(p, "--engine-http-base-url", "vLLM base URL: GET /health and /version")
    add_urls(p, "--lmcache-http-base-url", "LMCache MP server HTTP base URL (allow-listed GETs)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between rounds")
    p.add_argument("--rounds", type=int, help="stop after this many rounds")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: --rounds, else 300)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, seconds")
    p.add_argument("--output-dir", metavar="DIR",
                   help="write every scrape into this packet directory after each round")
    add_json(p, "one JSON object per round")
    p.set_defaults(func=_watch)


def tick_lines(t: WatchTick) -> list[str]:
    """One round for people: endpoints, changes, last-window rates."""
    out = [f"round {t.round}:"]
    out += [f"  {s.endpoint} [{s.kind}] {'up' if s.up else 'DOWN'}"
            + (f" ({s.detail})" if s.detail else "") for s in t.endpoints]
    out += [f"  change: {c}" for c in t.changes]
    out += ["  " + line for line in rate_lines(t.rates)]
    return out


def _watch(args: argparse.Namespace) -> int:
    from inferguard.collect._watch import WatchEndpoints
    from inferguard.evidence._logs import safe_text
    from inferguard.verdict._watch import Watcher

    ep = WatchEndpoints(args.lmcache_metrics_url, args.engine_metrics_url,
                        args.engine_http_base_url, args.lmcache_http_base_url)
    duration = args.duration if args.duration is not None else (
        None if args.rounds is not None else 300.0)
    try:
        w = Watcher(ep, interval=args.interval, rounds=args.rounds, duration=duration,
                    timeout=args.timeout, packet_dir=args.output_dir)
    except ValueError as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    import msgspec.json

    interrupted = False
    try:
        for tick in w.run():
            if args.json:
                sys.stdout.write(msgspec.json.encode(to_document(tick)).decode() + "\n")
            else:
                print("\n".join(safe_text(line) for line in tick_lines(tick)))
            sys.stdout.flush()
    except KeyboardInterrupt:
        interrupted = True
    except OSError as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    if not args.json:
        print(("stopped (Ctrl-C); " if interrupted else "")
              + f"{len(w.taken)} answers kept over the run")
        print("\n".join(safe_text(line) for line in rate_lines(w.run_rates())))
        if w.written() is not None and w.taken:
            print(f"packet: {w.written()} (judge it with lmcache-compat --packet)")
    return 0
