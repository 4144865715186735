"""Differential tests against prometheus_client's own parsers.

On the real LMCache 0.5.6 `/metrics` files and on generated vLLM/LMCache expositions (text
0.0.4 and OpenMetrics 1.0), InferGuard and prometheus_client must find the same families,
types, help, units and samples, value for value (NaN equal to NaN). prometheus_client
reshapes a few things on purpose; `as_prometheus_client` applies exactly those documented
reshapings to our model before comparing, and nothing else. Where the two parsers disagree
because prometheus_client is wrong or lenient, a test below names the case and the rule of
the format that decides it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as pc_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as pc_text

from inferguard import Exposition, parse_text

from .conftest import UPSTREAM
from .prom_gen import generate_exposition

REAL = sorted((UPSTREAM / "metrics").glob("*/metrics_*.txt"))

Row = tuple[str, tuple[tuple[str, str], ...], Any, Any, Any]
Fam = tuple[str, str, str, list[Row]]


def _num(v: Any) -> Any:
    """Values compare as floats, NaN equal to NaN."""
    f = float(v)
    return "NaN" if math.isnan(f) else f


def _pc_ts(ts: Any) -> Any:
    if ts is None:
        return None
    if hasattr(ts, "sec"):  # OpenMetrics Timestamp(sec, nsec): the exact decimal
        return float(Decimal(ts.sec) + Decimal(ts.nsec) / Decimal(10**9))
    return float(ts)


def _pc_exemplar(ex: Any) -> Any:
    if ex is None:
        return None
    return (tuple(sorted(ex.labels.items())), _num(ex.value), _pc_ts(ex.timestamp))


def from_prometheus_client(text: str, openmetrics: bool) -> list[Fam]:
    parse = pc_openmetrics if openmetrics else pc_text
    out: list[Fam] = []
    for m in parse(text):
        rows = [(s.name, tuple(sorted(s.labels.items())), _num(s.value), _pc_ts(s.timestamp),
                 _pc_exemplar(getattr(s, "exemplar", None))) for s in m.samples]
        unit = getattr(m, "unit", "") or ""
        # prometheus_client yields a 0.0.4 sample without metadata as a family of its own,
        # one per line; merge such runs (see test_untyped_runs_are_one_family).
        if out and out[-1][0] == m.name and m.type == "unknown" and out[-1][1] == "unknown":
            out[-1][3].extend(rows)
            continue
        out.append((m.name, m.type, m.documentation, rows) if not openmetrics
                   else (m.name, m.type, m.documentation + "|" + unit, rows))
    return out


def as_prometheus_client(exp: Exposition) -> list[Fam]:
    """Our model, reshaped the ways prometheus_client reshapes on purpose:

    * text 0.0.4: a counter family is named without `_total` (OpenMetrics naming), and a
      counter sample not already ending in `_total` gets it appended;
    * text 0.0.4 `untyped` is reported as OpenMetrics `unknown`.
    """
    om = exp.format == "openmetrics"
    out: list[Fam] = []
    for f in exp.families:
        name, typ = f.name, f.type
        rows = []
        for s in f.samples:
            sname = s.name
            if not om and typ == "counter" and not sname.endswith("_total"):
                sname += "_total"
            ex = None if s.exemplar is None else (
                tuple(sorted(s.exemplar.labels)), _num(s.exemplar.value), s.exemplar.timestamp)
            rows.append((sname, tuple(sorted(s.labels)), _num(s.value), s.timestamp, ex))
        if not om and typ == "counter" and name.endswith("_total"):
            name = name[:-6]
        if typ == "untyped":
            typ = "unknown"
        out.append((name, typ, f.help, rows) if not om else (name, typ, f.help + "|" + f.unit,
                                                             rows))
    return out


def assert_same(data: bytes, backend: str, openmetrics: bool) -> Exposition:
    exp = parse_text(data, format="openmetrics" if openmetrics else "prometheus")
    assert exp.backend == backend
    assert exp.problems == ()
    ours = as_prometheus_client(exp)
    theirs = from_prometheus_client(data.decode(), openmetrics)
    assert [f[:3] for f in ours] == [f[:3] for f in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a[3] == b[3], a[0]
    return exp


@pytest.mark.parametrize("path", REAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_lmcache_files(backend: str, path: Path) -> None:
    exp = assert_same(path.read_bytes(), backend, openmetrics=False)
    assert len(exp) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_text_0_0_4(backend: str, seed: int) -> None:
    exp = assert_same(generate_exposition(40, seed=seed), backend, openmetrics=False)
    assert len(exp) > 4000
    assert exp.family("vllm:e2e_request_latency_seconds").type == "histogram"  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_openmetrics(backend: str, seed: int) -> None:
    exp = assert_same(generate_exposition(40, openmetrics=True, seed=seed), backend,
                      openmetrics=True)
    assert exp.format == "openmetrics"
    assert any(s.exemplar is not None for f in exp.families for s in f.samples)
    assert exp.family("vllm:time_to_first_token_seconds").unit == "seconds"  # type: ignore[union-attr]


def test_openmetrics_hand_made_types(backend: str) -> None:
    text = (b"# TYPE gh gaugehistogram\n"
            b'gh_bucket{le="1"} 1\ngh_bucket{le="+Inf"} 2\ngh_gcount 2\ngh_gsum 3\n'
            b'# TYPE i info\ni_info{version="1.2"} 1\n'
            b'# TYPE st stateset\nst{st="a"} 1\nst{st="b"} 0\n'
            b'# TYPE s summary\ns{quantile="0.5"} 1.5\ns_sum 3\ns_count 2\ns_created 1.5e9\n'
            b"# HELP u docs\nu 1 1700000000.123456789\n# EOF\n")
    assert_same(text, backend, openmetrics=True)


# ---------------------------------------------------------- where the two disagree

def _pc(text: str, openmetrics: bool = False) -> list[tuple[str, str, list[Any]]] | str:
    try:
        return [(m.name, m.type, [(s.name, s.value, s.timestamp) for s in m.samples])
                for m in (pc_openmetrics if openmetrics else pc_text)(text)]
    except ValueError as exc:
        return f"ValueError: {exc}"


def _expected(text: str) -> list[str]:
    return [p.expected for p in parse_text(text.encode()).problems]


def test_signed_nan_is_not_a_number(backend: str) -> None:
    """`+nan`: prometheus_client uses Python's float() and accepts it. The OpenMetrics ABNF
    allows only an unsigned "NaN" (sign only before inf/infinity), and Go's ParseFloat,
    which Prometheus uses for 0.0.4, rejects a signed NaN too."""
    assert _pc("x +nan\n") != [] and isinstance(_pc("x +nan\n"), list)
    assert _expected("x +nan\n") == ["a number (decimal, exponent, NaN, +Inf or -Inf)"]


def test_unicode_digits_are_not_digits(backend: str) -> None:
    """`x ٣`: prometheus_client's int() reads ARABIC-INDIC DIGIT THREE as 3. Numbers are
    ASCII: ABNF DIGIT is %x30-39 (OpenMetrics), and Go's ParseFloat agrees."""
    assert _pc("x \u0663\n") == [("x", "unknown", [("x", 3, None)])]
    assert _expected("x \u0663\n") == ["a number (decimal, exponent, NaN, +Inf or -Inf)"]


def test_text_timestamps_are_int64_milliseconds(backend: str) -> None:
    """0.0.4 timestamps are int64 milliseconds (the format doc; Go's strconv.ParseInt).
    prometheus_client reads `1.5` as 0.0015 s and accepts values past int64."""
    assert _pc("x 1 1.5\n") == [("x", "unknown", [("x", 1, 0.0015)])]
    assert _pc("x 1 9223372036854775808\n") == [
        ("x", "unknown", [("x", 1, 9223372036854775808 / 1000)])]
    assert _expected("x 1 1.5\n") == ["a timestamp"]
    assert _expected("x 1 9223372036854775808\n") == ["a timestamp"]


def test_extra_tokens_are_an_error(backend: str) -> None:
    """A sample line is `name[{labels}] value [timestamp]`. prometheus_client keeps the
    first and the last token, so `x 1 2 3` gets timestamp 3 ms, and a 0.0.4 line carrying an
    OpenMetrics exemplar gets the exemplar's value as its timestamp. Exemplars exist only in
    OpenMetrics."""
    assert _pc("x 1 2 3\n") == [("x", "unknown", [("x", 1, 0.003)])]
    assert _pc('x 1 # {a="b"} 2\n') == [("x", "unknown", [("x", 1, 0.002)])]
    assert _expected("x 1 2 3\n") == ["the end of the line"]
    assert _expected('x 1 # {a="b"} 2\n') == ["a timestamp"]


def test_counter_samples_keep_their_written_name(backend: str) -> None:
    """`# TYPE x counter` then `x 1` in 0.0.4: prometheus_client renames the sample to
    `x_total`. In 0.0.4 the sample name is what is written (Go's text parser keeps `x`);
    the `_total` convention belongs to OpenMetrics."""
    assert _pc("# TYPE x counter\nx 1\n") == [("x", "counter", [("x_total", 1, None)])]
    exp = parse_text(b"# TYPE x counter\nx 1\n")
    assert [s.name for s in exp.family("x").samples] == ["x"]  # type: ignore[union-attr]


def test_untyped_runs_are_one_family(backend: str) -> None:
    """`a 1` `a 2` without metadata: prometheus_client yields two families named `a`. All
    lines of one metric name form one family (Go's text parser groups by name)."""
    assert _pc("a 1\na 2\n") == [("a", "unknown", [("a", 1, None)]),
                                 ("a", "unknown", [("a", 2, None)])]
    exp = parse_text(b"a 1\na 2\n")
    assert exp.family_names() == ("a",) and len(exp) == 2


def test_only_three_escapes_in_label_values(backend: str) -> None:
    """`\\q` in a label value: prometheus_client keeps it as two characters. The format
    allows exactly `\\\\`, `\\"` and `\\n` in label values (0.0.4 doc, OpenMetrics ABNF
    escaped-char); Go's parser reports an invalid escape sequence."""
    assert _pc('x{a="\\q"} 1\n') == [("x", "unknown", [("x", 1, None)])]
    assert _expected('x{a="\\q"} 1\n') == ["\\\\, \\\" or \\n after a backslash"]


def test_help_escapes_are_checked(backend: str) -> None:
    """`# HELP x a\\qb`: prometheus_client keeps `\\q`. 0.0.4 HELP text allows only `\\\\`
    and `\\n` (Go: invalid escape sequence); the line is reported and not used."""
    fams = _pc("# HELP x a\\qb\n# TYPE x gauge\nx 1\n")
    assert isinstance(fams, list) and fams[0][1] == "gauge"
    assert _expected("# HELP x a\\qb\n# TYPE x gauge\nx 1\n") == [
        "\\\\, \\n after a backslash in HELP text"]


def test_one_type_line_per_family(backend: str) -> None:
    """A second TYPE line: prometheus_client silently takes the last one. "Only one TYPE
    line may exist for a given metric name" (0.0.4 doc; Go: second TYPE line): the first
    stays and the second is a problem."""
    assert _pc("# TYPE x gauge\n# TYPE x counter\nx 1\n") == [
        ("x", "counter", [("x_total", 1, None)])]
    exp = parse_text(b"# TYPE x gauge\n# TYPE x counter\nx 1\n")
    assert exp.family_type("x") == "gauge"
    assert [p.line for p in exp.problems] == [2]


def test_openmetrics_counter_sample_names(backend: str) -> None:
    """OpenMetrics `# TYPE x counter` then `x 1`: both refuse it. prometheus_client aborts
    the whole parse ("Clashing name"); InferGuard reports the line (a counter's samples
    are x_total / x_created) and keeps everything else."""
    text = "# TYPE x counter\nx 1\nx_total 2\n# EOF\n"
    assert _pc(text, openmetrics=True) == "ValueError: Clashing name: x"
    exp = parse_text(text.encode())
    assert [s.value for s in exp.family("x").samples] == [2.0]  # type: ignore[union-attr]
    assert len(exp.problems) == 1


def test_created_series_join_their_histogram(backend: str) -> None:
    """A 0.0.4 histogram's `x_created` sample written without metadata of its own:
    prometheus_client's text parser yields it as a separate `unknown` family. It is the
    histogram's creation time (OpenMetrics lists `_created` among a histogram's and a
    summary's samples), so InferGuard keeps it in the histogram family."""
    text = "# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\nx_count 1\nx_sum 1\nx_created 1.7e9\n"
    assert [(n, t) for n, t, _ in _pc(text)] == [("x", "histogram"), ("x_created", "unknown")]
    exp = parse_text(text.encode())
    assert exp.family_names() == ("x",)
    assert [s.name for s in exp.family("x").samples][-1] == "x_created"  # type: ignore[union-attr]

