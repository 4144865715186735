"""Families, problems and lookups of inferguard.prom (both backends)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inferguard import (
    Exemplar,
    PromParseError,
    normalize_name,
    otel_to_prometheus,
    parse_text,
    stack_series,
)
from inferguard.prom._model import detect_format, lmcache_flavour, names_match


def fam_types(text: bytes, **kw: object) -> dict[str, tuple[str, list[str]]]:
    exp = parse_text(text, **kw)  # type: ignore[arg-type]
    return {f.name: (f.type, [s.name for s in f.samples]) for f in exp.families}


# ------------------------------------------------------------------ grouping

def test_histogram_and_summary_grouping(backend: str) -> None:
    text = (b"# TYPE h histogram\n"
            b'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
            b"# TYPE s summary\n"
            b's{quantile="0.5"} 1\ns_sum 2\ns_count 3\n'
            b"# TYPE c_total counter\nc_total 5\n# TYPE g gauge\ng 1\n")
    assert fam_types(text) == {
        "h": ("histogram", ["h_bucket", "h_bucket", "h_sum", "h_count"]),
        "s": ("summary", ["s", "s_sum", "s_count"]),
        "c_total": ("counter", ["c_total"]),
        "g": ("gauge", ["g"]),
    }


def test_openmetrics_suffixes(backend: str) -> None:
    text = (b"# TYPE c counter\nc_total 1\nc_created 1.7e9\n"
            b"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\nh_created 1\n"
            b"# TYPE gh gaugehistogram\ngh_bucket{le=\"+Inf\"} 1\ngh_gcount 1\ngh_gsum 1\n"
            b"# TYPE i info\ni_info{v=\"1\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\n"
            b"u 1\n# EOF\n")
    assert fam_types(text) == {
        "c": ("counter", ["c_total", "c_created"]),
        "h": ("histogram", ["h_bucket", "h_count", "h_sum", "h_created"]),
        "gh": ("gaugehistogram", ["gh_bucket", "gh_gcount", "gh_gsum"]),
        "i": ("info", ["i_info"]),
        "st": ("stateset", ["st"]),
        "u": ("unknown", ["u"]),
    }


def test_suffix_only_joins_a_typed_family(backend: str) -> None:
    # 0.0.4: `c_total` is not a sample of counter `c` (the TYPE line names the samples);
    # a suffix never joins a family that has no TYPE.
    got = fam_types(b"# TYPE c counter\nc 1\nc_total 2\n# TYPE h histogram\nh_created 1\n"
                    b"h_total 1\n# HELP x only help\nx_count 1\n")
    assert got == {"c": ("counter", ["c"]), "c_total": ("untyped", ["c_total"]),
                   "h": ("histogram", ["h_created"]), "h_total": ("untyped", ["h_total"]),
                   "x": ("untyped", []), "x_count": ("untyped", ["x_count"])}


def test_samples_group_by_name_not_position(backend: str) -> None:
    exp = parse_text(b"a 1\nb 2\na 3\n")
    assert exp.family_names() == ("a", "b")
    assert [s.value for s in exp.family("a").samples] == [1.0, 3.0]  # type: ignore[union-attr]


def test_exact_name_wins_from_its_metadata_on(backend: str) -> None:
    """A sample first joins the histogram by suffix; once a family of its exact name is
    declared, later samples of that name belong there (exact names win, as in Go)."""
    text = (b"# TYPE x histogram\nx_count 1\n# HELP x_count separate\nx_count 2\n"
            b"# TYPE x_count gauge\n")
    exp = parse_text(text)
    x, xc = exp.family("x"), exp.family("x_count")
    assert x is not None and [s.value for s in x.samples] == [1.0]
    assert xc is not None and [s.value for s in xc.samples] == [2.0]
    assert xc.help == "separate" and xc.type == "untyped"
    (p,) = exp.problems
    assert (p.line, p.expected) == (5, "TYPE for x_count before its samples")


# ------------------------------------------------------------------ metadata problems

def test_metadata_problems_text_0_0_4(backend: str) -> None:
    text = (b"# HELP a first\n# HELP a second\n# TYPE a gauge\n# TYPE a counter\na 1\n"
            b"b 1\n# TYPE b gauge\n# TYPE c widget\n# HELP d bad \\q escape\n"
            b"# HELP e \xff\n")
    exp = parse_text(text)
    a = exp.family("a")
    assert a is not None and (a.help, a.type) == ("first", "gauge")
    assert exp.family("c") is None
    assert [(p.line, p.column, p.expected) for p in exp.problems] == [
        (2, 1, "at most one HELP line for a"),
        (4, 1, "at most one TYPE line for a"),
        (7, 1, "TYPE for b before its samples"),
        (8, 10, "a metric type: one of counter, gauge, histogram, summary, untyped"),
        (9, 14, "\\\\, \\n after a backslash in HELP text"),
        (10, 10, "valid UTF-8"),
    ]


def test_help_escapes(backend: str) -> None:
    exp = parse_text(b'# HELP a x\\\\y\\nz "q"\n# HELP b x\\"y\n# EOF\n')
    assert exp.family("a").help == 'x\\y\nz "q"'  # type: ignore[union-attr]
    assert exp.family("b").help == 'x"y'  # type: ignore[union-attr]
    exp = parse_text(b'# HELP b x\\"y\n')
    assert exp.family("b") is None and exp.problems[0].line == 1


def test_openmetrics_metadata_rules(backend: str) -> None:
    text = (b"# TYPE x_seconds gauge\n# UNIT x_seconds seconds\nx_seconds 1\n"
            b"# HELP x_seconds late\n# UNIT y bytes\n# TYPE z untyped\n"
            b"# TYPE c counter\nc 1\nc_total 2\n# UNIT w b@d\n# EOF\n")
    exp = parse_text(text)
    x = exp.family("x_seconds")
    assert x is not None and (x.unit, x.help) == ("seconds", "")
    assert [(p.line, p.column, p.expected) for p in exp.problems] == [
        (4, 1, "HELP for x_seconds before its samples (OpenMetrics)"),
        (5, 10, "a unit that y ends with (after '_')"),
        (6, 10, "a metric type: one of counter, gauge, histogram, gaugehistogram, stateset, "
                "info, summary, unknown"),
        (8, 1, "a sample named c_total or c_created in counter c (OpenMetrics)"),
        (10, 10, "a unit made of [a-zA-Z0-9_:]"),
    ]
    assert [s.value for s in exp.family("c").samples] == [2.0]  # type: ignore[union-attr]


def test_openmetrics_eof_rules(backend: str) -> None:
    exp = parse_text(b"a 1\n# EOF\nb 2\n\n# EOF\n")
    assert exp.family_names() == ("a",)
    assert [(p.line, p.expected) for p in exp.problems] == [(3, "nothing after # EOF")]
    exp = parse_text(b"a 1\n", format="openmetrics")
    assert [(p.line, p.column, p.expected) for p in exp.problems] == [
        (2, 1, "'# EOF' as the last line (OpenMetrics)")]
    assert exp.family("a") is not None


def test_bound_labels(backend: str) -> None:
    text = (b"# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket 2\nh_bucket{le=\"x\"} 3\n"
            b"h_bucket{le=\"+Inf\"} 4\nh_count 4\n# TYPE s summary\ns{quantile=\"0.9\"} 1\n"
            b"s 2\ns{quantile=\"NaN\"} 3\ns_sum 1\n")
    exp = parse_text(text)
    assert [(p.line, p.expected) for p in exp.problems] == [
        (3, "an 'le' label holding a number"), (4, "an 'le' label holding a number"),
        (9, "a 'quantile' label holding a number")]
    h = exp.family("h")
    assert h is not None and [s.value for s in h.samples] == [1.0, 4.0, 4.0]
    s = exp.family("s")
    assert s is not None and [x.value for x in s.samples] == [1.0, 3.0, 1.0]


def test_exemplars(backend: str) -> None:
    text = (b'# TYPE c counter\nc_total 1 # {trace_id="a\\"b"} 0.5 1700000000.5\n'
            b'# TYPE h histogram\nh_bucket{le="+Inf"} 1 # {} NaN\nh_count 1\nh_sum 1\n'
            b'# TYPE g gauge\ng 1 # {a="1"} 1\n'
            b'c2_total 1 # {a="1",a="2"} 1\n'
            b'# TYPE c3 counter\nc3_total 1 # {a="' + b"x" * 128 + b'"} 1\n# EOF\n')
    exp = parse_text(text)
    (c,) = exp.family("c").samples  # type: ignore[union-attr]
    assert c.exemplar == Exemplar((("trace_id", 'a"b'),), 0.5, 1700000000.5)
    hb = exp.family("h").samples[0]  # type: ignore[union-attr]
    assert hb.exemplar is not None and math.isnan(hb.exemplar.value)
    assert hb.exemplar.labels == () and hb.exemplar.timestamp is None
    assert exp.family("g").samples[0].exemplar is None  # type: ignore[union-attr]
    assert [(p.line, p.expected) for p in exp.problems] == [
        (8, "an exemplar only on a histogram bucket or a counter's _total sample"),
        (9, "exemplar label names without repeats"),
        (11, "exemplar labels of at most 128 characters")]
    skipped = parse_text(text, exemplars=False)
    assert skipped.problems == ()
    assert all(s.exemplar is None for f in skipped.families for s in f.samples)


def test_timestamps_are_seconds(backend: str) -> None:
    t04 = parse_text(b"a 1 1700000000123\nb 2\n")
    assert t04.family("a").samples[0].timestamp == 1700000000.123  # type: ignore[union-attr]
    assert t04.family("b").samples[0].timestamp is None  # type: ignore[union-attr]
    om = parse_text(b"a 1 1700000000.123\n# EOF\n")
    assert om.family("a").samples[0].timestamp == 1700000000.123  # type: ignore[union-attr]
    assert np.isnan(t04.timestamps[1])


def test_crlf_and_problem_columns_in_characters(backend: str) -> None:
    exp = parse_text('a 1\r\nb{x="é",y=1} 2\r\n'.encode())
    assert exp.family("a") is not None
    (p,) = exp.problems
    assert (p.line, p.column, p.text) == (2, 11, 'b{x="é",y=1} 2')


def test_strict_raises_the_first_problem_in_line_order(backend: str) -> None:
    text = b"# TYPE h histogram\nh_bucket 1\nbad{ 2\n"
    exp = parse_text(text)
    assert [p.line for p in exp.problems] == [2, 3]
    with pytest.raises(PromParseError) as err:
        parse_text(text, strict=True)
    assert err.value.problem.line == 2
    assert parse_text(b"ok 1\n", strict=True).ok


def test_format_detection() -> None:
    assert detect_format(b"a 1\n# EOF\n") == "openmetrics"
    assert detect_format(b"a 1\n# EOF") == "openmetrics"
    assert detect_format(b"# EOF\n") == "openmetrics"
    assert detect_format(b"a 1\n# EOFX\n") == "prometheus"
    assert detect_format(b"a 1\n # EOF\n") == "prometheus"
    assert detect_format(b"") == "prometheus"
    with pytest.raises(ValueError):
        parse_text(b"a 1\n", format="json")  # type: ignore[arg-type]


# ------------------------------------------------------------------ lookups

TEXT = (b'# HELP target_info Target metadata\n# TYPE target_info gauge\n'
        b'target_info{service_instance_id="A",service_name="x"} 1\n'
        b'target_info{service_instance_id="B",service_name="x"} 1\n'
        b'# TYPE lmcache_mp_lookup_hit_tokens_total counter\n'
        b'lmcache_mp_lookup_hit_tokens_total{cache_salt="",model_name="m"} 0\n'
        b'lmcache_mp_lookup_hit_tokens_total{cache_salt="tenant-a",model_name="m"} 0\n'
        b'# TYPE lmcache:num_hit_tokens_total counter\nlmcache:num_hit_tokens_total 5\n'
        b'# TYPE empty gauge\n'
        b'# TYPE h histogram\n'
        b'h_bucket{w="1",le="0.1"} 1\nh_bucket{w="1",le="+Inf"} 3\nh_bucket{le="1",w="1"} 2\n'
        b'h_bucket{w="2",le="+Inf"} 0\nh_sum{w="1"} 1\nh_count{w="1"} 3\n'
        b'# TYPE z gauge\nz NaN\nz{a="b"} -0\n')


def test_lookups(backend: str) -> None:
    exp = parse_text(TEXT)
    assert exp.label_values("target_info", "service_instance_id") == {"A", "B"}
    assert exp.label_values("lmcache_mp_lookup_hit_tokens_total", "cache_salt") == {
        "", "tenant-a"}
    assert exp.label_values("target_info", "nope") == frozenset()
    assert exp.label_values(None, "cache_salt") == {"", "tenant-a"}
    assert exp.label_values(None, "w") == {"1", "2"}
    assert exp.all_zero("lmcache_mp_lookup_hit_tokens_total")
    assert not exp.all_zero("empty") and not exp.all_zero("z") and not exp.all_zero("h")
    assert exp.zero_families() == ("lmcache_mp_lookup_hit_tokens_total",)
    assert exp.sample_count("h") == 6
    assert exp.family_type("h") == "histogram" and exp.family_type("nope") is None
    assert exp.bucket_counts("h") == {
        (("w", "1"),): ((0.1, 1.0), (1.0, 2.0), (math.inf, 3.0)),
        (("w", "2"),): ((math.inf, 0.0),)}
    with pytest.raises(KeyError):
        exp.all_zero("nope")
    assert exp.find("lmcache_num_hit_tokens").name == "lmcache:num_hit_tokens_total"  # type: ignore[union-attr]
    assert [f.name for f in exp.find_all("lmcache:num_hit_tokens")] == [
        "lmcache:num_hit_tokens_total"]
    assert exp.find("lmcache_mp.lookup_hit", unit="tokens").name == (  # type: ignore[union-attr]
        "lmcache_mp_lookup_hit_tokens_total")
    assert exp.family("h") is exp.family("h")  # built once


def test_summary(backend: str) -> None:
    s = parse_text(TEXT, path="t.txt").summary()
    assert (s.path, s.format, s.backend) == ("t.txt", "prometheus", backend)
    assert s.types == {"counter": 2, "gauge": 3, "histogram": 1}
    assert s.families == 6 and s.samples == 13 and s.series == 13
    assert s.all_zero == ["lmcache_mp_lookup_hit_tokens_total"]
    assert s.no_samples == ["empty"]
    assert s.lmcache == {"lmcache_mp": ["lmcache_mp_lookup_hit_tokens_total"],
                         "lmcache:": ["lmcache:num_hit_tokens_total"]}
    by = {f.name: f for f in s.family_list}
    assert (by["h"].samples, by["h"].series) == (6, 6)


def test_numpy_view_and_stacking(backend: str) -> None:
    a = parse_text(b'm{x="1",y="2"} 1\nm{y="3",x="1"} 2\nn 3\n')
    b = parse_text(b'n 30\nm{y="2",x="1"} 10\no 7\n')
    va = a.to_numpy()
    assert va.values.dtype == np.float64 and list(va.values) == [1.0, 2.0, 3.0]
    assert va.keys[0] == ("m", (("x", "1"), ("y", "2")))
    assert va.index[("n", ())] == 2
    assert list(va.family) == [0, 0, 1]
    keys, matrix = stack_series([a, b])
    assert keys == (("m", (("x", "1"), ("y", "2"))), ("m", (("x", "1"), ("y", "3"))),
                    ("n", ()), ("o", ()))
    assert np.array_equal(matrix, np.array([[1, 2, 3, np.nan], [10, np.nan, 30, 7]]),
                          equal_nan=True)
    dup = parse_text(b'm{a="1",b="2"} 1\nm{b="2",a="1"} 2\n')
    assert list(dup.series_counts()) == [1]
    assert dup.to_numpy().index[("m", (("a", "1"), ("b", "2")))] == 1


def test_model_is_read_only(backend: str) -> None:
    exp = parse_text(b"a 1\n")
    with pytest.raises(ValueError):
        exp.values[0] = 2.0
    fam = exp.family("a")
    assert fam is not None
    with pytest.raises(AttributeError):
        fam.name = "b"  # type: ignore[misc]


# ------------------------------------------------------------------ names

def test_name_normalisation() -> None:
    assert normalize_name("lmcache:num_hit_tokens") == "lmcache_num_hit_tokens"
    assert normalize_name("lmcache:num_hit_tokens_total") == "lmcache_num_hit_tokens"
    assert names_match("lmcache:num_hit_tokens", "lmcache_num_hit_tokens_total")
    assert names_match("lmcache_mp.event_bus.queue_depth", "lmcache_mp_event_bus_queue_depth")
    assert not names_match("x_created", "x")
    assert otel_to_prometheus("lmcache_mp.l1_write", "chunks", counter=True) == (
        "lmcache_mp_l1_write_chunks_total")
    assert otel_to_prometheus("lmcache_mp.event_bus.dropped_events_total", counter=True) == (
        "lmcache_mp_event_bus_dropped_events_total")
    assert otel_to_prometheus("lmcache_mp.l1_chunk_reuse_gap", "s") == (
        "lmcache_mp_l1_chunk_reuse_gap_seconds")
    assert otel_to_prometheus("lmcache_mp.real_reuse_gap_objects", "{chunks}") == (
        "lmcache_mp_real_reuse_gap_objects")
    assert otel_to_prometheus("lmcache_mp.l0_l1_store_throughput", "GB/s") == (
        "lmcache_mp_l0_l1_store_throughput_GB_per_second")
    assert otel_to_prometheus("lmcache_mp.l1_memory_usage_bytes", "By") == (
        "lmcache_mp_l1_memory_usage_bytes")
    assert otel_to_prometheus("x.ratio", "1") == "x_ratio"
    assert otel_to_prometheus("9lives..x", "m/s") == "_lives_x_meters_per_second"
    assert otel_to_prometheus("lmcache_blend.lookup", "ms") == (
        "lmcache_blend_lookup_milliseconds")
    assert [lmcache_flavour(n) for n in ("lmcache_mp_x", "lmcache_blend_y", "lmcache:z",
                                         "lmcache_w", "vllm:lmcache_mp_q", "lmcachex")] == [
        "lmcache_mp", "lmcache_blend", "lmcache:", "lmcache_", None, None]


def test_unique_ids_is_numpy_unique_with_inverse() -> None:
    """The sort-free unique of string ids (family facts' bucket and label sums) gives
    np.unique's ids and inverse, empty input included."""
    import numpy as np

    from inferguard.prom._model import _unique_ids

    rng = np.random.default_rng(5)
    for size, n in ((1, 0), (1, 5), (40, 200), (5000, 3), (5000, 10000)):
        a = rng.integers(0, size, n).astype(np.int64)
        ids, inv = _unique_ids(a, size)
        want_ids, want_inv = np.unique(a, return_inverse=True)
        assert ids.tolist() == want_ids.tolist()
        assert inv.tolist() == want_inv.reshape(-1).tolist()
        assert (ids[inv] == a).all()


def test_distinct_pairs_is_the_sorted_unique_of_the_packed_pairs() -> None:
    """The presence-table road and the sort road (taken when the table would be much
    bigger than the input) give `_sorted_unique((name << 32) | value)`."""
    import numpy as np

    from inferguard.prom._model import _distinct_pairs, _sorted_unique

    rng = np.random.default_rng(6)
    for size, n, names in ((1, 0, 1), (3, 10, 2), (500, 300_000, 6), (100_000, 50, 40),
                           (70_000, 200_000, 3)):
        lname = rng.integers(0, min(names, size), n).astype(np.int64)
        lname = rng.permutation(size)[:max(names, 1)][lname] if n else lname  # scattered ids
        lval = rng.integers(0, size, n).astype(np.int64)
        got = _distinct_pairs(lname, lval, size)
        assert got.dtype == np.int64
        assert got.tolist() == _sorted_unique((lname << 32) | lval).tolist()
