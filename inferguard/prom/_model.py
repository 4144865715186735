"""Prometheus text 0.0.4 and OpenMetrics 1.0 expositions: parse, look up, compare.

Every InferGuard verdict starts from scraped `/metrics` text (vLLM, SGLang, LMCache). This
module turns it into an `Exposition`: families (name, type, help, unit) holding samples
(name, labels, value, timestamp, exemplar), every malformed line reported as a
`ParseProblem` with file, line, column and what was expected, and nothing silently dropped
(samples without a TYPE form `untyped`/`unknown` families).

The byte work (lines, labels, numbers) runs in C when built (`native/prom.c`) and in pure
Python otherwise, with identical results; see `inferguard._prom_tokens` for the grammar.
The model is kept columnar (numpy) so that large or many expositions are cheap to look up
and compare; `MetricFamily`/`Sample` objects are built only when asked for.

Family rules (both formats; Go's text parser groups the same way):

* metadata (`# HELP`/`# TYPE`/`# UNIT`) names the family; a sample joins the family of its
  exact name, else the family named by its name minus one suffix that the family's type
  allows (histogram `_bucket`/`_sum`/`_count`/`_created`, summary quantiles and
  `_sum`/`_count`/`_created`, OpenMetrics counter `_total`/`_created`, gaugehistogram
  `_bucket`/`_gsum`/`_gcount`, info `_info`), else a new `untyped` (0.0.4) or `unknown`
  (OpenMetrics) family of its own name. Families are keyed by name, not by position;
* a second HELP/TYPE/UNIT for a family, a TYPE (OpenMetrics: any metadata) after the
  family's samples, an unknown type, a histogram bucket without a numeric `le`, a summary
  quantile without a numeric `quantile`, an OpenMetrics sample named outside its type's
  suffixes (a counter's bare `x`): each is a problem, and that line is not used. A bad
  exemplar (repeated label, over 128 characters, not on a bucket or `_total`) is a problem
  and only the exemplar is dropped;
* 0.0.4 timestamps are milliseconds and are stored as seconds, like OpenMetrics ones;
* OpenMetrics: the text must end with `# EOF`; lines after it are a problem and unused.

Not checked here (they are facts for later rules, not syntax): bucket order and
monotonicity, `_count` equal to the `+Inf` bucket, negative counters, duplicate series.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from inferguard._files import open_regular_fd
from inferguard._native import Backend, resolve_backend
from inferguard.prom import _tokens as pt
from inferguard.prom._names import lmcache_flavour, names_match, normalize_name, otel_to_prometheus
from inferguard.prom._rules import (
    FamilyRules,
    Format,
    ParseProblem,
    PromParseError,
    _Fam,
    bound_is_number,
    bound_value,
    detect_format,
    unescape_text,
)
from inferguard.prom._summary import (
    _COUNTED_TYPES,
    _HISTOGRAM_TYPES,
    SUMMARY_SCHEMA,
    FamilyBrief,
    FamilyFacts,
    MetricsSummary,
    assemble_summary,
)

__all__ = [
    "SUMMARY_SCHEMA",
    "Exemplar",
    "Exposition",
    "FamilyBrief",
    "MetricFamily",
    "MetricsSummary",
    "ParseProblem",
    "PromParseError",
    "Sample",
    "SeriesArray",
    "detect_format",
    "lmcache_flavour",
    "names_match",
    "normalize_name",
    "otel_to_prometheus",
    "parse_file",
    "parse_text",
    "stack_series",
]

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]

_MAX_TEXT = 200


class Exemplar(msgspec.Struct, frozen=True, gc=False):
    """An OpenMetrics exemplar: labels, value and optional timestamp (seconds)."""

    labels: Labels
    value: float
    timestamp: float | None = None


class Sample(msgspec.Struct, frozen=True, gc=False):
    """One sample line: name as written, labels in written order (values unescaped),
    value, timestamp in seconds (0.0.4 milliseconds are converted), exemplar, line."""

    name: str
    labels: Labels
    value: float
    timestamp: float | None = None
    exemplar: Exemplar | None = None
    line: int = 0

    def label(self, name: str, default: str | None = None) -> str | None:
        """The value of label `name`, or `default`."""
        for k, v in self.labels:
            if k == name:
                return v
        return default


class MetricFamily(msgspec.Struct, frozen=True, gc=False):
    """A metric family: metadata plus its samples in file order."""

    name: str
    type: str
    help: str = ""
    unit: str = ""
    samples: tuple[Sample, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class SeriesArray:
    """The numpy view of an exposition: one entry per sample, in file order.

    `keys[i]` is `(name, labels sorted by label name)`; `index` maps a key to its entry (the
    last one if a series repeats). `timestamps` is NaN where a sample has none."""

    keys: tuple[SeriesKey, ...]
    values: npt.NDArray[np.float64]
    timestamps: npt.NDArray[np.float64]
    family: npt.NDArray[np.int32]
    index: dict[SeriesKey, int]


_SCALE = 2.0 ** 64


def exact_sum(values: npt.NDArray[np.float64], backend: str = "python") -> float:
    """The correctly rounded sum of finite `values` (math.fsum's), by fsum.c on the native
    backend. Where a partial sum leaves the float range (math.fsum raises OverflowError:
    two values near 1e308), the values are summed scaled by 2**-64 and the result scaled
    back, so a total past the range is +-inf instead of an abort; only then can values
    below ~1e-289 lose bits (the scaling makes them subnormal)."""
    if backend == "native":
        from inferguard._native._prom import FsumOverflow, fsum

        for scale in (1.0, _SCALE):  # the second pass only after an overflow
            try:
                got = fsum(values / scale if scale != 1.0 else values)
            except FsumOverflow:
                continue
            if got is None:
                break  # refused (not expected for finite values): math.fsum decides
            return got * scale
    try:
        return math.fsum(values.tolist())
    except OverflowError:
        return math.fsum((values / _SCALE).tolist()) * _SCALE




def _distinct_sequences(head: npt.NDArray[np.int64], first: npt.NDArray[np.int64],
                        count: npt.NDArray[np.int64], items: npt.NDArray[np.int64]) -> int:
    """How many distinct (head[i], items[first[i]:first[i] + count[i]]) there are (exact:
    rows of equal length form one matrix; its distinct rows are counted after a lexsort)."""
    n = 0
    for c in np.unique(count).tolist():
        rows = np.flatnonzero(count == c)
        key = np.column_stack([head[rows], items[first[rows][:, None] + np.arange(c)]])
        key = key[np.lexsort(key.T[::-1])]
        n += 1 + int(np.count_nonzero(np.any(key[1:] != key[:-1], axis=1)))
    return n


class Exposition:
    """A parsed exposition. Read-only: every accessor returns new immutable objects.

    Samples live in columns (`values`, `timestamps`, `family_index`, `lines`) in file order;
    `families` and `family()` build `MetricFamily` objects on demand."""

    __slots__ = (
        "_fam_names", "_fams", "_lab_name", "_lab_value", "_label_pairs", "_materialised",
        "_names", "_norm", "_order", "_pair_list", "_s_exemplar",
        "_s_lab_count", "_s_lab_first", "_s_name", "_str_ids", "_strs", "_strs_raw", "_zero",
        "backend", "family_index", "format", "lines", "path", "problems", "size_bytes",
        "timestamps", "values",
    )

    def __init__(self, *, path: str, format: Format, backend: Backend, size_bytes: int,
                 fams: list[_Fam], problems: tuple[ParseProblem, ...], names: list[str],
                 strs_raw: list[bytes], s_fam: npt.NDArray[np.int32],
                 s_name: npt.NDArray[np.int32], s_line: npt.NDArray[np.int64],
                 s_value: npt.NDArray[np.float64],
                 s_ts: npt.NDArray[np.float64], s_lab_first: npt.NDArray[np.int64],
                 s_lab_count: npt.NDArray[np.int64], lab_name: npt.NDArray[np.int32],
                 lab_value: npt.NDArray[np.int32], exemplars: dict[int, Exemplar]) -> None:
        self.path = path
        self.format = format
        self.backend = backend
        self.size_bytes = size_bytes
        self.problems = problems
        self._fams = tuple((f.name, f.type or "", f.help or "", f.unit or "", f.first_line)
                           for f in fams)
        self._fam_names = {f[0]: i for i, f in enumerate(self._fams)}
        self._names = names
        self._strs_raw = strs_raw
        self._strs: list[str | None] = [None] * len(strs_raw)
        self._str_ids: dict[bytes, int] | None = None
        self.family_index = s_fam
        self._s_name = s_name
        self.lines = s_line
        self.values = s_value
        self.timestamps = s_ts
        self._s_lab_first = s_lab_first
        self._s_lab_count = s_lab_count
        self._lab_name = lab_name
        self._lab_value = lab_value
        self._s_exemplar = exemplars
        self._pair_list: list[int] | None = None
        self._label_pairs = _PairCache(self._str)
        self._order: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None
        self._zero: tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]] | None = None
        self._norm: dict[str, list[int]] | None = None
        self._materialised: dict[int, MetricFamily] = {}
        for a in (s_fam, s_name, s_line, s_value, s_ts, s_lab_first, s_lab_count,
                  lab_name, lab_value):
            a.flags.writeable = False

    # -- basic facts
    def __len__(self) -> int:
        """Number of samples."""
        return len(self.values)

    def __repr__(self) -> str:
        return (f"Exposition({self.path!r}, {self.format}, {len(self._fams)} families, "
                f"{len(self)} samples, {len(self.problems)} problems)")

    @property
    def ok(self) -> bool:
        """No problems."""
        return not self.problems

    def family_names(self) -> tuple[str, ...]:
        """Family names in order of first appearance."""
        return tuple(f[0] for f in self._fams)

    @property
    def families(self) -> tuple[MetricFamily, ...]:
        """Every family with its samples (built on first use)."""
        return tuple(self._family_at(i) for i in range(len(self._fams)))

    def family(self, name: str) -> MetricFamily | None:
        """The family named exactly `name`, or None."""
        i = self._fam_names.get(name)
        return None if i is None else self._family_at(i)

    def find_all(self, name: str, unit: str | None = None) -> tuple[MetricFamily, ...]:
        """Families whose name matches `name` after normalisation (colons/dots to `_`, no
        `_total`). With `unit`, `name` is an OTel instrument name (`lmcache_mp.l1_write`,
        unit `chunks`) and is first mapped as the OTel Prometheus exporter maps it."""
        key = normalize_name(otel_to_prometheus(name, unit) if unit is not None else name)
        if self._norm is None:
            norm: dict[str, list[int]] = {}
            for i, f in enumerate(self._fams):
                norm.setdefault(normalize_name(f[0]), []).append(i)
            self._norm = norm
        return tuple(self._family_at(i) for i in self._norm.get(key, ()))

    def find(self, name: str, unit: str | None = None) -> MetricFamily | None:
        """The first family `find_all` returns, or None."""
        got = self.find_all(name, unit)
        return got[0] if got else None

    def family_type(self, name: str) -> str | None:
        """The type of family `name` without building its samples."""
        i = self._fam_names.get(name)
        return None if i is None else self._fams[i][1]

    # -- fast lookups on the columns
    def _rows_of(self, fi: int) -> npt.NDArray[np.intp]:
        if self._order is None:
            order = np.argsort(self.family_index, kind="stable")
            bounds = np.searchsorted(self.family_index[order], np.arange(len(self._fams) + 1))
            self._order = (order, bounds)
        order, bounds = self._order
        return order[bounds[fi]:bounds[fi + 1]]

    def _index(self, family: str) -> int:
        i = self._fam_names.get(family)
        if i is None:
            raise KeyError(family)
        return i

    def sample_count(self, family: str) -> int:
        """Number of samples of `family` (KeyError if there is no such family)."""
        return len(self._rows_of(self._index(family)))

    def _zeros(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        if self._zero is None:
            nf = len(self._fams)
            total = np.bincount(self.family_index, minlength=nf)
            zero = np.asarray(np.bincount(self.family_index, weights=(self.values == 0.0),
                                          minlength=nf), dtype=np.float64)
            self._zero = (total, zero)
        return self._zero

    def all_zero(self, family: str) -> bool:
        """True if `family` has samples and every value is 0 (NaN is not 0)."""
        total, zero = self._zeros()
        i = self._index(family)
        return bool(total[i] > 0 and zero[i] == total[i])

    def zero_families(self) -> tuple[str, ...]:
        """Families that have samples, all of them 0."""
        total, zero = self._zeros()
        return tuple(f[0] for i, f in enumerate(self._fams) if total[i] and zero[i] == total[i])

    def label_values(self, family: str | None, label: str) -> frozenset[str]:
        """Every value label `label` takes in `family` (e.g. `service_instance_id` in
        `target_info`), or in every family when `family` is None (e.g. every `cache_salt`)."""
        rows = (np.arange(len(self.values)) if family is None
                else self._rows_of(self._index(family)))
        lid = self._str_id(label)
        if lid is None or not len(rows):
            return frozenset()
        counts = self._s_lab_count[rows]
        entries = _ranges(self._s_lab_first[rows], counts)
        hit = entries[self._lab_name[entries] == lid]
        return frozenset(self._str(int(v)) for v in np.unique(self._lab_value[hit]))

    def bucket_counts(self, family: str) -> dict[Labels, tuple[tuple[float, float], ...]]:
        """Per series of a histogram (labels without `le`, sorted): (upper bound, cumulative
        count) pairs in ascending bound order."""
        fam = self._family_at(self._index(family))
        out: dict[Labels, list[tuple[float, float]]] = {}
        bucket = fam.name + "_bucket"
        for s in fam.samples:
            if s.name != bucket:
                continue
            le = s.label("le")
            bound = pt.parse_number(le.encode()) if le is not None else None
            if bound is None:
                continue
            key = tuple(sorted(p for p in s.labels if p[0] != "le"))
            out.setdefault(key, []).append((bound, s.value))
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def series_counts(self) -> npt.NDArray[np.intp]:
        """Distinct series (name + label set, in any label order) per family, by index.

        Columnar and exact: samples with the same number of labels form one matrix
        [family, name, sorted label pairs...], and its distinct rows are the series."""
        nf = len(self._fams)
        counts = self._s_lab_count
        pairs = (self._lab_name.astype(np.int64) << 32) | self._lab_value.astype(np.int64)
        if self.backend == "native":
            first_row = self._distinct_native(pairs, sort_items=True)
            return np.bincount(self.family_index[first_row], minlength=nf)
        fams: list[npt.NDArray[np.int64]] = [np.zeros(0, np.int64)]
        for c in np.unique(counts).tolist():
            rows = np.flatnonzero(counts == c)
            labels = np.sort(pairs[self._s_lab_first[rows][:, None] + np.arange(c)], axis=1)
            key = np.column_stack([self.family_index[rows].astype(np.int64),
                                   self._s_name[rows].astype(np.int64), labels])
            key = key[np.lexsort(key.T[::-1])]
            first = np.ones(len(key), np.bool_)
            first[1:] = np.any(key[1:] != key[:-1], axis=1)
            fams.append(key[first, 0])
        return np.bincount(np.concatenate(fams), minlength=nf)

    def _distinct_native(self, items: npt.NDArray[np.int64], sort_items: bool
                         ) -> npt.NDArray[np.bool_]:
        """The first sample of each distinct (family, name, label entries) key, by the C
        kernel (`_native._prom.distinct_rows`); `items` holds one value per label entry."""
        from inferguard._native._prom import distinct_rows

        head = (self.family_index.astype(np.int64) << 32) | self._s_name.astype(np.int64)
        return distinct_rows(head, self._s_lab_first, self._s_lab_count, items, sort_items)

    def family_facts(self, keep: int = 64) -> list[FamilyFacts]:
        """`FamilyFacts` of every family, in order, computed on the columns."""
        names = self._names
        created = np.array([n.endswith("_created") for n in names] or [False])
        is_count = np.array([n.endswith("_count") for n in names] or [False])
        is_bucket = np.array([n.endswith("_bucket") for n in names] or [False])
        canon = self._canonical_ids()
        # Native: distinct series of all families in one C pass (the label values by their
        # canonical ids, labels in written order, as `_distinct_sequences` compares them).
        # A `_created` sample never shares a key with another: its name differs.
        series_of: list[int] | None = None
        if self.backend == "native" and len(self.values):
            first_row = self._distinct_native(
                (self._lab_name.astype(np.int64) << 32) | canon[self._lab_value], False)
            first_row &= ~created[self._s_name]
            series_of = np.bincount(self.family_index[first_row],
                                    minlength=len(self._fams)).tolist()
        skip = [i for i in (self._str_id("le"), self._str_id("quantile")) if i is not None]
        le_id = self._str_id("le")
        # Label entries laid out sample after sample (as the parser writes them): then a
        # run of rows owns one run of entries, and both are read as slices, not gathers.
        lab_first, lab_count = self._s_lab_first, self._s_lab_count
        packed = not len(lab_first) or bool(
            lab_first[0] == 0 and np.array_equal(lab_first[1:], (lab_first + lab_count)[:-1]))
        out = []
        for fi, (name, typ, _help, _unit, _line) in enumerate(self._fams):
            found = self._rows_of(fi)
            kept = found[~created[self._s_name[found]]]
            n = len(kept)
            rows: slice | npt.NDArray[np.intp] = kept
            ent: slice | npt.NDArray[np.int64] | None = None
            if n and n == len(found) and int(kept[-1]) - int(kept[0]) + 1 == n:  # a run
                a, b = int(kept[0]), int(kept[-1]) + 1
                rows = slice(a, b)
                if packed:
                    ent = slice(int(lab_first[a]), int(lab_first[b - 1] + lab_count[b - 1]))
            cnt = lab_count[rows]
            if ent is None:
                ent = _ranges(lab_first[rows], cnt)
            nid = self._s_name[rows].astype(np.int64)
            vals = self.values[rows]
            finite = np.isfinite(vals)
            counted = is_count[nid] if typ in _COUNTED_TYPES else np.ones(n, np.bool_)
            total = exact_sum(vals[counted & finite], self.backend)
            nonzero = int(np.count_nonzero((vals != 0) & ~np.isnan(vals)))
            owner = np.repeat(np.arange(n), cnt)
            lname = self._lab_name[ent].astype(np.int64)
            lval = canon[self._lab_value[ent]]
            series = (0 if not n else series_of[fi] if series_of is not None
                      else _distinct_sequences(nid, np.cumsum(cnt) - cnt, cnt,
                                               (lname << 32) | lval))
            # Label values (le / quantile aside): distinct (name, value) pairs.
            keep_ent = np.ones(len(lname), np.bool_)
            for sid in skip:
                keep_ent &= lname != sid
            pairs = _distinct_pairs(lname[keep_ent], lval[keep_ent], len(self._strs_raw))
            labels: dict[str, list[str]] = {}
            label_id: dict[str, int] = {}
            # one run of pairs per label name (sorted): its name once, its values in order
            lids = pairs >> 32
            cuts = (np.flatnonzero(lids[1:] != lids[:-1]) + 1).tolist()
            value_ids = (pairs & 0xFFFFFFFF).tolist()
            text = self._str
            for a, b in zip([0, *cuts], [*cuts, len(value_ids)], strict=True):
                if a == b:
                    continue
                lid = int(lids[a])
                label = text(lid)
                label_id[label] = lid
                labels.setdefault(label, []).extend(map(text, value_ids[a:b]))
            buckets: list[tuple[float, float]] = []
            if typ in _HISTOGRAM_TYPES and le_id is not None:
                buckets = self._bucket_sums(is_bucket[nid] & finite, owner, lname, lval,
                                            le_id, vals, keep)
            totals: dict[str, dict[str, float]] = {}
            varying = [k for k, v in labels.items() if len(v) > 1]
            split = (next(iter(labels)) if len(labels) == 1
                     else varying[0] if len(varying) == 1 else None)
            if typ in ("counter", "gauge") and split is not None and len(labels[split]) <= keep:
                sums = self._first_label_sums(finite, owner, lname, lval, label_id[split], vals)
                totals = {split: dict(sorted(sums.items()))}
            out.append(FamilyFacts(
                name, typ, n, series, nonzero, total,
                {k: (len(v), sorted(v)[:keep]) for k, v in sorted(labels.items())},
                buckets, totals))
        return out

    def _first_entry(self, use: npt.NDArray[np.bool_], owner: npt.NDArray[np.intp],
                     lname: npt.NDArray[np.int64], label: int
                     ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(sample, entry) of the first `label` entry of each used sample that has one."""
        hit = np.flatnonzero((lname == label) & use[owner])
        who = owner[hit]  # non-decreasing: entries are grouped by sample, in row order
        first = np.ones(len(who), np.bool_)
        first[1:] = who[1:] != who[:-1]
        return who[first], hit[first]

    def _bucket_sums(self, use: npt.NDArray[np.bool_], owner: npt.NDArray[np.intp],
                     lname: npt.NDArray[np.int64], lval: npt.NDArray[np.int64], le: int,
                     vals: npt.NDArray[np.float64], keep: int) -> list[tuple[float, float]]:
        samples, entry = self._first_entry(use, owner, lname, le)
        ids, inv = _unique_ids(lval[entry], len(self._strs_raw))
        # The distinct bounds of the few distinct `le` strings, then each sample's bound
        # index through its string's (-1: not a finite bound); + 0.0: a "-0" bound and a
        # "0" bound are one bucket, reported as 0.0 whichever came first.
        bound_of = np.array([bound_value(self._str(i)) for i in ids.tolist()] or [0.0])
        ok_id = np.isfinite(bound_of[:len(ids)])
        bounds, where_id = np.unique(bound_of[:len(ids)][ok_id] + 0.0, return_inverse=True)
        slot = np.full(len(ids), -1, np.intp)
        slot[ok_id] = where_id.reshape(-1)
        where = slot[inv]
        ok = where >= 0
        sums = np.bincount(where[ok], weights=vals[samples[ok]], minlength=len(bounds))
        return list(zip(bounds[:keep].tolist(), sums[:keep].tolist(), strict=True))

    def _first_label_sums(self, use: npt.NDArray[np.bool_], owner: npt.NDArray[np.intp],
                          lname: npt.NDArray[np.int64], lval: npt.NDArray[np.int64],
                          label: int, vals: npt.NDArray[np.float64]) -> dict[str, float]:
        samples, entry = self._first_entry(use, owner, lname, label)
        ids, inv = _unique_ids(lval[entry], len(self._strs_raw))
        sums = np.bincount(inv.reshape(-1), weights=vals[samples], minlength=len(ids))
        return {self._str(i): s for i, s in zip(ids.tolist(), sums.tolist(), strict=True)}

    def _canonical_ids(self) -> npt.NDArray[np.int64]:
        """Per string id, the first id whose unescaped text is the same (two spellings of
        one label value are one value)."""
        first: dict[str, int] = {}
        return np.array([first.setdefault(self._str(i), i) for i in range(len(self._strs_raw))]
                        or [0], np.int64)

    def to_numpy(self) -> SeriesArray:
        """Values as a float64 array with a series index, for bulk comparison."""
        names, labels = self._names, self._labels
        keys = [(names[nid], tuple(sorted(labels(a, c)))) for nid, a, c in zip(
            self._s_name.tolist(), self._s_lab_first.tolist(), self._s_lab_count.tolist(),
            strict=True)]
        index = {k: i for i, k in enumerate(keys)}
        return SeriesArray(tuple(keys), self.values, self.timestamps, self.family_index, index)

    # -- internals
    def _str(self, i: int) -> str:
        s = self._strs[i]
        if s is None:
            s = self._strs[i] = unescape_text(self._strs_raw[i])
        return s

    def _str_id(self, text: str) -> int | None:
        if self._str_ids is None:
            self._str_ids = {b: i for i, b in enumerate(self._strs_raw)}
        return self._str_ids.get(text.encode())

    def _pairs(self) -> list[int]:
        """All label entries as ints (name id << 32 | value id)."""
        if self._pair_list is None:
            pairs = (self._lab_name.astype(np.int64) << 32) | self._lab_value.astype(np.int64)
            self._pair_list = pairs.tolist()
        return self._pair_list

    def _labels(self, first: int, count: int) -> Labels:
        """The labels of a sample, in written order, values unescaped."""
        return tuple(map(self._label_pairs.__getitem__, self._pairs()[first:first + count]))

    def _family_at(self, fi: int) -> MetricFamily:
        got = self._materialised.get(fi)
        if got is not None:
            return got
        name, typ, help_, unit, line = self._fams[fi]
        rows = self._rows_of(fi)
        names, ex = self._names, self._s_exemplar
        label = self._label_pairs.__getitem__
        # Only this family's label entries become Python ints (not the whole exposition's).
        lf, lc = self._s_lab_first[rows], self._s_lab_count[rows]
        ent = _ranges(lf, lc)
        pairs = ((self._lab_name[ent].astype(np.int64) << 32)
                 | self._lab_value[ent].astype(np.int64)).tolist()
        samples = []
        at = 0
        for r, nid, c, v, t, ln in zip(
                rows.tolist(), self._s_name[rows].tolist(), lc.tolist(),
                self.values[rows].tolist(), self.timestamps[rows].tolist(),
                self.lines[rows].tolist(), strict=True):
            samples.append(Sample(names[nid], tuple(map(label, pairs[at:at + c])), v,
                                  None if t != t else t, ex.get(r), ln))
            at += c
        fam = MetricFamily(name, typ, help_, unit, tuple(samples), line)
        self._materialised[fi] = fam
        return fam

    def summary(self, max_problems: int = 100) -> MetricsSummary:
        """What `inferguard metrics summary` reports (`_summary.assemble_summary`)."""
        total, zero = self._zeros()
        return assemble_summary(
            self.path, self.format, self.backend, self.size_bytes, self._fams,
            total.tolist(), zero.astype(np.int64).tolist(), self.series_counts().tolist(),
            len(self), self.problems, max_problems)


def _unique_ids(a: npt.NDArray[np.int64], size: int
                ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """np.unique(a, return_inverse=True) for ids in [0, size) (string ids), by a presence
    table instead of a sort: the sorted distinct ids and each element's index among them."""
    seen = np.zeros(size, np.bool_)
    seen[a] = True
    rank = np.cumsum(seen) - 1
    return np.flatnonzero(seen), rank[a]


def _distinct_pairs(lname: npt.NDArray[np.int64], lval: npt.NDArray[np.int64], size: int
                    ) -> npt.NDArray[np.int64]:
    """`_sorted_unique((lname << 32) | lval)` for string ids in [0, size), by a presence
    table over (rank of the label name, value) when that table is not much bigger than the
    input (a 300 k-entry sort was 9 ms of a 10 MB scrape's family facts); else the sort."""
    if not len(lname):
        return np.zeros(0, np.int64)
    names, rank = _unique_ids(lname, size)
    cells = len(names) * size
    if cells > max(4 * len(lname), 1 << 16):
        return _sorted_unique((lname << 32) | lval)
    seen = np.zeros(cells, np.bool_)
    seen[rank * size + lval] = True
    code = np.flatnonzero(seen)  # sorted by (name rank, value) = by (name, value)
    out: npt.NDArray[np.int64] = (names[code // size].astype(np.int64) << 32) | (code % size)
    return out


def _sorted_unique(a: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """np.unique of a 1-d int array by one sort (np.unique hashes first, and its masked-array
    check imports numpy.ma)."""
    a = np.sort(a)
    if len(a) < 2:
        return a
    keep = np.ones(len(a), np.bool_)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]




class _PairCache(dict[int, tuple[str, str]]):
    """(name id << 32 | value id) -> (name, value), decoded on first use."""

    def __init__(self, text: Callable[[int], str]) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, pair: int) -> tuple[str, str]:
        got = self[pair] = (self.text(pair >> 32), self.text(pair & 0xFFFFFFFF))
        return got


def _ranges(first: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenated aranges [first[i], first[i] + count[i])."""
    total = int(count.sum())
    if not total:
        return np.zeros(0, np.int64)
    ends = np.cumsum(count)
    shift = np.repeat(first - (ends - count), count)
    out: npt.NDArray[np.int64] = np.arange(total, dtype=np.int64) + shift
    return out


def stack_series(expositions: Sequence[Exposition]) -> tuple[
        tuple[SeriesKey, ...], npt.NDArray[np.float64]]:
    """Align many snapshots: the union of series keys (first-seen order) and a matrix
    [snapshot, series] of values, NaN where a snapshot lacks the series."""
    views = [e.to_numpy() for e in expositions]
    col: dict[SeriesKey, int] = {}
    for v in views:
        for k in v.index:
            col.setdefault(k, len(col))
    out = np.full((len(views), len(col)), np.nan)
    for i, v in enumerate(views):
        if v.index:
            cols = np.fromiter((col[k] for k in v.index), np.intp, len(v.index))
            out[i, cols] = v.values[np.fromiter(v.index.values(), np.intp, len(v.index))]
    return tuple(col), out


# ----------------------------------------------------------------------- parsing


def parse_text(data: bytes | bytearray | memoryview | str, *, path: str = "<text>",
               strict: bool = False, format: Format | Literal["auto"] = "auto",
               exemplars: bool = True, backend: Backend | None = None) -> Exposition:
    """Parse an exposition. Problems are collected (`Exposition.problems`) and parsing goes
    on; with `strict=True` the first problem raises `PromParseError` instead. `exemplars`
    False skips OpenMetrics exemplars (still syntax-checked). `backend` forces "native"
    or "python" (default: native when built, unless INFERGUARD_NO_NATIVE is set)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    chosen = resolve_backend(backend)
    fmt: Format = detect_format(raw) if format == "auto" else format
    if fmt not in ("prometheus", "openmetrics"):
        raise ValueError(f"unknown format {format!r}")
    tokens = pt.tokenize(raw, fmt == "openmetrics", chosen)
    exp = _Builder(raw, tokens, path, fmt, exemplars).build(chosen)
    if strict and exp.problems:
        raise PromParseError(exp.problems[0])
    return exp


def parse_file(path: str | os.PathLike[str], *, strict: bool = False,
               format: Format | Literal["auto"] = "auto", exemplars: bool = True,
               backend: Backend | None = None) -> Exposition:
    """Read and parse a metrics file (see parse_text); only a regular file (a device or a
    FIFO raises `NotRegularFile`, an OSError)."""
    with os.fdopen(open_regular_fd(path), "rb") as f:
        data = f.read()
    return parse_text(data, path=os.fspath(path), strict=strict, format=format,
                      exemplars=exemplars, backend=backend)


class _Builder(FamilyRules):
    """Tokens -> Exposition: the family rules (`_rules.FamilyRules`, shared by both
    backends) and the per-row work on the numpy columns."""

    def __init__(self, data: bytes, tok: pt.TokenStream, path: str, fmt: Format,
                 exemplars: bool) -> None:
        super().__init__(tok, path, fmt == "openmetrics")
        self.data = data
        self.tok: pt.TokenStream = tok
        self.fmt = fmt
        self.want_exemplars = exemplars
        self._newlines: npt.NDArray[np.intp] | None = None

    # -- problems
    def line_bytes(self, line: int) -> bytes:
        if self._newlines is None:
            self._newlines = np.flatnonzero(np.frombuffer(self.data, np.uint8) == 10)
        nl = self._newlines
        size = len(self.data)
        start = 0 if line <= 1 else (int(nl[line - 2]) + 1 if line - 2 < len(nl) else size)
        end = int(nl[line - 1]) if line - 1 < len(nl) else size
        raw = self.data[start:end]
        return raw[:-1] if raw.endswith(b"\r") else raw

    def problem(self, line: int, byte_col: int, expected: str) -> None:
        raw = self.line_bytes(line)
        col = len(raw[:max(byte_col - 1, 0)].decode("utf-8", "replace")) + 1
        text = raw.decode("utf-8", "replace")
        if len(text) > _MAX_TEXT:
            text = text[:_MAX_TEXT] + "..."
        self.problems.append(ParseProblem(self.path, line, col, expected, text))

    def error_row(self, row: int) -> None:
        tok = self.tok
        self.problem(int(tok.line[row]), int(tok.err_col[row]),
                     pt.E_MESSAGES.get(int(tok.err[row]), "a valid line"))

    def next_sample(self, nid: int, after: int, eof: int) -> int | None:
        tok = self.tok
        later = np.flatnonzero((tok.kind == pt.K_SAMPLE) & (tok.name == nid))
        later = later[(later > after) & (later < eof)]
        return int(later[0]) if len(later) else None

    # -- the whole build
    def build(self, backend: Backend) -> Exposition:
        tok = self.tok
        kind = tok.kind
        n = len(kind)
        is_sample = kind == pt.K_SAMPLE
        events_rows = np.flatnonzero((kind != pt.K_SAMPLE) & (kind != pt.K_COMMENT)
                                     & (kind != pt.K_BLANK))
        eof = n
        if self.om:
            eofs = np.flatnonzero(kind == pt.K_EOF)
            if len(eofs):
                eof = int(eofs[0])
                if eof + 1 < n:
                    self.problem(int(tok.line[eof + 1]), 1, "nothing after # EOF")
            else:
                self.problem(n + 1 if n else 1, 1, "'# EOF' as the last line (OpenMetrics)")
        meta = list(zip(events_rows.tolist(), kind[events_rows].tolist(), strict=True))
        resolved, switches = self.walk(meta, eof)
        return self.finish(backend, is_sample, eof, resolved, switches)

    def finish(self, backend: Backend, is_sample: npt.NDArray[np.bool_], eof: int,
               resolved: dict[int, tuple[int, str]],
               switches: list[tuple[int, int, int]]) -> Exposition:
        tok = self.tok
        n = len(tok.kind)
        fams_by_name, roles_by_name = self.name_tables(resolved)
        fam_of = np.array([*fams_by_name, -1], np.int32)  # last slot: name id -1
        role_of = np.array([*roles_by_name, 0], np.int8)  # 1 bucket, 2 quantile sample
        names = tok.name
        row_fam = np.where(is_sample, fam_of[names], -1).astype(np.int32)
        row_role = np.where(is_sample, role_of[names], 0).astype(np.int8)
        rows = np.arange(n)
        for nid, after, fi in switches:
            m = is_sample & (names == nid) & (rows > after)
            row_fam[m] = fi
            typ = self.fams[fi].type
            row_role[m] = 2 if typ == "summary" else 0
        if eof < n:
            row_fam[eof:] = -1
        keep = row_fam >= 0
        for nid, what in self.misnamed.items():
            for r in np.flatnonzero(keep & (names == nid)).tolist():
                self.problem(int(tok.line[r]), 1, what)
                keep[r] = False
        self.check_bound_labels(row_role, keep)
        idx = np.flatnonzero(keep)
        ts = tok.ts[idx]
        if not self.om:
            ts = ts / 1000.0
        exemplars = self.exemplars(idx, row_fam) if self.om and self.want_exemplars else {}
        self.finish_types()
        self.problems.sort(key=lambda p: (p.line, p.column))
        return Exposition(
            path=self.path, format=self.fmt, backend=backend, size_bytes=len(self.data),
            fams=self.fams, problems=tuple(self.problems), names=self.names,
            strs_raw=tok.strs, s_fam=row_fam[idx], s_name=tok.name[idx],
            s_line=tok.line[idx], s_value=tok.value[idx], s_ts=ts,
            s_lab_first=tok.lab_first[idx], s_lab_count=tok.lab_count[idx],
            lab_name=tok.lab_name, lab_value=tok.lab_value, exemplars=exemplars)

    def check_bound_labels(self, row_role: npt.NDArray[np.int8],
                           keep: npt.NDArray[np.bool_]) -> None:
        """Histogram buckets need a numeric `le`, summary quantiles a numeric `quantile`;
        rows lacking one are reported and dropped from `keep`."""
        tok = self.tok
        need = keep & (row_role > 0)
        if not need.any():
            return
        found = np.full(len(tok.kind), -1, np.int64)
        owner: npt.NDArray[np.intp] | None = None
        for role, lname in ((1, b"le"), (2, b"quantile")):
            if not (need & (row_role == role)).any():
                continue
            try:
                lid = tok.strs.index(lname)
            except ValueError:
                continue
            hit = np.flatnonzero(tok.lab_name == lid)
            if not len(hit):
                continue
            if owner is None:
                owner = np.repeat(np.arange(len(tok.kind)), tok.lab_count)
            rows = owner[hit]
            mine = row_role[rows] == role
            found[rows[mine]] = tok.lab_value[hit[mine]]
        got = found[need] + 1  # 0: no such label
        good = np.zeros(len(tok.strs) + 1, dtype=bool)
        for i in np.flatnonzero(np.bincount(got, minlength=len(good))).tolist():
            good[i] = i > 0 and bound_is_number(tok.strs[i - 1])
        check = np.flatnonzero(need)
        for r in check[~good[got]].tolist():
            what = ("an 'le' label holding a number" if row_role[r] == 1
                    else "a 'quantile' label holding a number")
            self.problem(int(tok.line[r]), 1, what)
            keep[r] = False

    def exemplars(self, idx: npt.NDArray[np.intp],
                  row_fam: npt.NDArray[np.int32]) -> dict[int, Exemplar]:
        tok = self.tok
        out: dict[int, Exemplar] = {}
        pos = np.flatnonzero(tok.aux_len[idx] > 0)
        for p in pos.tolist():
            r = int(idx[p])
            raw, col = tok.aux_at(r)
            line = int(tok.line[r])
            ex = _parse_exemplar(raw)
            fam = self.fams[int(row_fam[r])]
            sname = self.names[int(tok.name[r])]
            names = [k for k, _ in ex.labels]
            if len(set(names)) != len(names):
                self.problem(line, col, "exemplar label names without repeats")
            elif sum(len(k) + len(v) for k, v in ex.labels) > 128:
                self.problem(line, col, "exemplar labels of at most 128 characters")
            elif not ((fam.type in ("histogram", "gaugehistogram")
                       and sname == fam.name + "_bucket")
                      or (fam.type == "counter" and sname == fam.name + "_total")):
                self.problem(line, col, "an exemplar only on a histogram bucket or a "
                             "counter's _total sample")
            else:
                out[p] = ex
        return out


_EXEMPLAR_RE = re.compile(
    rb"\{((?:" + pt._LABEL + rb"(?:," + pt._LABEL + rb")*)?)\} ([^ ]+)(?: ([^ ]+))?")


def _parse_exemplar(raw: bytes) -> Exemplar:
    """`{labels} value [timestamp]`, already validated by the tokeniser."""
    m = _EXEMPLAR_RE.fullmatch(raw)
    if m is None:  # pragma: no cover - the tokeniser admitted it
        raise AssertionError(f"exemplar {raw!r} escaped the tokeniser")
    labels = tuple((unescape_text(k), unescape_text(v)) for k, v in pt._PAIRS.findall(m.group(1)))
    value = pt.parse_number(m.group(2), True)
    ts = pt.parse_number(m.group(3), False) if m.group(3) else None
    return Exemplar(labels, value if value is not None else float("nan"), ts)

