"""Line tokens of Prometheus text 0.0.4 and OpenMetrics 1.0: the byte-level contract.

This module is the specification of `native/prom.c`: both turn a buffer into the same
`TokenStream` (one row per line, interned strings, flat label ids, values as doubles) and
leave meaning to `inferguard.prom`. A regex fast path takes the common well-formed sample
lines; every other line goes through `_Scanner`, a line-for-line port of the C state
machine, so that errors carry the same column and code on both backends.

Grammar (both formats unless marked; "blank" is a space or a tab):

* Lines end at LF. The last line needs no LF. Text 0.0.4 drops one CR before the line end.
* 0.0.4: leading blanks are skipped; an empty line is BLANK; `#` starts a comment, and
  `# HELP name text` / `# TYPE name word` (any blanks between tokens, keyword right after
  `#` and blanks) are metadata; every other comment is COMMENT. OpenMetrics: no blank
  lines, no leading or repeated spaces, tokens separated by exactly one space, and a `#`
  line must be `# EOF` or `# HELP|TYPE|UNIT name <rest>` (the rest may be empty).
* metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`; label name `[a-zA-Z_][a-zA-Z0-9_]*`, not
  `__name__`, not repeated on a line; label value `"..."` holding valid UTF-8 where a
  backslash must start `\\\\`, `\\"` or `\\n`.
* labels: `{` label (`,` label)* `}` or `{}`; 0.0.4 allows blanks around every token,
  a trailing comma, and blanks between the name and `{`.
* numbers: `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`, or `[+-]?(inf|infinity)`
  and `nan` in any case (sample and exemplar values only). This is the OpenMetrics ABNF and
  the decimal subset of Go's ParseFloat; Python-only forms (`1_000`, surrounding spaces) and
  hex floats are refused. The double is the correctly rounded value, i.e. `float(text)`.
* timestamps: 0.0.4 `[+-]?digits` within int64 (milliseconds); OpenMetrics a decimal
  number as above without NaN/Inf (seconds).
* OpenMetrics exemplar after the value or timestamp: ` # {labels} value [timestamp]`
  (checked here, kept as an auxiliary span, parsed by `inferguard.prom`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

from inferguard import _lazy
from inferguard._native import Backend
from inferguard._native import _prom as _native_prom
from inferguard._native._protocols import Tokenizer, TokenStream

__all__ = [
    "E_MESSAGES",
    "K_BLANK",
    "K_COMMENT",
    "K_EOF",
    "K_ERROR",
    "K_HELP",
    "K_SAMPLE",
    "K_TYPE",
    "K_UNIT",
    "TokenStream",
    "parse_int64",
    "parse_number",
    "tokenize",
    "tokenize_native",
    "tokenize_python",
    "utf8_error",
]

K_SAMPLE, K_HELP, K_TYPE, K_UNIT, K_COMMENT, K_BLANK, K_EOF, K_ERROR = range(8)

(E_NONE, E_METRIC_NAME, E_NAME_END, E_LABEL_NAME, E_RESERVED, E_EQUALS, E_QUOTE, E_ESCAPE,
 E_UNTERMINATED, E_UTF8, E_LABEL_SEP, E_DUP_LABEL, E_SPACE, E_VALUE, E_TIMESTAMP, E_EOL,
 E_EXEMPLAR, E_BLANK_LINE, E_COMMENT, E_TYPE_WORD, E_BLANK) = range(21)

#: What the tokeniser expected at the error column, per error code.
E_MESSAGES = {
    E_METRIC_NAME: "a metric name",
    E_NAME_END: "'{' or a blank after the metric name",
    E_LABEL_NAME: "a label name",
    E_RESERVED: "a label name other than the reserved __name__",
    E_EQUALS: "'=' after the label name",
    E_QUOTE: "'\"' opening the label value",
    E_ESCAPE: "\\\\, \\\" or \\n after a backslash",
    E_UNTERMINATED: "'\"' closing the label value before the end of the line",
    E_UTF8: "valid UTF-8",
    E_LABEL_SEP: "',' or '}' after a label",
    E_DUP_LABEL: "a label name not already used in this sample",
    E_SPACE: "a single space",
    E_VALUE: "a number (decimal, exponent, NaN, +Inf or -Inf)",
    E_TIMESTAMP: "a timestamp",
    E_EOL: "the end of the line",
    E_EXEMPLAR: "'# {' opening an exemplar",
    E_BLANK_LINE: "no blank line (OpenMetrics)",
    E_COMMENT: "'# HELP', '# TYPE', '# UNIT' or '# EOF' (OpenMetrics has no other comments)",
    E_TYPE_WORD: "a metric type after the metric name",
    E_BLANK: "a blank after the metric name",
}

_NAME = rb"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LVAL = rb'[^"\\\n]*(?:\\[\\"n][^"\\\n]*)*'
_LABEL = rb"[a-zA-Z_][a-zA-Z0-9_]*=\"" + _LVAL + rb'"'
_DEC = rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUM = _DEC + rb"|[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN]"
_INT = rb"[+-]?[0-9]+"


@functools.cache
def _fast(ts: bytes) -> re.Pattern[bytes]:
    """The pure-Python tokenizer's line regex, compiled on first use (a large pattern: the
    native path never needs it). One alternative per line: a plain well-formed sample, or
    anything (group 5)."""
    return re.compile(
        rb"(?m)^(?:(" + _NAME + rb")(\{(?:" + _LABEL + rb"(?:," + _LABEL + rb")*)?\})? ("
        + _NUM + rb")(?: (" + ts + rb"))?|(.*))$")


_PAIRS = _lazy.pattern(rb"([a-zA-Z_][a-zA-Z0-9_]*)=\"(" + _LVAL + rb')"')
_DEC_RE = _lazy.pattern(_DEC)
_SPECIAL_RE = _lazy.pattern(rb"[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN]")
_INT_RE = _lazy.pattern(_INT)
_INT64_MAX = b"9223372036854775807"
_INT64_MIN_ABS = b"9223372036854775808"


def parse_number(tok: bytes, specials: bool = True) -> float | None:
    """The number grammar above: the value, or None if `tok` is not a number."""
    if _DEC_RE.fullmatch(tok) or (specials and _SPECIAL_RE.fullmatch(tok)):
        return float(tok)
    return None


def parse_int64(tok: bytes) -> float | None:
    """A 0.0.4 timestamp: an int64 in decimal, as a double; None if not one."""
    if not _INT_RE.fullmatch(tok):
        return None
    neg = tok[:1] == b"-"
    digits = tok.lstrip(b"+-").lstrip(b"0") or b"0"
    if len(digits) > 19 or (
            len(digits) == 19 and digits > (_INT64_MIN_ABS if neg else _INT64_MAX)):
        return None
    return float(tok)


def utf8_error(b: bytes) -> int:
    """-1 if `b` is valid UTF-8, else the offset of the first invalid sequence."""
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return -1


# ------------------------------------------------------------------ pure Python


class _Fail(Exception):
    def __init__(self, code: int, at: int) -> None:
        self.code = code
        self.at = at


def _table(chars: bytes) -> list[bool]:
    return [i in chars for i in range(256)]


_ALPHA = bytes(range(ord("a"), ord("z") + 1)) + bytes(range(ord("A"), ord("Z") + 1))
_DIGITS = b"0123456789"
_NAME0 = _table(_ALPHA + b"_:")
_NAMEC = _table(_ALPHA + _DIGITS + b"_:")
_LAB0 = _table(_ALPHA + b"_")
_LABC = _table(_ALPHA + _DIGITS + b"_")
_SP, _TAB, _HASH, _LBRACE, _RBRACE, _EQ, _DQ, _BSL, _COMMA = b" \t#{}=\"\\,"


class _Scanner:
    """Interners plus the per-line state machine (mirrors prom.c)."""

    def __init__(self, om: bool) -> None:
        self.om = om
        self.names: dict[bytes, int] = {}
        self.name_list: list[bytes] = []
        self.first_row: list[int] = []
        self.strs: dict[bytes, int] = {}
        self.str_list: list[bytes] = []

    def name_id(self, b: bytes) -> int:
        i = self.names.get(b)
        if i is None:
            i = self.names[b] = len(self.name_list)
            self.name_list.append(b)
            self.first_row.append(-1)
        return i

    def str_id(self, b: bytes) -> int:
        i = self.strs.get(b)
        if i is None:
            i = self.strs[b] = len(self.str_list)
            self.str_list.append(b)
        return i

    # -- helpers
    @staticmethod
    def _skip(s: bytes, n: int, i: int) -> int:
        while i < n and (s[i] == _SP or s[i] == _TAB):
            i += 1
        return i

    def _token_end(self, s: bytes, n: int, i: int, om: bool) -> int:
        if om:
            while i < n and s[i] != _SP:
                i += 1
        else:
            while i < n and s[i] != _SP and s[i] != _TAB:
                i += 1
        return i

    def labels(self, s: bytes, i: int, store: list[tuple[int, int]] | None) -> int:
        """Scan labels from just after '{'; return the index just after '}'."""
        n, om, skip = len(s), self.om, self._skip
        seen: set[int] = set()
        if not om:
            i = skip(s, n, i)
        if i < n and s[i] == _RBRACE:
            return i + 1
        while True:
            a = i
            if i >= n or not _LAB0[s[i]]:
                raise _Fail(E_LABEL_NAME, i)
            i += 1
            while i < n and _LABC[s[i]]:
                i += 1
            lname = s[a:i]
            if lname == b"__name__":
                raise _Fail(E_RESERVED, a)
            if not om:
                i = skip(s, n, i)
            if i >= n or s[i] != _EQ:
                raise _Fail(E_EQUALS, i)
            i += 1
            if not om:
                i = skip(s, n, i)
            if i >= n or s[i] != _DQ:
                raise _Fail(E_QUOTE, i)
            i += 1
            v = i
            q = -1
            while True:
                if q < i:  # the next quote, unless an escape is still before the last one
                    q = s.find(b'"', i)
                    if q < 0:
                        q = n
                j = s.find(b"\\", i, q)
                if j < 0:
                    if q >= n:
                        raise _Fail(E_UNTERMINATED, n)
                    i = q
                    break
                if j + 1 >= n or s[j + 1] not in b'\\"n':
                    raise _Fail(E_ESCAPE, j)
                i = j + 2
            raw = s[v:i]
            i += 1
            if not raw.isascii():
                bad = utf8_error(raw)
                if bad >= 0:
                    raise _Fail(E_UTF8, v + bad)
            if store is not None:
                nid = self.str_id(lname)
                if nid in seen:
                    raise _Fail(E_DUP_LABEL, a)
                seen.add(nid)
                store.append((nid, self.str_id(raw)))
            if not om:
                i = skip(s, n, i)
            if i < n and s[i] == _COMMA:
                i += 1
                if not om:
                    i = skip(s, n, i)
                    if i < n and s[i] == _RBRACE:
                        break
                continue
            if i < n and s[i] == _RBRACE:
                break
            raise _Fail(E_LABEL_SEP, i)
        return i + 1

    def exemplar(self, s: bytes, i: int) -> tuple[int, int]:
        """Check an exemplar at s[i] == '#'; return its span (from '{' to the end)."""
        n = len(s)
        i += 1
        if i >= n or s[i] != _SP:
            raise _Fail(E_EXEMPLAR, i)
        i += 1
        if i >= n or s[i] != _LBRACE:
            raise _Fail(E_EXEMPLAR, i)
        start = i
        i = self.labels(s, i + 1, None)
        if i >= n or s[i] != _SP:
            raise _Fail(E_SPACE, i)
        i += 1
        t, i = i, self._token_end(s, n, i, True)
        if parse_number(s[t:i], True) is None:
            raise _Fail(E_VALUE, t)
        if i < n:
            i += 1
            t, i = i, self._token_end(s, n, i, True)
            if parse_number(s[t:i], False) is None:
                raise _Fail(E_TIMESTAMP, t)
            if i < n:
                raise _Fail(E_EOL, i)
        return start, n - start

    def sample(self, s: bytes, i: int, out: list[tuple[int, int]]) -> tuple[
            int, float, float, int, int]:
        """(name, value, ts, aux_off, aux_len) of a sample line starting at i."""
        n, om = len(s), self.om
        if not _NAME0[s[i]]:
            raise _Fail(E_METRIC_NAME, i)
        a = i
        i += 1
        while i < n and _NAMEC[s[i]]:
            i += 1
        name = self.name_id(s[a:i])
        brace = False
        if i < n and s[i] == _LBRACE:
            brace = True
        elif om:
            if i >= n or s[i] != _SP:
                raise _Fail(E_NAME_END, i)
            i += 1
        else:
            if i >= n or (s[i] != _SP and s[i] != _TAB):
                raise _Fail(E_NAME_END, i)
            i = self._skip(s, n, i)
            brace = i < n and s[i] == _LBRACE
        if brace:
            i = self.labels(s, i + 1, out)
            if om:
                if i >= n or s[i] != _SP:
                    raise _Fail(E_SPACE, i)
                i += 1
            else:
                i = self._skip(s, n, i)
        t, i = i, self._token_end(s, n, i, om)
        value = parse_number(s[t:i], True)
        if value is None:
            raise _Fail(E_VALUE, t)
        ts = _NAN
        if om:
            if i == n:
                return name, value, ts, 0, 0
            i += 1
            if i < n and s[i] == _HASH:
                return (name, value, ts, *self.exemplar(s, i))
            t, i = i, self._token_end(s, n, i, True)
            got = parse_number(s[t:i], False)
            if got is None:
                raise _Fail(E_TIMESTAMP, t)
            ts = got
            if i == n:
                return name, value, ts, 0, 0
            i += 1
            if i < n and s[i] == _HASH:
                return (name, value, ts, *self.exemplar(s, i))
            raise _Fail(E_EXEMPLAR, i)
        i = self._skip(s, n, i)
        if i == n:
            return name, value, ts, 0, 0
        t, i = i, self._token_end(s, n, i, False)
        got = parse_int64(s[t:i])
        if got is None:
            raise _Fail(E_TIMESTAMP, t)
        i = self._skip(s, n, i)
        if i != n:
            raise _Fail(E_EOL, i)
        return name, value, got, 0, 0

    def comment(self, s: bytes, i: int) -> tuple[int, int, int, int]:
        """(kind, name, aux_off, aux_len) of a line whose first non-blank byte is '#'."""
        n = len(s)
        hash_at = i
        if self.om:
            if s == b"# EOF":
                return K_EOF, -1, 0, 0
            if n < 2 or s[1] != _SP:
                raise _Fail(E_COMMENT, 1)
            i = 2
            k = self._token_end(s, n, i, True)
            kind = {b"HELP": K_HELP, b"TYPE": K_TYPE, b"UNIT": K_UNIT}.get(s[i:k])
            if kind is None:
                raise _Fail(E_COMMENT, 2)
            i = k
            if i == n:
                raise _Fail(E_METRIC_NAME, i)
            i += 1
            e = _name_end(s, n, i)
            if e == i:
                raise _Fail(E_METRIC_NAME, i)
            name = self.name_id(s[i:e])
            i = e
            if i >= n or s[i] != _SP:
                raise _Fail(E_SPACE, i)
            i += 1
            return kind, name, i, n - i
        i = self._skip(s, n, i + 1)
        k = self._token_end(s, n, i, False)
        kw = s[i:k]
        if kw == b"HELP":
            kind = K_HELP
        elif kw == b"TYPE":
            kind = K_TYPE
        else:
            return K_COMMENT, -1, hash_at + 1, n - hash_at - 1
        i = self._skip(s, n, k)
        e = _name_end(s, n, i)
        if e == i:
            raise _Fail(E_METRIC_NAME, i)
        name = self.name_id(s[i:e])
        i = e
        if kind == K_HELP:
            if i < n and s[i] != _SP and s[i] != _TAB:
                raise _Fail(E_BLANK, i)
            i = self._skip(s, n, i)
            return kind, name, i, n - i
        if i == n:
            raise _Fail(E_TYPE_WORD, i)
        if s[i] != _SP and s[i] != _TAB:
            raise _Fail(E_BLANK, i)
        i = self._skip(s, n, i)
        if i == n:
            raise _Fail(E_TYPE_WORD, i)
        k = self._token_end(s, n, i, False)
        j = self._skip(s, n, k)
        if j != n:
            raise _Fail(E_EOL, j)
        return kind, name, i, k - i


def _name_end(s: bytes, n: int, i: int) -> int:
    if i >= n or not _NAME0[s[i]]:
        return i
    i += 1
    while i < n and _NAMEC[s[i]]:
        i += 1
    return i


_NAN = float("nan")


_CHUNK = 1 << 22


def _lines(data: bytes, om: bool) -> Iterator[tuple[bytes, bytes, bytes, bytes, bytes]]:
    """Every line as the fast pattern's groups, a few MB of lines at a time."""
    findall = _fast(_DEC if om else _INT).findall
    start = 0
    while start < len(data):
        cut = data.find(b"\n", start + _CHUNK)
        end = len(data) if cut < 0 else cut + 1
        chunk = data[start:end]
        matches = findall(chunk)
        if chunk.endswith(b"\n"):
            matches.pop()  # the empty "line" after the final newline
        yield from matches
        start = end


def tokenize_python(data: bytes, om: bool) -> TokenStream:
    """The pure-Python tokeniser (fast path for plain samples, `_Scanner` for the rest)."""
    import numpy as np  # on first use: the native road must not import it

    sc = _Scanner(om)
    names_get, name_id = sc.names.get, sc.name_id
    str_id = sc.str_id
    first_row = sc.first_row
    col_name: list[int] = []
    col_nlab: list[int] = []
    col_value: list[float] = []
    col_ts: list[float] = []
    lab_name: list[int] = []
    lab_value: list[int] = []
    special: list[tuple[int, int, int, int, int]] = []  # row, kind, aux_len, err_col, err
    aux: dict[int, tuple[bytes, int]] = {}
    bcache: dict[bytes, tuple[list[int], list[int]]] = {}
    nan = _NAN
    row = -1
    for name, block, value, ts, other in _lines(data, om):
        row += 1
        if name:
            nid = names_get(name)
            if nid is None:
                nid = name_id(name)
            if block:
                cached = bcache.get(block)
                if cached is None:
                    cached = _fast_block(block, str_id)
                    if cached is None:
                        other = name + block + b" " + value + (b" " + ts if ts else b"")
                        name = b""
                    else:
                        bcache[block] = cached
                if cached is not None:
                    lnames, lvalues = cached
            else:
                lnames = lvalues = _EMPTY
            t = nan
            if name and ts:
                got_ts = float(ts) if om or len(ts) < 19 else parse_int64(ts)
                if got_ts is None:
                    other = name + block + b" " + value + b" " + ts
                    name = b""
                else:
                    t = got_ts
            if name:
                col_name.append(nid)
                col_nlab.append(len(lnames))
                col_value.append(float(value))
                col_ts.append(t)
                lab_name += lnames
                lab_value += lvalues
                if first_row[nid] < 0:
                    first_row[nid] = row
                continue
        # the slow path: mirrors prom.c
        s = other
        if not om and s.endswith(b"\r"):
            s = s[:-1]
        got: list[tuple[int, int]] = []
        try:
            i = 0 if om else sc._skip(s, len(s), 0)
            if i == len(s):
                if om:
                    raise _Fail(E_BLANK_LINE, 0)
                kind, nid, v, t, a_off, a_len = K_BLANK, -1, 0.0, nan, 0, 0
            elif s[i] == _HASH:
                kind, nid, a_off, a_len = sc.comment(s, i)
                v, t = 0.0, nan
            else:
                nid, v, t, a_off, a_len = sc.sample(s, i, got)
                kind = K_SAMPLE
        except _Fail as fail:
            col_name.append(-1)
            col_nlab.append(0)
            col_value.append(0.0)
            col_ts.append(nan)
            special.append((row, K_ERROR, 0, fail.at + 1, fail.code))
            continue
        col_name.append(nid)
        col_nlab.append(len(got))
        col_value.append(v)
        col_ts.append(t)
        for ln_, lv_ in got:
            lab_name.append(ln_)
            lab_value.append(lv_)
        if kind == K_SAMPLE and first_row[nid] < 0:
            first_row[nid] = row
        special.append((row, kind, a_len, 0, 0))
        if a_len:
            aux[row] = (s[a_off:a_off + a_len], a_off + 1)
    n = row + 1
    kinds = np.zeros(n, np.uint8)
    aux_len = np.zeros(n, np.int64)
    err_col = np.zeros(n, np.int64)
    err = np.zeros(n, np.uint8)
    if special:
        sp = np.array(special, dtype=np.int64)
        kinds[sp[:, 0]] = sp[:, 1]
        aux_len[sp[:, 0]] = sp[:, 2]
        err_col[sp[:, 0]] = sp[:, 3]
        err[sp[:, 0]] = sp[:, 4]
    nlab = np.array(col_nlab, np.int64)
    lab_first = np.zeros(n, np.int64)
    if n > 1:
        np.cumsum(nlab[:-1], out=lab_first[1:])
    return TokenStream(
        om, np.arange(1, n + 1, dtype=np.int64), kinds, np.array(col_name, np.int32),
        lab_first, nlab, np.array(col_value, np.float64), np.array(col_ts, np.float64),
        aux_len, err_col, err, np.array(lab_name, np.int32), np.array(lab_value, np.int32),
        sc.name_list, np.array(first_row, np.int64), sc.str_list, aux.__getitem__)


_EMPTY: list[int] = []


def _fast_block(block: bytes, str_id: Callable[[bytes], int]) -> tuple[
        list[int], list[int]] | None:
    """Intern a well-formed `{...}` block in the order prom.c does; None if the line
    needs the slow path (reserved or repeated label name, invalid UTF-8)."""
    names: list[int] = []
    values: list[int] = []
    for lname, raw in _PAIRS.findall(block):
        if lname == b"__name__" or (not raw.isascii() and utf8_error(raw) >= 0):
            return None
        nid = str_id(lname)
        if nid in names:
            return None
        names.append(nid)
        values.append(str_id(raw))
    return names, values


# ------------------------------------------------------------------ dispatch

#: The native tokeniser (native/prom.c through inferguard._native._prom).
tokenize_native = _native_prom.tokenize
_TOKENIZERS: dict[Backend, Tokenizer] = {"native": tokenize_native, "python": tokenize_python}


def tokenize(data: bytes, om: bool, backend: Backend) -> TokenStream:
    """Tokenise `data` on the chosen backend."""
    return _TOKENIZERS[backend](data, om)
