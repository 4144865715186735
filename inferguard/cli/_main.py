"""The `inferguard` command: parses arguments, calls the library, prints. No logic here."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from inferguard._native import native_backend
from inferguard._version import __version__
from inferguard.cli import _trace as _cli_trace
from inferguard.cli._collect import add_collect_parser
from inferguard.cli._compat import add_compat_parsers
from inferguard.cli._fleet import add_fleet_parser
from inferguard.cli._query import add_query_parser
from inferguard.lct._file import TraceFormatError, TraceSummary, summarize_trace
from inferguard.prom._model import MetricsSummary, summarize_metrics

_LABEL = 28


def _row(label: str, value: object, indent: int = 2) -> str:
    return f"{' ' * indent}{label + ':':<{_LABEL}}{value}"


def render_trace_summary(s: TraceSummary) -> str:
    """Upstream `lmcache trace info` layout first, then what InferGuard adds."""
    h = s.header
    out = [f"Trace file: {s.path}",
           _row("level", h.level),
           _row("format_version", h.format_version),
           _row("trace_schema_version", h.trace_schema_version),
           _row("duration", f"{s.duration_s:.3f}s"),
           _row("sm_config_digest", h.sm_config_digest or "(none)")]
    out += [_row(k, h.level_meta[k]) for k in sorted(h.level_meta)]
    out.append(_row("total_records", s.total_records))
    if s.ops:
        out.append("  ops:")
        out += [f"    {o.qualname}: {o.count}" for o in s.ops]
    else:
        out.append("  ops: (none)")
    if s.events is not None:
        e = s.events
        out.append("  events:")
        out.append(_row("instances", len(e.instances), 4))
        out += [f"      {i.instance_id}: incarnations={i.incarnations} restarts={i.restarts}"
                for i in e.instances]
        out.append("    batches (type/tier/backend/shared):")
        out += [f"      {b.event_type}/{b.tier}/{b.backend or '-'}/{b.scope}: {b.count}"
                for b in e.batches]
        out.append("    entries:")
        out += [f"      {k}: {v}" for k, v in e.entries.items()]
        out.append(_row("store_bytes", e.store_bytes, 4))
        out.append(_row("entries_with_tokens", e.entries_with_tokens, 4))
        if e.lifecycle:
            out.append(_row("lifecycle", ", ".join(f"{k}={v}" for k, v in e.lifecycle.items()),
                            4))
    out.append("  inferguard:")
    out.append(_row("header_variant", h.variant, 4))
    out.append(_row("size_bytes", s.size_bytes, 4))
    if h.sm_config_digest_ok is not None:
        out.append(_row("config_digest_check", "ok" if h.sm_config_digest_ok else "MISMATCH", 4))
    out.append(_row("wall_start", _fmt(s.wall_start), 4))
    out.append(_row("wall_end", _fmt(s.wall_end), 4))
    rate = "-" if s.records_per_second is None else f"{s.records_per_second:.1f}"
    out.append(_row("records_per_second", rate, 4))
    out.append(_row("keys_total", s.keys_total, 4))
    if s.ops:
        out.append("    keys per op (total / max / per call):")
        out += [f"      {o.qualname}: {o.keys_total} / {o.keys_max} / {o.keys_per_call:.2f}"
                for o in s.ops]
    i = s.integrity
    out.append("    integrity: " + ("ok" if i.ok else "PROBLEMS"))
    out.append(_row("frames", i.frames, 6))
    out.append(_row("malformed_frames", i.malformed_frames, 6))
    out.append(_row("skipped_bytes", i.skipped_bytes, 6))
    out.append(_row("nan_timestamps", i.nan_timestamps, 6))
    out.append(_row("negative_t_mono", i.negative_t_mono, 6))
    out.append(_row("t_mono_decreases", i.t_mono_decreases, 6))
    for f in i.findings:
        out.append(f"      - {f.kind} at offset {f.offset}: {_safe(f.detail)}")
    if i.findings_omitted:
        out.append(f"      ... {i.findings_omitted} more findings (see --json)")
    out.append(_row("backend", s.backend, 4))
    return "\n".join(out)


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return repr(t)


def _safe(text: str) -> str:
    """Never echo control characters from input data to a terminal."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _print_summary(load: Callable[[str], Any], render: Callable[[Any], str],
                   args: argparse.Namespace, errors: tuple[type[Exception], ...]) -> int:
    """Summarise one file and print it as text or JSON; input errors exit 2."""
    try:
        summary = load(args.file)
    except errors as exc:
        print(f"inferguard: error: {_safe(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(summary), indent=2).decode())
        sys.stdout.write("\n")
    else:
        print(render(summary))
    return 0


def _trace_info(args: argparse.Namespace) -> int:
    return _print_summary(summarize_trace, render_trace_summary, args,
                          (TraceFormatError, OSError))


def render_metrics_summary(s: MetricsSummary) -> str:
    """Text form of `inferguard metrics summary`."""
    fmt = {"prometheus": "prometheus (text 0.0.4)", "openmetrics": "openmetrics (1.0)"}
    out = [f"Metrics file: {_safe(s.path)}",
           _row("format", fmt.get(s.format, s.format)),
           _row("size_bytes", s.size_bytes),
           _row("families", s.families),
           _row("series", s.series),
           _row("samples", s.samples),
           _row("backend", s.backend),
           "  families by type:"]
    out += [f"    {t}: {n}" for t, n in s.types.items()] or ["    (none)"]
    out.append("  lmcache families:" + ("" if s.lmcache else " (none)"))
    for flavour, names in s.lmcache.items():
        out.append(f"    {flavour} ({len(names)}):")
        out += [f"      {_safe(n)}" for n in names]
    out.append(f"  all-zero families ({len(s.all_zero)}):")
    out += [f"    {_safe(n)}" for n in s.all_zero]
    out.append(f"  families without samples ({len(s.no_samples)}):")
    out += [f"    {_safe(n)}" for n in s.no_samples]
    out.append("  families (type / series / samples):")
    width = max((len(f.name) for f in s.family_list), default=0)
    out += [f"    {_safe(f.name):<{width}}  {f.type:<14} {f.series:>7} {f.samples:>8}"
            + ("  all zero" if f.all_zero else "") for f in s.family_list]
    out.append(f"  problems: {s.problem_count or 'none'}")
    for p in s.problems:
        out.append(f"    {_safe(str(p))}")
        out.append(f"      | {_safe(p.text)}")
    if s.problem_count > len(s.problems):
        out.append(f"    ... {s.problem_count - len(s.problems)} more problems (see --json)")
    return "\n".join(out)


def _metrics_summary(args: argparse.Namespace) -> int:
    return _print_summary(summarize_metrics, render_metrics_summary, args, (OSError,))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="inferguard", description=__doc__)
    p.add_argument("--version", action="version",
                   version=f"inferguard {__version__} ({native_backend()} backend)")
    sub = p.add_subparsers(dest="command", required=True)
    trace = sub.add_parser("trace", help="LMCache MP trace recordings (.lct)")
    tsub = trace.add_subparsers(dest="trace_command", required=True)
    info = tsub.add_parser("info", help="summarise a .lct file (upstream `lmcache trace info`+)")
    info.add_argument("file", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=_trace_info)
    _cli_trace.register(tsub)  # trace stats, trace export
    metrics = sub.add_parser("metrics", help="Prometheus / OpenMetrics text (/metrics files)")
    msub = metrics.add_subparsers(dest="metrics_command", required=True)
    msum = msub.add_parser("summary", help="families by type, series, all-zero and LMCache "
                           "families, parse problems")
    msum.add_argument("file", metavar="FILE")
    msum.add_argument("--json", action="store_true", help="print the summary as JSON")
    msum.set_defaults(func=_metrics_summary)
    add_collect_parser(sub)
    add_compat_parsers(sub)
    add_fleet_parser(sub)
    add_query_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours; silence the flush at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
