"""`inferguard metrics summary` without numpy: the counts straight from the C tokeniser's
rows, and the choice between that road and the general one.

A summary needs, per family, only its samples, its zero samples and its distinct series;
the family rules decide per distinct name (`_rules.FamilyRules`). So for a well-formed
Prometheus 0.0.4 exposition on the native backend the counts come from prom_brief.c over
prom_scan()'s rows and the command never imports numpy (~0.09 s of a 0.25 s run). Anything
else (OpenMetrics, the pure-Python backend, and any exposition with a problem to report,
a TYPE line after its samples or a bucket without a numeric `le`) takes the general road,
`parse_text(...).summary()`; both roads give the same summary (tests/test_metrics_brief.py).
"""

from __future__ import annotations

import mmap
import os
import re

from inferguard._files import open_regular_fd
from inferguard._native import Backend, resolve_backend
from inferguard.prom import _tokens as pt
from inferguard.prom._rules import FamilyRules, bound_is_number, detect_format
from inferguard.prom._summary import MetricsSummary, assemble_summary


def summarize_metrics(path: str | os.PathLike[str], *, backend: Backend | None = None,
                      max_problems: int = 100) -> MetricsSummary:
    """Read a metrics file (a regular file only) and summarise it: what
    `inferguard metrics summary` prints. A file of 1 MiB or more is mapped, not read:
    its pages come from the page cache instead of being copied into fresh memory (on a
    10 MB scrape ~2,600 page faults fewer)."""
    shown = os.fspath(path)
    with os.fdopen(open_regular_fd(path), "rb") as f:
        if os.fstat(f.fileno()).st_size >= _MAP_MIN and resolve_backend(backend) == "native":
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                got = clean_summary(mapped, shown)
                if got is not None:
                    return got
                data = mapped[:]
            return _general(data, shown, "native", max_problems)  # declined: not again
        data = f.read()
    return summarize_text(data, path=shown, backend=backend, max_problems=max_problems)


_MAP_MIN = 1 << 20


def summarize_text(data: bytes, *, path: str = "<text>", backend: Backend | None = None,
                   max_problems: int = 100) -> MetricsSummary:
    """Summarise exposition text (format detected as `parse_text` does)."""
    chosen = resolve_backend(backend)
    if chosen == "native":
        got = clean_summary(data, path)
        if got is not None:
            return got
    return _general(data, path, chosen, max_problems)


def _general(data: bytes, path: str, backend: Backend, max_problems: int) -> MetricsSummary:
    """The general road: the whole numpy model, then its summary."""
    from inferguard.prom._model import parse_text

    return parse_text(data, path=path, backend=backend).summary(max_problems)


class _NotClean(Exception):
    """The exposition needs the general road (a problem to report, or a per-row rule)."""


class _CleanRules(FamilyRules):
    """The family rules where any problem ends the road without numpy."""

    def problem(self, line: int, byte_col: int, expected: str) -> None:
        raise _NotClean(expected)

    def error_row(self, row: int) -> None:
        raise _NotClean("a valid line")

    def next_sample(self, nid: int, after: int, eof: int) -> int | None:
        raise _NotClean("a TYPE or HELP line after its samples joined another family")


_META = re.compile(b"[" + re.escape(bytes([pt.K_HELP, pt.K_TYPE, pt.K_UNIT, pt.K_EOF,
                                            pt.K_ERROR])) + b"]")  # the rows the rules read


def clean_summary(data: bytes | mmap.mmap, path: str) -> MetricsSummary | None:
    """The summary of a well-formed Prometheus 0.0.4 exposition from prom_scan()'s rows
    and prom_brief.c (no numpy), or None where the general road must decide."""
    if detect_format(data) != "prometheus":
        return None
    from inferguard._native import _prom as native

    rows = native.tokenize_rows(data, False)
    if rows is None:
        return None
    rules = _CleanRules(rows, path, False)
    meta = [(m.start(), rows.kinds[m.start()]) for m in _META.finditer(rows.kinds)]
    try:
        resolved, _ = rules.walk(meta, rows.count)
    except _NotClean:  # a malformed line, a rule broken, or samples re-homed
        return None
    fam_of, role_of = rules.name_tables(resolved)
    le_id, q_id = (_index(rows.strs, b"le"), _index(rows.strs, b"quantile"))
    samples, zeros, series, bounds, kept, unbound = native.brief(
        rows, fam_of, role_of, le_id, q_id, len(rules.fams))
    if unbound or not all(bound_is_number(rows.strs[i]) for i in bounds):
        return None  # a bucket / quantile without a numeric bound: a problem to report
    rules.finish_types()
    fams = [(f.name, f.type or "", f.help or "", f.unit or "", f.first_line) for f in rules.fams]
    return assemble_summary(path, "prometheus", "native", len(data), fams, samples, zeros,
                            series, kept, (), 0)


def _index(strs: list[bytes], s: bytes) -> int:
    try:
        return strs.index(s)
    except ValueError:
        return -1
