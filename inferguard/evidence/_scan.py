"""Fast multi-pattern line scanning for big logs: which lines can match which regex.

A regex's *anchors* are byte 4-grams derived from its parse tree (`required_literals`): every
match contains at least one of them. `GramIndex` finds, with numpy over a whole block of
lines, the lines containing any anchor of any pattern and which patterns those anchors
belong to; only those lines and patterns are then tried with the regex itself. The index is
a superset test: it never decides a match, so results are those of trying every pattern on
every line, at a fraction of the cost (most lines of a real log contain no anchor at all).
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

N = 4  # anchor length in bytes
if sys.version_info >= (3, 11):
    from re import _parser as _sre  # type: ignore[attr-defined]  # (not in typeshed)
else:  # pragma: no cover
    import sre_parse as _sre

# What an ASCII letter matches under IGNORECASE: its two cases, and for i, k and s also a
# non-ASCII code point (U+0130/U+0131, U+212A, U+017F; a test checks every code point).
_FOLD_EXTRA = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


def _fold_class(c: str) -> str | None:
    """Every character `c` matches case-insensitively; None when not known (non-ASCII)."""
    if not c.isascii():
        return None
    if not c.isalpha():
        return c
    return c.lower() + c.upper() + _FOLD_EXTRA.get(c.lower(), "")


# Characters frequent in ordinary log text, and text typical of the lines of a busy log: a
# 4-gram of the second, then one made of more of the first, is a poor anchor.
_COMMON = frozenset("etaoinsrhldcu mpfgywbv.,:;_-0123456789/")
_TYPICAL = (
    '[2026-01-01 00:00:00,000] LMCache INFO: lmcache.v1 LMCache DEBUG WARNING ERROR '
    '(engine_driven_transfer.py:123:lmcache.v1.multiprocess) (APIServer pid=1) (EngineCore_DP0 '
    'pid=1) INFO 01-01 00:00:00 [loggers.py:123] Engine 000: Avg prompt throughput: 1.0 '
    'tokens/s, Avg generation throughput: 1.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs, GPU '
    'KV cache usage: 1.0%, Prefix cache hit rate: 1.0%, External prefix cache hit rate: 1.0% '
    'INFO:     127.0.0.1:12345 - "POST /v1/completions HTTP/1.1" 200 OK "GET /metrics HTTP/1.1" '
    'Received request cmpl-0: prompt: \'Hello, my name is\', params: SamplingParams(n=1, '
    'temperature=0.0, max_tokens=16), prompt_token_ids: [1, 2], lora_request: None. '
    'Added request chatcmpl-0. Finished request. http://localhost:8000 the of and to in for on '
    'with is was that this from at by be are not it an as or')
_TYPICAL_GRAMS = frozenset(_TYPICAL.encode()[i:i + j] for j in (3, 4)
                           for i in range(len(_TYPICAL)))


def _score(g: bytes) -> int:
    return 10 * (g in _TYPICAL_GRAMS) + 5 * (g[:3] in _TYPICAL_GRAMS or g[1:] in _TYPICAL_GRAMS) \
        + sum(chr(b) in _COMMON for b in g)


def _grams(s: str) -> list[bytes]:
    """The 4-grams of `s` (UTF-8), best anchor first."""
    raw = s.encode()
    return sorted((raw[i:i + N] for i in range(len(raw) - N + 1)), key=_score)


def _options(items: Iterable[tuple[Any, Any]], fold: bool) -> list[list[str]]:
    """Any-of literal lists for one sequence of parse items: for each list, every match of
    the sequence contains at least one of its strings (case-folded lists when `fold`)."""
    out: list[list[str]] = []
    run: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if run:
            out.append(["".join(run)])
            run = []
        if name == "BRANCH":
            per = [_best(_options(b, fold)) for b in av[1]]
            if all(p is not None for p in per):
                out.append([s for p in per if p is not None for s in p])
        elif name == "SUBPATTERN" and not av[1] and not av[2]:
            best = _best(_options(av[3], fold))
            if best is not None:
                out.append(best)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            best = _best(_options(av[2], fold))
            if best is not None:
                out.append(best)
    if run:
        out.append(["".join(run)])
    return out


def _best(options: list[list[str]]) -> list[str] | None:
    """The most selective any-of list: its weakest string's best 4-gram least common, then
    fewest strings."""
    usable = [o for o in options if o and all(len(s.encode()) >= N for s in o)]
    if not usable:
        return None
    return min(usable, key=lambda o: (max(_score(_grams(s)[0]) for s in o), len(o)))


def required_literals(pattern: str) -> tuple[list[str], bool] | None:
    """Strings one of which every match of `pattern` contains, and whether they match
    case-insensitively; None when no such list of strings of >= N bytes is found."""
    parsed = _sre.parse(pattern)
    fold = bool(parsed.state.flags & re.IGNORECASE)
    best = _best(_options(parsed.data, fold))
    return None if best is None else (best, fold)


def _gram(s: str, fold: bool) -> list[bytes] | None:
    """The least common 4-gram of `s` (UTF-8); when `fold`, the first 4 bytes of every case
    variant of its least common 4 characters (None if a character's variants are unknown)."""
    if not fold:
        return [_grams(s)[0]]
    windows = [s[i:i + N] for i in range(len(s) - N + 1)]
    classes = [[_fold_class(c) for c in w] for w in windows]
    usable = [(w, cs) for w, cs in zip(windows, classes, strict=True) if None not in cs]
    if not usable:
        return None
    _, cs = min(usable, key=lambda u: _score(u[0].lower().encode()[:N]))
    return sorted({"".join(v).encode()[:N] for v in itertools.product(*[c or "" for c in cs])})


def anchors(pattern: str) -> list[bytes] | None:
    """4-grams one of which every match of `pattern` contains (None: none found)."""
    req = required_literals(pattern)
    if req is None:
        return None
    out: list[bytes] = []
    for s in req[0]:
        t = _gram(s, req[1])
        if t is None:
            return None
        out += t
    return sorted(set(out))


def _implied(items: Iterable[tuple[Any, Any]], other: re.Pattern[str]) -> bool:
    run: list[str] = []
    for op, av in [*items, (None, None)]:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if run and other.search("".join(run)) is not None:
            return True
        run = []
        if name == "BRANCH" and all(_implied(b, other) for b in av[1]):
            return True
        if name == "SUBPATTERN" and not av[1] and not av[2] and _implied(av[3], other):
            return True
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1 \
                and _implied(av[2], other):
            return True
    return False


def implies(pattern: str, other: re.Pattern[str]) -> bool:
    """True when every match of `pattern` contains a match of `other` (a regex with no
    anchors or lookarounds), shown from literal runs `pattern`'s matches must contain."""
    parsed = _sre.parse(pattern)
    return not parsed.state.flags & re.IGNORECASE and _implied(parsed.data, other)


STEP = 128 << 10  # bytes of a block hashed at a time
BITS = 20  # table slots: 1 MiB of codes stays in cache (a 16 MiB one did not, once filled)
_MUL = np.uint32(0x9E3779B1)  # Fibonacci hashing of a 4-gram to BITS bits


def _slot(g: bytes) -> int:
    return ((int.from_bytes(g, "little") * 0x9E3779B1) & 0xFFFFFFFF) >> (32 - BITS)


class GramIndex:
    """Anchor 4-grams of several patterns, looked up at every position of a block at once:
    a table of codes indexed by a hash of the 4 bytes, hits then checked
    against the anchors themselves; `patterns[code]` is the set of pattern indexes of that
    code (two anchors sharing a slot share their patterns: a superset, never a miss)."""

    def __init__(self, per_pattern: Sequence[Sequence[bytes]]) -> None:
        slots: dict[int, set[int]] = {}
        for p, gs in enumerate(per_pattern):
            for g in gs:
                if len(g) != N:
                    raise ValueError(f"not an anchor: {g!r}")
                slots.setdefault(_slot(g), set()).add(p)
        distinct = sorted({frozenset(v) for v in slots.values()}, key=sorted)
        code = {s: 1 + i % 255 for i, s in enumerate(distinct)}
        merged: dict[int, set[int]] = {}
        for s, c in code.items():
            merged.setdefault(c, set()).update(s)
        self.patterns: list[frozenset[int]] = [frozenset(merged.get(c, ())) for c in range(256)]
        nwords = max(1, (len(per_pattern) + 63) // 64)
        self.masks = [sum(1 << p for p in ps) for ps in self.patterns]
        self.words = [np.array([m >> (64 * w) & (2**64 - 1) for m in self.masks], np.uint64)
                      for w in range(nwords)]
        self.table = np.zeros(1 << BITS, np.uint8)
        self.exact = np.array(sorted({int.from_bytes(g, "little") for gs in per_pattern
                                      for g in gs}), np.uint32)
        for slot, ps in slots.items():
            self.table[slot] = code[frozenset(ps)]

    def hits(self, block: bytes) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8]]:
        """Positions (sorted) where an anchor starts in `block`, with their codes; looked up
        in slices of `STEP` bytes (the hash and the table's int64 indexes are 12 bytes a
        position: temporaries stay near 1.5 MiB whatever the block)."""
        padded = block + b"\0\0\0"  # a 4-gram at every position
        pos: list[npt.NDArray[np.intp]] = []
        codes: list[npt.NDArray[np.uint8]] = []
        for at in range(0, len(block), STEP):
            n = min(STEP, len(block) - at)
            grams = np.ndarray((n,), "<u4", padded, at, (1,))  # unaligned, overlapping
            h = grams * _MUL
            h >>= np.uint32(32 - BITS)
            c = np.take(self.table, h)
            i = np.flatnonzero(c)
            v = grams[i]  # the hash's collisions with other 4-grams out (`exact` is sorted)
            i = i[self.exact[np.searchsorted(self.exact, v).clip(0, len(self.exact) - 1)] == v]
            pos.append(i + at)
            codes.append(c[i])
        if len(pos) == 1:
            return pos[0], codes[0]
        return (np.concatenate(pos) if pos else np.zeros(0, np.intp),
                np.concatenate(codes) if codes else np.zeros(0, np.uint8))

    def line_masks(self, block: bytes) -> tuple[list[int], list[tuple[int, int]]]:
        """For a block of b"\n"-terminated lines: the offset of every line's b"\n", and for
        each line holding an anchor (in order) its index and the bit mask of the patterns
        whose anchors it holds (bit p: pattern p)."""
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
        pos, codes = self.hits(block)
        if not len(pos):
            return ends.tolist(), []
        lines, at = np.unique(np.searchsorted(ends, pos), return_index=True)
        out = []
        for w, word in enumerate(self.words):
            bits = np.bitwise_or.reduceat(word[codes], at).tolist()
            out.append(bits if not w else [b << (64 * w) for b in bits])
        masks = [sum(ws) for ws in zip(*out, strict=True)] if len(out) > 1 else out[0]
        return ends.tolist(), list(zip(lines.tolist(), masks, strict=True))


    def line_hits(self, block: bytes) -> tuple[list[int], list[tuple[int, int, list[int]]]]:
        """`line_masks`, each line also with the positions of its hits (for blocks with few
        anchors: the hits are grouped in Python)."""
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
        pos, codes = self.hits(block)
        out: list[tuple[int, int, list[int]]] = []
        if not len(pos):
            return ends.tolist(), out
        masks = self.masks
        last = -1
        for p, c, line in zip(pos.tolist(), codes.tolist(),
                              np.searchsorted(ends, pos).tolist(), strict=True):
            if line == last:
                i, m, where = out[-1]
                where.append(p)
                out[-1] = (i, m | masks[c], where)
            else:
                out.append((line, masks[c], [p]))
                last = line
        return ends.tolist(), out


def whole_line_pieces(data: bytes, size: int) -> Iterator[bytes]:
    """`data` as pieces of whole lines of about `size` bytes (lines end after b"\n"; no line
    is cut: a longer one is a piece of its own). The log scan and the block redaction both
    walk their input this way."""
    i = 0
    while i < len(data):
        j = data.rfind(b"\n", i, i + size) + 1
        if j <= i:
            j = data.find(b"\n", i + size) + 1 or len(data)
        yield data[i:j]
        i = j


def longest_line(block: bytes) -> int:
    """The length of the longest b"\n"-terminated line of `block` (without its b"\n")."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    return int(np.diff(ends, prepend=-1).max()) - 1 if len(ends) else len(block)


def long_lines(block: bytes, limit: int) -> list[tuple[int, int]]:
    """(start, end) of every b"\n"-terminated line of `block` longer than `limit` bytes (end
    excludes the b"\n")."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    long = np.flatnonzero(ends - starts > limit)
    return list(zip(starts[long].tolist(), ends[long].tolist(), strict=True))


def followed(prefix: bytes, exclude: bytes = b"") -> list[bytes]:
    """The 4-grams `prefix` (3 bytes) followed by any byte not in `exclude`: the anchors of a
    3-byte literal, or of one with a negative lookahead (`key(?![a-z])`)."""
    return [prefix + bytes([b]) for b in range(256) if b not in exclude]


def cases(s: str) -> list[bytes]:
    """Every ASCII case variant of `s` (a bytes pattern's IGNORECASE)."""
    return sorted({"".join(v).encode() for v in itertools.product(
        *[(c.lower(), c.upper()) if c.isalpha() else (c,) for c in s])})
