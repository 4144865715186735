"""What every subcommand shares: path flags checked at parse time (a usage error names the flag
and the path, exit 2), the option groups several commands take (`add_*`: one definition each),
JSON output with stable keys, escaping, progress, the backend notice."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any, TextIO

from inferguard._modes import MODES
from inferguard._native import native_backend

if _TYPE_CHECKING:
    pass


EXAMPLES = "examples:\n"


def terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size().columns` gives it ($COLUMNS, else
    stdout's terminal, else 80), without importing shutil: argparse imports it for every
    formatter it makes, and its imports (zlib, bz2, lzma) are ~3 ms of each start-up."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """One-paragraph descriptions wrapped to the terminal; text laid out in lines (examples
    epilogs, --version) kept line for line."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None, **more: Any) -> None:
        # The width argparse would take from shutil; anything a later argparse adds (more)
        # passes through as given.
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width, **more)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class UsageError(Exception):
    """Bad usage found while parsing (deliberately not a ValueError: argparse would turn it into
    its multi-line usage message); main() prints it on one line and exits 2."""


def path_type(flag: str, kind: str = "file") -> Any:
    """An argparse `type=` that refuses a path that cannot be read as `kind` ("file", "dir",
    "either"); the path itself is kept as the user wrote it."""
    def check(value: str) -> str:
        from inferguard.evidence._source import input_problem

        if value == "-":
            raise UsageError(f"{flag} -: standard input is read only where one file is read "
                             "(trace info/stats/export, metrics summary); give a path")
        problem = input_problem(value, directory=kind == "dir", either=kind == "either")
        if problem is not None:
            raise UsageError(f"{flag} {safe(value)}: {problem}")
        return value

    check.__name__ = kind  # argparse names the type in its own messages
    return check


Parser = argparse.ArgumentParser


def add_paths(p: Parser, flag: str, help: str, kind: str = "file") -> None:
    """A repeatable input-path flag, checked at parse time (`path_type`)."""
    p.add_argument(flag, action="append", default=[], metavar="DIR" if kind == "dir" else "PATH",
                   type=path_type(flag, kind), help=help + " (repeatable)")


def add_urls(p: Parser, flag: str, help: str) -> None:
    """A repeatable URL flag."""
    p.add_argument(flag, action="append", default=[], metavar="URL", help=help)


def add_packet(p: Parser, *, required: bool = False) -> None:
    """`--packet DIR`: a packet to judge, checked to be a readable directory at parse time."""
    p.add_argument("--packet", metavar="DIR", required=required,
                   type=path_type("--packet", "dir"),
                   help="a packet directory written by collect-lmcache")


def add_json(p: Parser, help: str) -> None:
    """`--json`: print the command's document instead of the text view."""
    p.add_argument("--json", action="store_true", help=help)


def add_html(p: Parser, help: str) -> None:
    """`--html OUT.html`: also write the document as one self-contained page."""
    p.add_argument("--html", metavar="OUT.html", help=help)


def add_fail_on(p: Parser, choices: tuple[str, ...], help: str,
                metavar: str | None = "CLASS") -> None:
    """`--fail-on CLASS` (repeatable): the conditions that make the exit code 1."""
    p.add_argument("--fail-on", action="append", default=[], choices=choices, metavar=metavar,
                   help=help)


def add_expect_mode(p: Parser, help: str) -> None:
    """`--expect-mode MODE`, one of the modes a packet can declare."""
    p.add_argument("--expect-mode", choices=MODES, metavar="MODE",
                   help=f"{help} ({', '.join(MODES)})")


def add_run_settings(p: Parser, *, expect_help: str, l2_help: str) -> None:
    """What the operator declares about the run when the evidence does not say it (the
    `PacketSettings` flags); `run_settings(args)` reads them back."""
    a = p.add_argument
    add_expect_mode(p, expect_help)
    a("--l2-configured", action="store_true", help=l2_help)
    a("--mp-prometheus-port", type=int, metavar="PORT",
      help="the MP server's --prometheus-port, when not in the evidence")
    a("--mp-event-bus-queue-size", type=int, metavar="N",
      help="the MP server's EventBus queue size, when not in the evidence")
    a("--mp-metrics-sample-rate", type=float, metavar="RATE",
      help="the MP server's --metrics-sample-rate (0..1), when not in the evidence")
    a("--mp-tracing-enabled", action="store_true",
      help="the MP server ran with OpenTelemetry tracing on")
    a("--mp-trace-recording-enabled", action="store_true",
      help="the MP server recorded a .lct trace")


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The `add_run_settings` flags the user gave, as `PacketSettings` fields (a flag not
    given is left out, so a base packet's value stands)."""
    return {k: v for k, v in {
        "expected_mode": args.expect_mode,
        "l2_configured": True if args.l2_configured else None,
        "mp_prometheus_port": args.mp_prometheus_port,
        "mp_event_bus_queue_size": args.mp_event_bus_queue_size,
        "mp_metrics_sample_rate": args.mp_metrics_sample_rate,
        "mp_tracing_enabled": True if args.mp_tracing_enabled else None,
        "mp_trace_recording_enabled": True if args.mp_trace_recording_enabled else None,
    }.items() if v is not None}


def safe(text: str) -> str:
    """Never echo control characters from input data to a terminal."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def error(message: str) -> int:
    """One line on stderr, exit code 2 (bad usage or unreadable input)."""
    print(f"inferguard: error: {safe(message)}", file=sys.stderr)
    return 2


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_document(obj: Any) -> Any:
    """Builtins for JSON with every field present: a Struct's zeros, falses, empty lists and
    Nones are written too (many Structs use `omit_defaults` to keep packets small), so a
    document's key set does not change from run to run. A tagged Struct keeps its tag."""
    import msgspec  # on first use: --help and usage errors do not pay its import

    struct, to_builtins = msgspec.Struct, msgspec.to_builtins

    def doc(obj: Any) -> Any:
        if type(obj) in _PLAIN:  # most leaves: as they are (what to_builtins returns)
            return obj
        if isinstance(obj, struct):
            cfg = obj.__struct_config__
            out: dict[str, Any] = {}
            if cfg.tag_field is not None:
                out[cfg.tag_field] = cfg.tag
            for name, enc in zip(obj.__struct_fields__, obj.__struct_encode_fields__,
                                 strict=True):
                out[enc] = doc(getattr(obj, name))
            return out
        if isinstance(obj, dict):
            return {k if isinstance(k, str) else to_builtins(k): doc(v)
                    for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set, frozenset)):
            return [doc(v) for v in obj]
        return to_builtins(obj)

    return doc(obj)


def emit_json(obj: Any) -> None:
    """A JSON document on stdout: stable keys, two-space indent, one trailing newline."""
    import msgspec.json

    text = msgspec.json.format(msgspec.json.encode(to_document(obj)), indent=2).decode()
    sys.stdout.write(text + "\n")


_NOTICE_SHOWN = False


def backend_notice() -> None:
    """Once per process, before heavy work on the pure-Python path: say that it is the slower
    path (10-20x on large inputs, docs/performance.md) and why, unless the user chose it
    (INFERGUARD_NO_NATIVE)."""
    global _NOTICE_SHOWN
    if _NOTICE_SHOWN or native_backend() == "native" or os.environ.get("INFERGUARD_NO_NATIVE"):
        return
    _NOTICE_SHOWN = True
    print("inferguard: note: the C core is not installed (built without a C compiler?); using "
          "the pure-Python path, 10-20x slower on large inputs (same results). Reinstall "
          "with a C compiler present for the native backend.", file=sys.stderr)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class Progress:
    """A one-line progress report on stderr (bytes done of total, rate, ETA), only when stderr
    is a terminal and the output is not JSON; called as progress(done, total)."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True,
                 min_interval: float = 0.1, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.t0 = time.monotonic()
        self.last = 0.0
        self.min_interval = min_interval
        self.label = label
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < self.min_interval and done < total:
            return
        self.last = now
        frac = min(done / total, 1.0) if total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        elapsed = max(now - self.t0, 1e-9)
        rate = done / elapsed
        eta = "-" if rate <= 0 or done >= total else f"{(total - done) / rate:.0f}s"
        self.stream.write(f"\r{self.label}[{bar}] {100 * frac:5.1f}%  {_size(done)}/"
                          f"{_size(total)}  {_size(rate)}/s  ETA {eta}\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
