"""`inferguard collect-lmcache`: argument parsing and printing only (logic in collect.py)."""

from __future__ import annotations

import argparse

from inferguard.cli._common import (
    EXAMPLES,
    HelpFormatter,
    Progress,
    add_paths,
    add_run_settings,
    add_urls,
    error,
    path_type,
    run_settings,
)
from inferguard.cli._fleet import add_prometheus_args, collect_from_prometheus


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `collect-lmcache` to the top-level subcommands."""
    p = sub.add_parser(
        "collect-lmcache", help="build an evidence packet from files and live LMCache endpoints",
        description="Build an evidence packet (a directory lmcache-compat and "
                    "diagnose-bottleneck judge) from files, capture directories and live "
                    "endpoints. Read-only: state-changing HTTP routes are recorded as skipped, "
                    "never called. Give at least one source.",
        epilog=EXAMPLES + "  inferguard collect-lmcache --output-dir pkt \\\n"
               "      --lmcache-http-base-url http://127.0.0.1:8080 \\\n"
               "      --lmcache-metrics-url http://127.0.0.1:8080/metrics \\\n"
               "      --engine-metrics-url http://127.0.0.1:8000/metrics \\\n"
               "      --lmcache-log-file lmcache_server.log --launch-file launch.txt\n"
               "  inferguard lmcache-compat --packet pkt\n"
               "  inferguard collect-lmcache --output-dir fleet-pkts --prometheus-url "
               "http://prom:9090 --match '{job=~\"lmcache.*\"}' --window 300\n",
        formatter_class=HelpFormatter)
    a = p.add_argument
    a("--output-dir", required=True, metavar="DIR",
      help="packet directory to create (must not exist)")
    a("--force", action="store_true", help="replace an existing packet directory")
    a("--base-packet", metavar="DIR", type=path_type("--base-packet", "dir"),
      help="start from an earlier packet: carry its evidence and copies, add these inputs")
    add_paths(p, "--engine-metrics-file", "vLLM/SGLang /metrics text")
    add_paths(p, "--lmcache-metrics-file", "LMCache /metrics text")
    add_urls(p, "--engine-metrics-url", "scrape a live engine /metrics")
    add_urls(p, "--lmcache-metrics-url",
             "scrape a live LMCache /metrics (MP: on the HTTP API port)")
    a("--lmcache-http-base-url", metavar="URL", help="MP server HTTP API, e.g. http://127.0.0.1:8080")
    a("--lmcache-http-thread-name", action="append", default=[], metavar="NAME",
      help="also GET /threads?name=NAME (e.g. eviction, EventBus)")
    add_paths(p, "--lmcache-http-capture-dir", "captured GET_<route>.body/.headers files", "dir")
    a("--lmcache-controller-url", metavar="URL",
      help="lmcache_controller HTTP API (read-only GETs, /metrics included)")
    a("--lmcache-internal-api-url", metavar="URL",
      help="an engine's LMCache internal API server (read-only GETs, /metrics included)")
    add_paths(p, "--lmcache-controller-capture-dir",
              "captured controller GET_<route>.body/.headers", "dir")
    add_paths(p, "--lmcache-internal-api-capture-dir",
              "captured internal API GET_<route> answers", "dir")
    a("--engine-http-base-url", metavar="URL",
      help="vLLM OpenAI server, e.g. http://127.0.0.1:8000 (GET /health and /version only)")
    add_paths(p, "--engine-http-capture-dir", "captured vLLM GET_health / GET_version answers",
              "dir")
    add_paths(p, "--lmcache-log-file", "LMCache server log")
    add_paths(p, "--engine-log-file", "vLLM/SGLang log")
    add_paths(p, "--lmcache-trace-file", ".lct trace recording")
    add_paths(p, "--lmcache-otel-file", "OTLP JSON lines (spans)")
    add_paths(p, "--lmcache-lookup-hash-file", "lookup_hashes_*.jsonl file or directory", "either")
    add_paths(p, "--lmcache-replay-file", "trace replay output (JSON, JSONL, CSV, stdout)")
    add_paths(p, "--launch-file", "launch command lines / environment excerpt")
    add_run_settings(p, expect_help="the mode the run was meant to use",
                     l2_help="the run configured an MP L2 adapter")
    a("--http-timeout", type=float, default=5.0, metavar="SECONDS",
      help="seconds per HTTP request, the whole exchange: connect, headers and body "
           "(default 5)")
    a("--collect-timeout", type=float, default=120.0, metavar="SECONDS",
      help="seconds for all live requests together (default 120); what is left when it "
           "passes is recorded as not requested and the packet is still written")
    a("--include-raw-trace", action="store_true",
      help="copy .lct traces raw (raw chunk hashes included); default: a scrubbed copy "
           "whose chunk hashes are keyed fingerprints")
    a("--trace-fingerprint-key-file", metavar="PATH",
      help="key (16+ bytes) for the scrubbed traces' fingerprints, to make two packets "
           "joinable on purpose; default: a fresh random key per packet, never written")
    add_prometheus_args(p, collect=True)  # --prometheus-url: one packet per instance
    p.set_defaults(func=_collect, heavy=True)


_SOURCES = ("base_packet", "engine_metrics_file", "lmcache_metrics_file", "engine_metrics_url",
            "lmcache_metrics_url", "lmcache_http_base_url", "lmcache_http_capture_dir",
            "lmcache_controller_url", "lmcache_internal_api_url",
            "lmcache_controller_capture_dir", "lmcache_internal_api_capture_dir",
            "engine_http_base_url", "engine_http_capture_dir", "lmcache_log_file",
            "engine_log_file", "lmcache_trace_file", "lmcache_otel_file",
            "lmcache_lookup_hash_file", "lmcache_replay_file", "launch_file")
"""The arguments that bring evidence; a packet needs at least one."""


def _collect(args: argparse.Namespace) -> int:
    if args.prometheus_url:  # one packet per instance, from the API alone
        return collect_from_prometheus(args, [n for n in _SOURCES if getattr(args, n)])
    from inferguard._packet import PacketSettings
    from inferguard.collect import CollectOptions
    from inferguard.evidence._logs import safe_text
    from inferguard.verdict._verdict import collect_and_judge

    if not any(getattr(args, name) for name in _SOURCES):
        return error("collect-lmcache: no evidence source given (a file, capture directory, "
                     "URL, --prometheus-url or --base-packet); see "
                     "`inferguard collect-lmcache --help`")
    settings = PacketSettings(**run_settings(args),
                              http_thread_names=args.lmcache_http_thread_name)
    opts = CollectOptions(
        output_dir=args.output_dir, overwrite=args.force, base_packet=args.base_packet,
        engine_metrics_files=args.engine_metrics_file,
        lmcache_metrics_files=args.lmcache_metrics_file,
        engine_metrics_urls=args.engine_metrics_url, lmcache_metrics_urls=args.lmcache_metrics_url,
        lmcache_http_base_url=args.lmcache_http_base_url,
        lmcache_http_capture_dirs=args.lmcache_http_capture_dir,
        lmcache_http_thread_names=args.lmcache_http_thread_name,
        lmcache_controller_url=args.lmcache_controller_url,
        lmcache_internal_api_url=args.lmcache_internal_api_url,
        controller_capture_dirs=args.lmcache_controller_capture_dir,
        internal_api_capture_dirs=args.lmcache_internal_api_capture_dir,
        engine_http_base_url=args.engine_http_base_url,
        engine_http_capture_dirs=args.engine_http_capture_dir,
        lmcache_log_files=args.lmcache_log_file, engine_log_files=args.engine_log_file,
        lmcache_trace_files=args.lmcache_trace_file, lmcache_otel_files=args.lmcache_otel_file,
        lookup_hash_paths=args.lmcache_lookup_hash_file, replay_files=args.lmcache_replay_file,
        launch_files=args.launch_file, settings=settings, http_timeout=args.http_timeout,
        collect_timeout=args.collect_timeout, include_raw_trace=args.include_raw_trace,
        trace_fingerprint_key_file=args.trace_fingerprint_key_file)
    progress = Progress(label="copying inputs ")
    try:
        packet, path = collect_and_judge(opts, progress=progress)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        progress.close()
        return error(str(exc))
    progress.close()
    print(f"packet written: {path}")
    for ev in packet.evidence:
        where = ev.source.path or ev.source.url or "-"
        print(f"  {ev.kind:<16} {ev.status:<9} {safe_text(where)}")
        for prob in ev.problems[:3]:
            loc = f" (line {prob.line})" if prob.line else ""
            print(f"      - {safe_text(prob.message)}{loc}")
        if len(ev.problems) > 3:
            print(f"      - ... {len(ev.problems) - 3} more")
    return 0
