"""The family rules of an exposition, over token rows (see `inferguard.prom._model`).

Which family a sample name joins, what HELP / TYPE / UNIT lines do, and what each broken
rule reports: decided once per distinct name and per metadata line, never per sample, so
both roads share it: the numpy build of an `Exposition` (`_model._Builder`) and the metrics
summary's road without numpy (`_summary`). The per-row work (each sample's family, the
bound labels) is the road's own.
"""

from __future__ import annotations

import heapq
import math
import mmap
import re
from typing import Any, Literal

import msgspec

from inferguard import _lazy
from inferguard.prom import _tokens as pt

Format = Literal["prometheus", "openmetrics"]

PROM_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
OM_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "stateset", "info", "summary",
            "unknown")
# Sample-name suffixes each family type owns ("" = the family name itself).
_PROM_SUFFIXES = {"counter": ("",), "gauge": ("",), "untyped": ("",),
                  "summary": ("", "_sum", "_count", "_created"),
                  "histogram": ("_bucket", "_sum", "_count", "_created")}
_OM_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "unknown": ("",),
                "stateset": ("",), "info": ("_info",),
                "summary": ("", "_sum", "_count", "_created"),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gaugehistogram": ("_bucket", "_gsum", "_gcount")}
_KNOWN_SUFFIXES = ("_total", "_created", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info")
_ESCAPE = _lazy.pattern(r"\\(.)", re.S)
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}
_UNIT_RE = _lazy.pattern(r"[a-zA-Z0-9_:]*")


class ParseProblem(msgspec.Struct, frozen=True):
    """One line (or part of one) not taken into the model: where, and what was expected.

    `column` counts characters from 1 on the line as decoded (bytes that are not UTF-8
    count one each); `text` is the line itself, cut at 200 characters."""

    path: str
    line: int
    column: int
    expected: str
    text: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: expected {self.expected}"


class PromParseError(ValueError):
    """Raised in strict mode for the first problem (in line order)."""

    def __init__(self, problem: ParseProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def bound_is_number(raw: bytes) -> bool:
    """A bucket `le` / summary `quantile` label value (raw, still escaped) holds a number:
    the rule both roads check before a bound-labelled sample is kept."""
    return pt.parse_number(_unescape_bytes(raw)) is not None


def bound_value(text: str) -> float:
    """A bucket bound's value as both roads sum by it: Python's float() of the unescaped
    text, NaN where that is no number."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def unescape_text(raw: bytes) -> str:
    """A raw (still escaped) label value or HELP text as its text: UTF-8 decoded, then
    `\\\\`, `\\"` and `\\n` unescaped (the one rule both roads read strings by)."""
    s = raw.decode("utf-8")
    return _ESCAPE.sub(lambda m: _UNESCAPE[m.group(1)], s) if "\\" in s else s


def _unescape_bytes(raw: bytes) -> bytes:
    return raw if b"\\" not in raw else unescape_text(raw).encode()


class _Fam(msgspec.Struct):
    name: str
    first_line: int
    type: str | None = None
    help: str | None = None
    unit: str | None = None
    has_samples: bool = False


class FamilyRules:
    """The family rules over a token stream (`TokenStream` or `TokenRows`: rows read by
    index). A road supplies `problem` (where a broken rule is reported), `error_row` (a
    malformed line) and `next_sample` (the next sample of a name after a row)."""

    def __init__(self, tok: Any, path: str, om: bool) -> None:
        self.tok = tok
        self.path = path
        self.om = om
        self.types = OM_TYPES if om else PROM_TYPES
        self.suffixes = _OM_SUFFIXES if om else _PROM_SUFFIXES
        self.problems: list[ParseProblem] = []
        self.misnamed: dict[int, str] = {}  # OpenMetrics: name id -> what was expected
        self.fams: list[_Fam] = []
        self.by_name: dict[str, int] = {}
        self.names = [b.decode("ascii") for b in tok.names]

    def problem(self, line: int, byte_col: int, expected: str) -> None:
        """Report a broken rule at (line, byte column)."""
        raise NotImplementedError

    def error_row(self, row: int) -> None:
        """Report the malformed line at `row`."""
        raise NotImplementedError

    def next_sample(self, nid: int, after: int, eof: int) -> int | None:
        """The first sample row named `nid` after row `after` and before `eof`, or None."""
        raise NotImplementedError

    # -- families
    def family(self, name: str, line: int) -> int:
        i = self.by_name.get(name)
        if i is None:
            i = self.by_name[name] = len(self.fams)
            self.fams.append(_Fam(name, line))
        return i

    def resolve(self, name: str, line: int) -> tuple[int, str]:
        """(family index, suffix) for the first sample named `name`."""
        i = self.by_name.get(name)
        if i is not None:
            return i, ""
        for suf in _KNOWN_SUFFIXES:
            if name.endswith(suf):
                j = self.by_name.get(name[:-len(suf)])
                if j is not None:
                    typ = self.fams[j].type
                    if typ is not None and suf in self.suffixes.get(typ, ()):
                        return j, suf
        return self.family(name, line), ""

    def check_sample_name(self, nid: int, fi: int, suffix: str) -> None:
        """OpenMetrics names every sample of a typed family with one of the type's
        suffixes (a counter `x` has `x_total` and `x_created`, never `x`)."""
        fam = self.fams[fi]
        if not self.om or suffix or fam.type is None:
            return
        allowed = self.suffixes.get(fam.type, ("",))
        if "" not in allowed:
            names = " or ".join(fam.name + s for s in allowed)
            self.misnamed[nid] = f"a sample named {names} in {fam.type} {fam.name} (OpenMetrics)"

    def meta(self, row: int, kind: int) -> None:
        tok = self.tok
        line = int(tok.line[row])
        name = self.names[int(tok.name[row])]
        raw, aux_col = tok.aux_at(row)
        if kind == pt.K_HELP:
            text = self.unescape_help(raw, line, aux_col)
            if text is None:
                return
            fam = self.fams[self.family(name, line)]
            if fam.help is not None:
                self.problem(line, 1, f"at most one HELP line for {name}")
            elif self.om and fam.has_samples:
                self.problem(line, 1, f"HELP for {name} before its samples (OpenMetrics)")
            else:
                fam.help = text
        elif kind == pt.K_TYPE:
            word = raw.decode("utf-8", "replace")
            if word not in self.types:
                self.problem(line, aux_col, "a metric type: one of " + ", ".join(self.types))
                return
            fam = self.fams[self.family(name, line)]
            if fam.type is not None:
                self.problem(line, 1, f"at most one TYPE line for {name}")
            elif fam.has_samples:
                self.problem(line, 1, f"TYPE for {name} before its samples")
            else:
                fam.type = word
        else:  # UNIT (OpenMetrics only)
            unit = raw.decode("utf-8", "replace")
            if not _UNIT_RE.fullmatch(unit):
                self.problem(line, aux_col, "a unit made of [a-zA-Z0-9_:]")
                return
            fam = self.fams[self.family(name, line)]
            if fam.unit is not None:
                self.problem(line, 1, f"at most one UNIT line for {name}")
            elif fam.has_samples:
                self.problem(line, 1, f"UNIT for {name} before its samples (OpenMetrics)")
            elif unit and not name.endswith("_" + unit):
                self.problem(line, aux_col, f"a unit that {name} ends with (after '_')")
            else:
                fam.unit = unit

    def unescape_help(self, raw: bytes, line: int, col: int) -> str | None:
        bad = pt.utf8_error(raw)
        if bad >= 0:
            self.problem(line, col + bad, "valid UTF-8")
            return None
        text = raw.decode("utf-8")
        if "\\" not in text:
            return text
        allowed = '\\n"' if self.om else "\\n"
        out: list[str] = []
        i = 0
        while True:
            j = text.find("\\", i)
            if j < 0:
                out.append(text[i:])
                return "".join(out)
            if j + 1 >= len(text) or text[j + 1] not in allowed:
                where = col + len(text[:j].encode())
                self.problem(line, where, "\\\\, \\n" + (' or \\"' if self.om else "")
                             + " after a backslash in HELP text")
                return None
            out.append(text[i:j])
            out.append(_UNESCAPE[text[j + 1]])
            i = j + 2

    # -- the walk over names and metadata lines
    def walk(self, meta_rows: list[tuple[int, int]], eof: int) -> tuple[
            dict[int, tuple[int, str]], list[tuple[int, int, int]]]:
        """Apply the rules in row order to the metadata / error rows `meta_rows` ((row,
        kind), before `eof`) and to each name's first sample: per name id (family,
        suffix), and the switches (name id, after row, family) where a later TYPE/HELP
        line created the exact family of a name whose samples had joined another."""
        tok = self.tok
        heap: list[tuple[int, int, int]] = []  # (row, order, name id or -1 for a meta row)
        kinds: dict[int, int] = {}
        for r, k in meta_rows:
            if r < eof:
                heap.append((r, 1, -1))
                kinds[r] = k
        for nid, row in enumerate(tok.first_row):
            if 0 <= row < eof:
                heap.append((int(row), 0, nid))
        heapq.heapify(heap)
        resolved: dict[int, tuple[int, str]] = {}
        switches: list[tuple[int, int, int]] = []
        switched: dict[int, int] = {}
        while heap:
            r, _, nid = heapq.heappop(heap)
            if nid >= 0:
                got = resolved.get(nid)
                if got is None:
                    got = resolved[nid] = self.resolve(self.names[nid], int(tok.line[r]))
                    self.check_sample_name(nid, *got)
                    self.fams[got[0]].has_samples = True
                else:  # the first sample after a switch
                    self.fams[switched[nid]].has_samples = True
                continue
            k = kinds[r]
            if k == pt.K_ERROR:
                self.error_row(r)
                continue
            if k == pt.K_EOF:
                continue
            nid = int(tok.name[r])
            name = self.names[nid]
            existed = name in self.by_name
            self.meta(r, k)
            if not existed and name in self.by_name and nid in resolved:
                # samples named `name` so far joined another family; from here on they
                # join the family this line created (exact names win).
                fi = switched[nid] = self.by_name[name]
                switches.append((nid, r, fi))
                later = self.next_sample(nid, r, eof)
                if later is not None:
                    heapq.heappush(heap, (later, 0, nid))
        return resolved, switches

    def name_tables(self, resolved: dict[int, tuple[int, str]]) -> tuple[list[int], list[int]]:
        """Per name id: its family (-1: none) and its role (1 histogram bucket, 2 summary
        quantile sample, else 0), before any switch."""
        fam_of = [-1] * len(self.names)
        role_of = [0] * len(self.names)
        for nid, (fi, suf) in resolved.items():
            fam_of[nid] = fi
            typ = self.fams[fi].type
            if suf == "_bucket" and typ in ("histogram", "gaugehistogram"):
                role_of[nid] = 1
            elif suf == "" and typ == "summary":
                role_of[nid] = 2
        return fam_of, role_of

    def finish_types(self) -> None:
        """Families without a TYPE line are `untyped` (0.0.4) / `unknown` (OpenMetrics)."""
        for f in self.fams:
            if f.type is None:
                f.type = "unknown" if self.om else "untyped"


_DETECT_TAIL = 1 << 16


def detect_format(data: bytes | mmap.mmap) -> Format:
    """OpenMetrics if a line is exactly `# EOF` (the format's required last line; a plain
    comment in 0.0.4) within the last 64 KiB, else Prometheus text 0.0.4. Only the tail is
    searched so detection stays O(1); pass `format=` to override."""
    lo = max(0, len(data) - _DETECT_TAIL)
    i = data.rfind(b"# EOF", lo)
    while i >= 0:
        end = i + 5
        if (i == 0 or data[i - 1] == 10) and (end == len(data) or data[end] == 10):
            return "openmetrics"
        i = data.rfind(b"# EOF", lo, i)
    return "prometheus"
