"""The line grammar of inferguard.prom._tokens, checked on prom.c and on the Python twin:
what each kind of line yields, and for malformed lines the column and what was expected."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest

from inferguard._native import core, native_available
from inferguard.prom import _tokens as pt

E = pt  # error codes live beside the tokeniser


def tokenize(data: bytes, om: bool, backend: str) -> pt.TokenStream:
    return pt.tokenize(data, om, "native" if backend == "native" else "python")


def one(line: bytes, om: bool, backend: str) -> dict[str, Any]:
    t = tokenize(line + b"\n", om, backend)
    assert len(t.kind) == 1
    a, n = int(t.lab_first[0]), int(t.lab_count[0])
    name = int(t.name[0])
    return {
        "kind": int(t.kind[0]), "err": int(t.err[0]), "col": int(t.err_col[0]),
        "name": t.names[name].decode() if name >= 0 else None,
        "labels": [(t.strs[k].decode(), t.strs[v].decode())
                   for k, v in zip(t.lab_name[a:a + n], t.lab_value[a:a + n], strict=True)],
        "value": float(t.value[0]), "ts": float(t.ts[0]), "aux": t.aux(0).decode("latin-1"),
    }


def err(line: bytes, om: bool, backend: str) -> tuple[int, int]:
    got = one(line, om, backend)
    assert got["kind"] == pt.K_ERROR, got
    return got["err"], got["col"]


# ------------------------------------------------------------------ valid lines

@pytest.mark.parametrize("om", [False, True])
def test_plain_samples(backend: str, om: bool) -> None:
    got = one(b'vllm:num_requests_running{engine="0",model_name="m"} 3', om, backend)
    assert got["kind"] == pt.K_SAMPLE and got["err"] == 0
    assert got["name"] == "vllm:num_requests_running"
    assert got["labels"] == [("engine", "0"), ("model_name", "m")]
    assert got["value"] == 3.0 and math.isnan(got["ts"])
    got = one(b"lmcache:num_hit_tokens_total 1.5e3", om, backend)
    assert (got["name"], got["labels"], got["value"]) == ("lmcache:num_hit_tokens_total", [],
                                                          1500.0)
    got = one(b"x{} 1", om, backend)
    assert got["kind"] == pt.K_SAMPLE and got["labels"] == []


def test_text_0_0_4_whitespace_and_timestamps(backend: str) -> None:
    got = one(b' \tx { a = "1" ,\tb="2", } 7 \t -1700000000000 \t', False, backend)
    assert got["kind"] == pt.K_SAMPLE
    assert got["labels"] == [("a", "1"), ("b", "2")]
    assert (got["value"], got["ts"]) == (7.0, -1700000000000.0)
    assert one(b"x{}1", False, backend)["value"] == 1.0
    assert one(b"x 1\r", False, backend)["kind"] == pt.K_SAMPLE
    assert one(b"x 1 +9223372036854775807", False, backend)["ts"] == 9223372036854775807.0
    assert one(b"x 1 -9223372036854775808", False, backend)["ts"] == -9223372036854775808.0
    assert one(b"x 1 000000000000000000000012", False, backend)["ts"] == 12.0
    assert one(b"", False, backend)["kind"] == pt.K_BLANK
    assert one(b" \t", False, backend)["kind"] == pt.K_BLANK


def test_openmetrics_timestamps_and_exemplars(backend: str) -> None:
    got = one(b'x_total{a="b"} 1 1700000000.5 # {trace_id="ab"} 0.5 1700000000.25', True,
              backend)
    assert got["kind"] == pt.K_SAMPLE
    assert (got["value"], got["ts"]) == (1.0, 1700000000.5)
    assert got["aux"] == '{trace_id="ab"} 0.5 1700000000.25'
    got = one(b'x_bucket{le="1"} 2 # {} NaN', True, backend)
    assert got["kind"] == pt.K_SAMPLE and got["aux"] == "{} NaN" and math.isnan(got["ts"])


@pytest.mark.parametrize("om", [False, True])
def test_label_value_escapes_and_utf8(backend: str, om: bool) -> None:
    got = one('x{a="\\\\\\"\\n",b="é→😀"} 1'.encode(), om, backend)
    assert got["labels"] == [("a", '\\\\\\"\\n'), ("b", "é→😀")]


def test_comments_and_metadata_text_0_0_4(backend: str) -> None:
    help_ = one(b"# HELP  vllm:x   Text with  spaces \\n and \\\\ ", False, backend)
    assert (help_["kind"], help_["name"]) == (pt.K_HELP, "vllm:x")
    assert help_["aux"] == "Text with  spaces \\n and \\\\ "
    assert one(b"# HELP x", False, backend)["aux"] == ""
    typ = one(b"#TYPE x\tcounter \t", False, backend)
    assert (typ["kind"], typ["name"], typ["aux"]) == (pt.K_TYPE, "x", "counter")
    for line in (b"# a comment", b"#", b"# UNIT x seconds", b"# EOF", b"  # HELPER x y"):
        assert one(line, False, backend)["kind"] == pt.K_COMMENT, line


def test_metadata_openmetrics(backend: str) -> None:
    assert one(b"# EOF", True, backend)["kind"] == pt.K_EOF
    unit = one(b"# UNIT x_seconds seconds", True, backend)
    assert (unit["kind"], unit["name"], unit["aux"]) == (pt.K_UNIT, "x_seconds", "seconds")
    help_ = one(b"# HELP x ", True, backend)
    assert (help_["kind"], help_["aux"]) == (pt.K_HELP, "")
    typ = one(b"# TYPE x gauge", True, backend)
    assert (typ["kind"], typ["aux"]) == (pt.K_TYPE, "gauge")


# ------------------------------------------------------------------ malformed lines

@pytest.mark.parametrize("line,om,code,col", [
    (b"1x 1", False, E.E_METRIC_NAME, 1),
    (b"x", False, E.E_NAME_END, 2),
    (b"x=1", False, E.E_NAME_END, 2),
    (b"x ", False, E.E_VALUE, 3),
    (b"x{1=\"a\"} 1", False, E.E_LABEL_NAME, 3),
    (b"x{a=\"1\",,} 1", False, E.E_LABEL_NAME, 9),
    (b"x{__name__=\"y\"} 1", False, E.E_RESERVED, 3),
    (b"x{a \"1\"} 1", False, E.E_EQUALS, 5),
    (b"x{a=1} 1", False, E.E_QUOTE, 5),
    (b"x{a=\"\\q\"} 1", False, E.E_ESCAPE, 6),
    (b"x{a=\"1\\\"} 1", False, E.E_UNTERMINATED, 12),
    (b"x{a=\"ok\\", False, E.E_ESCAPE, 8),
    (b"x{a=\"\xff\"} 1", False, E.E_UTF8, 6),
    (b"x{a=\"\xc3\xa9\xed\xa0\x80\"} 1", False, E.E_UTF8, 8),
    (b"x{a=\"1\" b=\"2\"} 1", False, E.E_LABEL_SEP, 9),
    (b"x{a=\"1\",a=\"2\"} 1", False, E.E_DUP_LABEL, 9),
    (b"x 1_000", False, E.E_VALUE, 3),
    (b"x 0x10", False, E.E_VALUE, 3),
    (b"x +nan", False, E.E_VALUE, 3),
    (b"x 1e", False, E.E_VALUE, 3),
    (b"x .", False, E.E_VALUE, 3),
    (b"x 1 1.5", False, E.E_TIMESTAMP, 5),
    (b"x 1 9223372036854775808", False, E.E_TIMESTAMP, 5),
    (b"x 1 -9223372036854775809", False, E.E_TIMESTAMP, 5),
    (b"x 1 2 3", False, E.E_EOL, 7),
    (b'x 1 # {a="b"} 2', False, E.E_TIMESTAMP, 5),
    (b"# HELP", False, E.E_METRIC_NAME, 7),
    (b"# HELP x{", False, E.E_BLANK, 9),
    (b"# TYPE x", False, E.E_TYPE_WORD, 9),
    (b"# TYPE x ", False, E.E_TYPE_WORD, 10),
    (b"# TYPE x counter gauge", False, E.E_EOL, 18),
    (b"", True, E.E_BLANK_LINE, 1),
    (b" x 1", True, E.E_METRIC_NAME, 1),
    (b"x  1", True, E.E_VALUE, 3),
    (b"x\t1", True, E.E_NAME_END, 2),
    (b"x{a=\"1\",} 1", True, E.E_LABEL_NAME, 9),
    (b"x{ a=\"1\"} 1", True, E.E_LABEL_NAME, 3),
    (b"x{a=\"1\"}1", True, E.E_SPACE, 9),
    (b"x 1 ", True, E.E_TIMESTAMP, 5),
    (b"x 1 NaN", True, E.E_TIMESTAMP, 5),
    (b"x 1 2 3", True, E.E_EXEMPLAR, 7),
    (b"x 1\r", True, E.E_VALUE, 3),
    (b"x 1 #{a=\"b\"} 1", True, E.E_EXEMPLAR, 6),
    (b"x 1 # a", True, E.E_EXEMPLAR, 7),
    (b"x 1 # {a=\"b\"}", True, E.E_SPACE, 14),
    (b"x 1 # {a=\"b\"} z", True, E.E_VALUE, 15),
    (b"x 1 # {a=\"b\"} 1 inf", True, E.E_TIMESTAMP, 17),
    (b"x 1 # {a=\"b\"} 1 2 3", True, E.E_EOL, 18),
    (b"#", True, E.E_COMMENT, 2),
    (b"# comment", True, E.E_COMMENT, 3),
    (b"# EOF ", True, E.E_COMMENT, 3),
    (b"# HELP", True, E.E_METRIC_NAME, 7),
    (b"# HELP x", True, E.E_SPACE, 9),
    (b"# TYPE 1x gauge", True, E.E_METRIC_NAME, 8),
])
def test_malformed_line(backend: str, line: bytes, om: bool, code: int, col: int) -> None:
    assert err(line, om, backend) == (code, col)
    assert code in pt.E_MESSAGES


def test_error_row_is_clean(backend: str) -> None:
    """An error row carries no name, labels, value or auxiliary span."""
    t = tokenize(b'x{a="1",b=2} 5 6\nok{c="3"} 1\n', False, backend)
    assert list(t.kind) == [pt.K_ERROR, pt.K_SAMPLE]
    assert int(t.name[0]) == -1 and int(t.lab_count[0]) == 0 and float(t.value[0]) == 0.0
    assert math.isnan(float(t.ts[0])) and int(t.aux_len[0]) == 0
    assert int(t.lab_first[1]) == 0 and int(t.lab_count[1]) == 1
    assert list(t.first_row) == [-1, 1]


def test_lines_and_final_newline(backend: str) -> None:
    for data, lines in ((b"", []), (b"\n", [pt.K_BLANK]), (b"x 1", [pt.K_SAMPLE]),
                        (b"x 1\n", [pt.K_SAMPLE]), (b"x 1\n\n", [pt.K_SAMPLE, pt.K_BLANK]),
                        (b"\nx 1\r\n", [pt.K_BLANK, pt.K_SAMPLE])):
        t = tokenize(data, False, backend)
        assert list(t.kind) == lines, data
        assert list(t.line) == list(range(1, len(lines) + 1))


# ------------------------------------------------------------------ numbers

NUMBERS_OK = [b"0", b"-0", b"+1", b"1.", b".5", b"1.5e3", b"1E-3", b"+.5e+5", b"007",
              b"1e400", b"-1e400", b"1e-400", b"4.9e-324", b"2.4703282292062327e-324",
              b"2.4703282292062328e-324", b"1.7976931348623157e308", b"1.7976931348623159e308",
              b"9007199254740993", b"0.1", b"123456789012345678901234567890",
              b"0." + b"0" * 400 + b"1e400", b"1" * 500 + b"e-520", b"inf", b"+Inf", b"-INF",
              b"Infinity", b"-infinity", b"NaN", b"nan", b"nAn",
              b"1e99999999999999999999999", b"0e99999999999999999999999",
              b"-1e-99999999999999999999999"]
NUMBERS_BAD = [b"", b"+", b"-", b".", b"e5", b"1e", b"1e+", b"1.2.3", b"1_000", b"0x10",
               b"0x1p-2", b" 1", b"1 ", b"+nan", b"-NaN", b"infinit", b"in", b"Inf1", b"1f",
               "\u0663".encode(), b"--1", b"1e5.5", b"nan0"]


def test_number_grammar_python() -> None:
    for tok in NUMBERS_OK:
        got = pt.parse_number(tok)
        assert got is not None, tok
        assert struct.pack("<d", got) == struct.pack("<d", float(tok)), tok
    for tok in NUMBERS_BAD:
        assert pt.parse_number(tok) is None, tok
    assert pt.parse_number(b"inf", specials=False) is None
    assert pt.parse_number(b"1.5", specials=False) == 1.5


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_number_grammar_native_is_bit_identical() -> None:
    ffi, lib = core().ffi, core().lib
    out = ffi.new("double *")

    def native(tok: bytes, specials: int = 1) -> float | None:
        rc = lib.prom_parse_number(tok, len(tok), specials, out)
        assert rc in (0, 1)
        return float(out[0]) if rc == 0 else None

    for tok in NUMBERS_OK + NUMBERS_BAD:
        a, b = native(tok), pt.parse_number(tok)
        assert (a is None) == (b is None), tok
        if a is not None and b is not None:
            assert struct.pack("<d", a) == struct.pack("<d", b), tok
    rnd = random.Random(20261128)
    for _ in range(20000):
        tok = _random_decimal(rnd)
        a, b = native(tok), pt.parse_number(tok)
        assert a is not None and b is not None, tok
        assert struct.pack("<d", a) == struct.pack("<d", b), tok
    for _ in range(5000):  # every double's shortest repr, and one digit more or less
        x = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            for tok in (repr(x).encode(), f"{x:.16e}".encode(), f"{x:.18e}".encode()):
                assert native(tok) == float(tok), tok


def _random_decimal(rnd: random.Random) -> bytes:
    digits = "".join(rnd.choice("0123456789") for _ in range(rnd.choice([1, 3, 15, 16, 17,
                                                                        19, 20, 40])))
    frac = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 25)))
    s = rnd.choice(["", "+", "-"]) + digits + ("." + frac if rnd.random() < 0.7 else "")
    if rnd.random() < 0.6:
        s += rnd.choice("eE") + rnd.choice(["", "+", "-"]) + str(rnd.randint(0, 330))
    return s.encode()


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_utf8_check_matches_cpython() -> None:
    lib = core().lib
    rnd = random.Random(7)
    pieces = [b"a", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\x80", b"\xc0\xaf",
              b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f", b"\xff", b"\xc2"]
    for _ in range(20000):
        s = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6)))
        assert lib.prom_utf8_error(s, len(s)) == pt.utf8_error(s), s


@pytest.mark.skipif(not native_available(), reason="native backend not built")
@pytest.mark.parametrize("rows,labels", [(1, 1), (2, 3), (7, 5), (64, 1000)])
def test_native_resume_gives_the_same_stream(rows: int, labels: int) -> None:
    """Tiny output capacities force prom_scan to stop FULL and resume (rows) or to be
    retried with more room (a line with more labels than fit)."""
    data = (b'# HELP x h\n# TYPE x histogram\nx_bucket{a="1",b="2",le="1"} 1\n'
            b'x_bucket{a="1",b="2",le="+Inf"} 2\nx_count{a="1",b="2"} 2\nbad{ 1\n'
            b'x_sum{a="1",b="2"} 0.5\ny{' + b",".join(b'l%d="v"' % i for i in range(40))
            + b"} 1\n")
    ref = pt.tokenize_python(data, False)
    got = pt.tokenize_native(data, False, chunk_rows=rows, chunk_labels=labels)
    for col in ("line", "kind", "name", "lab_first", "lab_count", "aux_len", "err_col", "err",
                "lab_name", "lab_value", "first_row"):
        assert list(getattr(got, col)) == list(getattr(ref, col)), col
    assert got.names == ref.names and got.strs == ref.strs
    assert [got.aux_at(i) for i in range(len(got.kind))] == [
        ref.aux_at(i) for i in range(len(ref.kind))]
