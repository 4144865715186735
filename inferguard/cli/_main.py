"""The `inferguard` command: parses arguments, calls the library, prints. No logic here.

Subcommands register themselves: each module under `inferguard/cli/` offers a
`register(sub)` that adds its parsers to the top-level subparsers, and `COMMANDS` below lists
them, with the command names each adds, in `--help` order. A run imports only the module of
its command; `--help` imports them all. A new command is a new module plus one line in
`COMMANDS`.

Exit codes: 0 done, 1 a --fail-on condition holds, 2 bad usage or unreadable input,
130 interrupted (Ctrl-C). A closed output pipe (`| head`) ends quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any

from inferguard._native import native_backend
from inferguard._version import __version__
from inferguard.cli._common import (
    EXAMPLES,
    HelpFormatter,
    UsageError,
    add_json,
    backend_notice,
    emit_json,
    error,
)
from inferguard.cli._common import safe as _safe

if _TYPE_CHECKING:
    from inferguard.lct._file import TraceSummary
    from inferguard.prom._summary import MetricsSummary


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
        out.append(f"      - {f.kind} at offset {f.offset}: {f.detail}")
    if i.findings_omitted:
        out.append(f"      ... {i.findings_omitted} more findings (see --json)")
    out.append(_row("backend", s.backend, 4))
    return "\n".join(_safe(line) for line in out)  # escaped once, here


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    import datetime as _dt

    try:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return repr(t)


def _print_summary(load: Callable[[str], Any], render: Callable[[Any], str],
                   args: argparse.Namespace, errors: tuple[type[Exception], ...]) -> int:
    """Summarise one file (`-` = stdin, gzip read transparently) and print it as text or
    JSON; input errors exit 2. The summary names the file as the user wrote it."""
    from inferguard.evidence._source import InputError, local_input

    caught: tuple[type[Exception], ...] = (InputError, *errors)
    try:
        with local_input(args.file) as local:
            summary = load(local)
    except caught as exc:
        return error(str(exc))
    if local != args.file:
        import msgspec.structs

        summary = msgspec.structs.replace(summary, path=_shown(args.file))
    if args.json:
        emit_json(summary)
    else:
        print(render(summary))
    return 0


def _shown(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _trace_info(args: argparse.Namespace) -> int:
    from inferguard.lct._file import TraceFormatError, summarize_trace

    return _print_summary(summarize_trace, render_trace_summary, args,
                          (TraceFormatError, OSError))


def render_metrics_summary(s: MetricsSummary) -> str:
    """Text form of `inferguard metrics summary`."""
    fmt = {"prometheus": "prometheus (text 0.0.4)", "openmetrics": "openmetrics (1.0)"}
    out = [f"Metrics file: {s.path}",
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
        out += [f"      {n}" for n in names]
    out.append(f"  all-zero families ({len(s.all_zero)}):")
    out += [f"    {n}" for n in s.all_zero]
    out.append(f"  families without samples ({len(s.no_samples)}):")
    out += [f"    {n}" for n in s.no_samples]
    out.append("  families (type / series / samples):")
    width = max((len(f.name) for f in s.family_list), default=0)
    out += [f"    {f.name:<{width}}  {f.type:<14} {f.series:>7} {f.samples:>8}"
            + ("  all zero" if f.all_zero else "") for f in s.family_list]
    out.append(f"  problems: {s.problem_count or 'none'}")
    for p in s.problems:
        out.append(f"    {p!s}")
        out.append(f"      | {p.text}")
    if s.problem_count > len(s.problems):
        out.append(f"    ... {s.problem_count - len(s.problems)} more problems (see --json)")
    return "\n".join(_safe(line) for line in out)  # escaped once, here


def _text_metrics(path: str) -> MetricsSummary:
    """summarize_metrics, refusing binary content (a NUL byte) up front."""
    from inferguard.evidence._source import InputError, binary_offset
    from inferguard.prom._brief import summarize_metrics

    at = binary_offset(path)
    if at is not None:
        raise InputError(f"{_shown(path)}: binary content (NUL byte at offset {at}); expected "
                         "Prometheus or OpenMetrics text")
    return summarize_metrics(path)


def _metrics_summary(args: argparse.Namespace) -> int:
    return _print_summary(_text_metrics, render_metrics_summary, args, (OSError,))


_FILE_HELP = "the file to read; '-' reads standard input; gzip content is read transparently"


def _register_trace(sub: Any) -> None:
    """`inferguard trace info|stats|export`."""
    trace = sub.add_parser(
        "trace", help="LMCache MP trace recordings (.lct): summary, cache behaviour, export",
        description="Read LMCache MP trace recordings (.lct files written by `lmcache server "
                    "--trace-recording`).",
        epilog=EXAMPLES + "  inferguard trace info examples/lmcache-0.5.6-storage.lct\n"
               "  inferguard trace stats run.lct --json\n",
        formatter_class=HelpFormatter)
    tsub = trace.add_subparsers(dest="trace_command", required=True, metavar="COMMAND")
    info = tsub.add_parser(
        "info", help="summarise a .lct file (upstream `lmcache trace info`, plus integrity)",
        description="Summarise a .lct trace: upstream `lmcache trace info`'s fields, then "
                    "wall-clock bounds, records/s, keys per op and an integrity section.",
        epilog=EXAMPLES + "  inferguard trace info examples/lmcache-0.5.6-storage.lct\n"
               "  gzip -dc run.lct.gz | inferguard trace info - --json\n",
        formatter_class=HelpFormatter)
    info.add_argument("file", metavar="FILE", help=_FILE_HELP)
    add_json(info, "print the summary as JSON (schema inferguard.trace_summary/1)")
    info.set_defaults(func=_trace_info, heavy=True)
    from inferguard.cli import _trace

    _trace.register(tsub)  # trace stats, trace export


def _register_metrics(sub: Any) -> None:
    """`inferguard metrics summary`."""
    metrics = sub.add_parser(
        "metrics", help="Prometheus / OpenMetrics text (/metrics scrapes)",
        description="Read Prometheus text 0.0.4 or OpenMetrics 1.0 scrapes.",
        epilog=EXAMPLES + "  inferguard metrics summary scrape.txt\n"
               "  curl -s http://127.0.0.1:8000/metrics | inferguard metrics summary -\n",
        formatter_class=HelpFormatter)
    msub = metrics.add_subparsers(dest="metrics_command", required=True, metavar="COMMAND")
    msum = msub.add_parser(
        "summary", help="families by type, series, all-zero and LMCache families, problems",
        description="Summarise one scrape: families by type, series and samples, all-zero "
                    "families, LMCache-looking families, and every parse problem with its "
                    "line.",
        epilog=EXAMPLES + "  inferguard metrics summary scrape.txt\n"
               "  inferguard metrics summary scrape.txt.gz --json\n"
               "  curl -s http://127.0.0.1:8000/metrics | inferguard metrics summary -\n",
        formatter_class=HelpFormatter)
    msum.add_argument("file", metavar="FILE", help=_FILE_HELP)
    add_json(msum, "print the summary as JSON (schema inferguard.metrics_summary/1)")
    msum.set_defaults(func=_metrics_summary, heavy=True)


_Register = Callable[[Any], None]

COMMANDS: tuple[tuple[tuple[str, ...], Callable[[], _Register]], ...] = (
    (("trace",), lambda: _register_trace),
    (("metrics",), lambda: _register_metrics),
    (("collect-lmcache",), lambda: importlib.import_module("inferguard.cli._collect").register),
    (("lmcache-compat", "diagnose-bottleneck"),
     lambda: importlib.import_module("inferguard.cli._compat").register),
    (("report",), lambda: importlib.import_module("inferguard.cli._report").register),
    (("compare",), lambda: importlib.import_module("inferguard.cli._compare").register),
    (("watch",), lambda: importlib.import_module("inferguard.cli._watch").register),
    (("fleet",), lambda: importlib.import_module("inferguard.cli._fleet").register),
    (("query",), lambda: importlib.import_module("inferguard.cli._query").register),
)
"""Every subcommand family, in `--help` order: the top-level commands it adds, and how to
reach its `register(sub)` (importing its module then: a run imports only its own;
tests/test_cli_commands.py holds each entry to what it adds)."""


def version_text() -> str:
    """`inferguard --version`: the version, the active backend, the upstream releases the
    catalog was derived from."""
    from inferguard.judge._catalog import CATALOG_VERSIONS

    backend = native_backend()
    note = "" if backend == "native" else " (pure Python: slower; built without a C compiler?)"
    lines = [f"inferguard {__version__}", f"backend: {backend}{note}",
             "catalog derived from:"]
    lines += [f"  {name} {versions}" for name, versions in CATALOG_VERSIONS]
    return "\n".join(lines)


DESCRIPTION = ("Tell, from evidence alone, whether LMCache is really running under vLLM or "
               "SGLang, in which mode, and what its telemetry proves.")
EPILOG = (EXAMPLES
          + "  inferguard lmcache-compat --packet examples/vllm-lmcache-mp/packet\n"
          "  inferguard diagnose-bottleneck --packet examples/vllm-lmcache-mp/packet --json\n"
          "  inferguard collect-lmcache --output-dir pkt --lmcache-metrics-url "
          "http://127.0.0.1:8080/metrics --lmcache-log-file server.log\n"
          "  inferguard trace info examples/lmcache-0.5.6-storage.lct\n"
          "\nexit codes: 0 done, 1 a --fail-on condition holds, 2 bad usage or unreadable "
          "input, 130 interrupted\n")


class _Version(argparse.Action):
    """`--version`: computed when asked (it loads the C core and the catalog)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `only` a parser holding that one subcommand (what a run
    of it needs: building all of them is ~5 ms of argparse); when no command has that
    name, the whole parser, so the usage error lists every choice."""
    p = argparse.ArgumentParser(prog="inferguard", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action=_Version, nargs=0,
                   help="print the version, the backend and the upstream versions known")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target: Any = sub if only is None else _Only(sub, only)
    for names, reach in COMMANDS:
        if only is None or only in names:
            reach()(target)
    if only is not None and not target.found:
        return build_parser()
    return p


class _Only:
    """The top-level subparsers as a register() sees them, adding only the command named
    `name`; every other add_parser() gets a sink that accepts and drops its calls."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser],
                 name: str) -> None:
        self.sub, self.name, self.found = sub, name, False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name != self.name:
            return _SINK
        self.found = True
        return self.sub.add_parser(name, **kwargs)


class _Sink:
    """Swallows a parser's building calls (add_argument, set_defaults, subparsers, ...)."""

    def __getattr__(self, _name: str) -> Any:
        return self._call

    def _call(self, *_args: Any, **_kwargs: Any) -> _Sink:
        return self


_SINK = _Sink()


def _quiet_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the flush at exit stays silent."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def console() -> int:
    """The `inferguard` console script and `python -m inferguard`: `main()` with the young
    generation collected every 10,000 allocations instead of 700 (a command builds its
    objects once: 29 collections of a `lmcache-compat` run become 2; long-running
    commands, `watch` and `fleet`, still collect), then `gc.freeze()`, so the collections
    the interpreter runs while it exits skip every object the command left (10-15 ms of a
    0.13 s `lmcache-compat`; docs/performance.md). Exit handlers, flushing and finalizers
    run as usual; `main()` itself, called in-process, leaves the collector alone."""
    import gc

    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    code = main()
    gc.freeze()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's bundled OpenBLAS starts a thread per core as numpy loads: ~60 ms of every
    # command's start-up on a 2-core machine (docs/performance.md), and InferGuard does no
    # linear algebra. Only this process (the CLI) is changed, and a user's setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        try:
            given = list(sys.argv[1:] if argv is None else argv)
            first = given[0] if given and not given[0].startswith("-") else None
            args = build_parser(first).parse_args(given)
        except UsageError as exc:
            return error(str(exc))
        if getattr(args, "heavy", False):
            backend_notice()
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # `| head`: not an error of ours.
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        # Ctrl-C: no traceback; 128 + SIGINT as shells report it.
        with contextlib.suppress(OSError):
            sys.stderr.write("\n")
            sys.stderr.flush()
        return 130  # 128 + SIGINT (the signal module's import is ~0.5 ms)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
