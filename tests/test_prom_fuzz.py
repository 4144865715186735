"""Seeded random texts, valid and broken: prom.c and the Python tokeniser must produce the
same token stream, and parse_text the same model, problem for problem, bit for bit."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from inferguard import parse_text
from inferguard._native import native_available
from inferguard.prom import _tokens as pt

from .prom_gen import generate_exposition

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")

PIECES = [b"{", b"}", b'"', b"\\", b"=", b",", b" ", b"  ", b"\t", b"#", b"# ", b"HELP", b"TYPE",
          b"UNIT", b"EOF", b"# EOF", b"x", b"a_b:c", b"le", b"quantile", b"__name__", b"1",
          b"1.5", b"-2e3", b"+Inf", b"NaN", b"nan", b"-inf", b"Infinity", b"0x10", b"1_0", b".5",
          b"5.", b"e", b"\r", b"\n", b"\xc3\xa9", b"\xff", b"\xe2\x82", b"\\n", b'\\"', b"\\\\",
          b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808",
          b"00000000000000000000001", b"123456789012345678901234567890", b"1e400", b"1e-400",
          b"0", b"-0", b"counter", b"histogram", b"summary", b"gauge", b"_bucket", b"_total",
          b"_count", b'a="b"', b'{a="b"}', b'{le="0.5"}', b' # {a="b"} 1 2', b"metric", b"\x00"]
VALID = [b"x 1", b'x{a="b"} 1 2', b'x{a="b",c="d"} 1.5', b"# HELP x help text",
         b"# TYPE x counter", b"# TYPE x histogram", b"# UNIT x seconds",
         b'x_total{a="b"} 1 # {t="1"} 2 3', b'x_bucket{le="+Inf"} 3', b"# EOF", b"",
         b'  x  {  a = "b" , } 1  1000  ', b'x{a="\\\\\\"\\n"} -1e5', b"x_count 2", b"x_sum 1",
         b'm{a="x",b="yy",c="\\"z",le="0.5"} 1', b'm { a = "1" , b="2" } 3',
         b'm{a="1",a="1"} 2', b'# TYPE m summary', b'm{quantile="0.9"} 1']


def mutate(rnd: random.Random, line: bytes, edits: int) -> bytes:
    b = bytearray(line)
    for _ in range(edits):
        pos = rnd.randint(0, len(b))
        op = rnd.random()
        if op < 0.45:
            b[pos:pos] = rnd.choice(PIECES)
        elif op < 0.7 and b:
            del b[min(pos, len(b) - 1)]
        elif b:
            b[min(pos, len(b) - 1)] = rnd.randrange(256)
    return bytes(b)


def random_text(rnd: random.Random) -> bytes:
    lines = []
    for _ in range(rnd.randint(0, 12)):
        r = rnd.random()
        if r < 0.45:
            lines.append(mutate(rnd, rnd.choice(VALID), rnd.randint(0, 3)))
        elif r < 0.75:  # runs of near-identical lines (the native prefix reuse)
            base = rnd.choice(VALID)
            for _ in range(rnd.randint(1, 6)):
                line = mutate(rnd, base, rnd.randint(0, 2))
                lines.append(line)
                if rnd.random() < 0.3:
                    base = line
        else:
            lines.append(b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 8))))
    data = b"\n".join(lines)
    return data + b"\n" if rnd.random() < 0.5 else data


def assert_same_tokens(a: pt.TokenStream, b: pt.TokenStream) -> None:
    for col in ("line", "kind", "name", "lab_first", "lab_count", "aux_len", "err_col", "err",
                "lab_name", "lab_value", "first_row"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    for col in ("value", "ts"):
        assert np.array_equal(getattr(a, col).view(np.uint64), getattr(b, col).view(np.uint64))
    assert a.names == b.names and a.strs == b.strs
    assert [a.aux_at(i) for i in range(len(a.kind))] == [b.aux_at(i) for i in range(len(b.kind))]


def model(data: bytes, backend: str, fmt: str) -> tuple[object, ...]:
    exp = parse_text(data, backend=backend, format=fmt)  # type: ignore[arg-type]
    fams = []
    for f in exp.families:
        rows = [(s.name, s.labels, struct.pack("<d", s.value),
                 None if s.timestamp is None else struct.pack("<d", s.timestamp),
                 None if s.exemplar is None else (s.exemplar.labels,
                                                  struct.pack("<d", s.exemplar.value),
                                                  s.exemplar.timestamp), s.line)
                for s in f.samples]
        fams.append((f.name, f.type, f.help, f.unit, f.line, rows))
    # the columnar counts too: native series counts and facts come from native/distinct.c
    return (exp.format, exp.problems, tuple(fams), exp.zero_families(),
            tuple(exp.series_counts().tolist()), tuple(exp.family_facts()))


@pytest.mark.parametrize("seed", range(4))
def test_random_text_tokens_and_model_agree(seed: int) -> None:
    rnd = random.Random(1000 + seed)
    for _ in range(1500):
        data = random_text(rnd)
        for om in (False, True):
            assert_same_tokens(pt.tokenize_native(data, om), pt.tokenize_python(data, om))
            fmt = "openmetrics" if om else "prometheus"
            assert model(data, "native", fmt) == model(data, "python", fmt), data


@pytest.mark.parametrize("openmetrics", [False, True])
def test_corrupted_expositions_agree(openmetrics: bool) -> None:
    """Real-looking expositions with a few corrupted lines: valid, invalid and repeated
    lines mixed, through the full parse on both backends."""
    rnd = random.Random(5 if openmetrics else 6)
    base = generate_exposition(8, openmetrics=openmetrics, seed=3).split(b"\n")
    fmt = "openmetrics" if openmetrics else "prometheus"
    for _ in range(60):
        lines = list(base)
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(lines))
            lines[i] = mutate(rnd, lines[i], rnd.randint(1, 3))
        data = b"\n".join(lines)
        assert_same_tokens(pt.tokenize_native(data, openmetrics),
                           pt.tokenize_python(data, openmetrics))
        assert model(data, "native", fmt) == model(data, "python", fmt)


def test_generated_expositions_agree_with_resume() -> None:
    for om in (False, True):
        data = generate_exposition(30, openmetrics=om, seed=9)
        ref = pt.tokenize_python(data, om)
        assert_same_tokens(pt.tokenize_native(data, om), ref)
        assert_same_tokens(pt.tokenize_native(data, om, chunk_rows=97, chunk_labels=31), ref)


def test_python_chunking_gives_the_same_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pure-Python tokeniser reads a few MB of lines at a time; tiny chunks must not
    change a thing (line numbers, rows, interned ids)."""
    for om in (False, True):
        data = generate_exposition(6, openmetrics=om, seed=4) + b"tail 1"
        ref = pt.tokenize_python(data, om)
        monkeypatch.setattr(pt, "_CHUNK", 37)
        assert_same_tokens(pt.tokenize_python(data, om), ref)
        monkeypatch.undo()
        assert_same_tokens(pt.tokenize_native(data, om), ref)
