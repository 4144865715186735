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

import math
import mmap
import os
import re
from typing import TYPE_CHECKING, NamedTuple

from inferguard._files import open_regular_fd
from inferguard._native import Backend, resolve_backend
from inferguard._threads import beside
from inferguard.prom import _tokens as pt
from inferguard.prom._rules import (
    FamilyRules,
    bound_is_number,
    bound_value,
    detect_format,
    unescape_text,
)
from inferguard.prom._summary import (
    _COUNTED_TYPES,
    _HISTOGRAM_TYPES,
    FamilyFacts,
    MetricsSummary,
    assemble_summary,
)

if TYPE_CHECKING:
    from inferguard._native._protocols import TokenRows


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


class _Walked:
    """A well-formed 0.0.4 exposition after the family rules (`rules.fams`, types final),
    and prom_brief.c's per-family samples / zeros / series once taken."""

    def __init__(self, rows: TokenRows, rules: FamilyRules, fam_of: list[int],
                 role_of: list[int], le_id: int, q_id: int) -> None:
        self.rows, self.rules, self.fam_of, self.role_of = rows, rules, fam_of, role_of
        self.le_id, self.q_id = le_id, q_id
        self.samples: list[int] = []
        self.zeros: list[int] = []
        self.series: list[int] = []
        self.kept = 0

    def run_brief(self) -> tuple[list[int], list[int], list[int], list[int], int, int]:
        """prom_brief.c over the rows (reads only: it may run beside prom_facts.c)."""
        from inferguard._native import _prom as native

        return native.brief(self.rows, self.fam_of, self.role_of, self.le_id, self.q_id,
                            len(self.rules.fams))

    def take_brief(self, brief: tuple[list[int], list[int], list[int], list[int], int, int]
                   ) -> bool:
        """Keep prom_brief's counts; False where a bucket / quantile lacks a numeric bound
        (a problem to report: the general road)."""
        if brief[5] or not all(bound_is_number(self.rows.strs[i]) for i in brief[3]):
            return False
        self.samples, self.zeros, self.series, _, self.kept, _ = brief
        return True


def _rules_walk(data: bytes | mmap.mmap, path: str) -> _Walked | None:
    """prom_scan()'s rows and the family rules over a Prometheus 0.0.4 exposition, or None
    where the general road must decide (a problem or a per-row rule)."""
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
    rules.finish_types()
    return _Walked(rows, rules, fam_of, role_of, _index(rows.strs, b"le"),
                   _index(rows.strs, b"quantile"))


def _walk(data: bytes | mmap.mmap, path: str) -> _Walked | None:
    """The family rules and prom_brief.c, or None where the general road must decide."""
    w = _rules_walk(data, path)
    return w if w is not None and w.take_brief(w.run_brief()) else None


def _summary_of(w: _Walked, path: str, size: int) -> MetricsSummary:
    fams = [(f.name, f.type or "", f.help or "", f.unit or "", f.first_line)
            for f in w.rules.fams]
    return assemble_summary(path, "prometheus", "native", size, fams, w.samples, w.zeros,
                            w.series, w.kept, (), 0)


def clean_summary(data: bytes | mmap.mmap, path: str) -> MetricsSummary | None:
    """The summary of a well-formed Prometheus 0.0.4 exposition from prom_scan()'s rows
    and prom_brief.c (no numpy), or None where the general road must decide."""
    w = _walk(data, path)
    return None if w is None else _summary_of(w, path, len(data))


class CleanFacts(NamedTuple):
    """What the metrics evidence keeps of a scrape: its summary, each family's facts, and
    the values `service_instance_id` takes in `target_info` / `target`."""

    summary: MetricsSummary
    families: list[FamilyFacts]
    service_instance_ids: set[str]


_CREATED, _COUNT, _BUCKET = 1, 2, 4  # PROM_FACT_* name flags (native/inferguard_api.h)
_COUNTED, _HISTOGRAM, _SPLIT = 1, 2, 4  # PROM_FACT_* family flags


def clean_facts(data: bytes | mmap.mmap, path: str, keep: int) -> CleanFacts | None:
    """`Exposition.family_facts(keep)`, its summary and service instance ids for a
    well-formed Prometheus 0.0.4 exposition on the native backend, from prom_scan()'s rows
    and prom_facts.c (no numpy; tests/test_metrics_facts.py holds it to the numpy road), or
    None where the general road must decide."""
    if resolve_backend(None) != "native":
        return None
    w = _rules_walk(data, path)
    if w is None:
        return None
    from inferguard._native import _prom as native

    rows, fams = w.rows, w.rules.fams
    brief = beside(w.run_brief, "inferguard-brief")  # both kernels only read the rows
    try:
        types = [f.type or "" for f in fams]
        text = _Texts(rows.strs)
        name_flags = bytes((_CREATED if n.endswith(b"_created") else 0)
                           | (_COUNT if n.endswith(b"_count") else 0)
                           | (_BUCKET if n.endswith(b"_bucket") else 0) for n in rows.names)
        fam_flags = bytes((_COUNTED if t in _COUNTED_TYPES else 0)
                          | (_HISTOGRAM if t in _HISTOGRAM_TYPES else 0)
                          | (_SPLIT if t in ("counter", "gauge") else 0) for t in types)
        index = {f.name: i for i, f in enumerate(fams)}
        sid = (index.get("target_info", -1), index.get("target", -1),
               _index(rows.strs, b"service_instance_id"))
        raw = native.facts(rows, w.fam_of, name_flags, fam_flags, text.canon(),
                           (w.le_id, w.q_id), keep, sid)
    finally:
        counts = brief()
    if raw.declined or not w.take_brief(counts):
        return None
    buckets = _buckets(raw.buckets, text, len(fams), keep)
    if buckets is None:
        return None
    labels: list[dict[str, tuple[int, list[str]]]] = [{} for _ in fams]
    pf, pn, pv = raw.pairs
    i = 0
    while i < len(pf):  # one run per (family, label name): its values
        j = i + 1
        while j < len(pf) and pf[j] == pf[i] and pn[j] == pn[i]:
            j += 1
        labels[pf[i]][text(pn[i])] = (j - i, sorted(map(text, pv[i:j]))[:keep])
        i = j
    splits: list[dict[str, dict[str, float]]] = [
        {text(raw.split[fi]): {}} if raw.split[fi] >= 0 else {} for fi in range(len(fams))]
    for fi, value, total in zip(*raw.splits, strict=True):
        splits[fi][text(raw.split[fi])][text(value)] = total
    facts = [FamilyFacts(
        f.name, f.type or "", raw.samples[fi], raw.series[fi], raw.nonzero[fi],
        raw.total[fi], dict(sorted(labels[fi].items())), buckets[fi],
        {k: dict(sorted(v.items())) for k, v in splits[fi].items()})
        for fi, f in enumerate(fams)]
    return CleanFacts(_summary_of(w, path, len(data)), facts, {text(i) for i in raw.sid_ids})


class _Texts:
    """String id -> its text (unescaped, decoded once), and the canonical ids."""

    def __init__(self, strs: list[bytes]) -> None:
        self.strs = strs
        self.cache: dict[int, str] = {}

    def __call__(self, i: int) -> str:
        got = self.cache.get(i)
        if got is None:
            got = self.cache[i] = unescape_text(self.strs[i])
        return got

    def canon(self) -> list[int] | None:
        """Per id the first id of the same text (None: every text is its own spelling)."""
        if not any(b"\\" in s for s in self.strs):
            return None
        first: dict[str, int] = {}
        return [first.setdefault(self(i), i) for i in range(len(self.strs))]


def _buckets(found: tuple[list[int], list[int], list[float]], text: _Texts, n_fams: int,
             keep: int) -> list[list[tuple[float, float]]] | None:
    """Per family its finite bounds (ascending; -0 is 0) with their sums, the first `keep`,
    from prom_facts' (family, le value id, sum); None where two spellings of one bound
    ("1", "1.0") meet in a family: the numpy road adds them up in row order across both."""
    out: list[list[tuple[float, float]]] = [[] for _ in range(n_fams)]
    for fi, le, total in zip(*found, strict=True):
        bound = bound_value(text(le)) + 0.0
        if math.isfinite(bound):
            out[fi].append((bound, total))
    for fi, got in enumerate(out):
        if len({b for b, _ in got}) != len(got):
            return None
        got.sort()
        out[fi] = got[:keep]
    return out


def _index(strs: list[bytes], s: bytes) -> int:
    try:
        return strs.index(s)
    except ValueError:
        return -1
