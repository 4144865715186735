"""The metrics summary's road without numpy (`prom._summary.clean_summary`: prom_scan rows,
the family rules per name, prom_brief.c per row) gives exactly the summary of the numpy
road (`parse_text(...).summary()`) on every recorded scrape, generated expositions and
seeded random ones; it declines (None) wherever a problem must be reported or a per-row
rule applies, and then the general road decides; `inferguard metrics summary` on a
well-formed scrape imports no numpy."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from inferguard._native import native_available
from inferguard.prom._brief import clean_summary, summarize_metrics, summarize_text
from inferguard.prom._model import parse_text
from tests.cli_imports import run_cli
from tests.prom_gen import generate_exposition
from tests.test_metrics_columnar import EDGE, SCRAPES

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")


def numpy_road(data: bytes, path: str = "<text>") -> dict[str, object]:
    return msgspec.to_builtins(parse_text(data, path=path, backend="native").summary())


def brief_road(data: bytes, path: str = "<text>") -> dict[str, object] | None:
    got = clean_summary(data, path)
    return None if got is None else msgspec.to_builtins(got)


CLEAN = b"""# HELP c_total A counter.
# TYPE c_total counter
c_total{a="x"} 1
c_total{a="x\\\"q"} 2
c_total{a="y"} NaN
c_total{a="z"} 0
c_total{a="z"} -0.0
# TYPE g gauge
g{a="1",b="2"} 3
g{b="2",a="1"} 4
g 0
# TYPE h histogram
h_bucket{le="0.1",m="a"} 1
h_bucket{m="a",le="1"} 2
h_bucket{le="+Inf",m="a"} 9
h_bucket{le="1e3",m="b\\\\"} 0
h_count{m="a"} 9
h_sum{m="a"} 1.5
h_created{m="a"} 5
# TYPE s summary
s{quantile="0.5"} 1
s{quantile="0.5",x="1"} 1
s_count 4
s_sum 2
# TYPE zero gauge
zero{k="1"} 0
zero{k="2"} 0
# TYPE empty counter
# HELP lmcache:hit_rate rate
lmcache:hit_rate 0.5
lmcache_mp_l1_write_total 3
vllm:num_requests_running 1
untyped_thing 1 1700000000000
"""


def test_a_clean_exposition_takes_the_brief_road_and_matches() -> None:
    got = brief_road(CLEAN)
    assert got is not None
    assert got == numpy_road(CLEAN)
    # the figures themselves, from the text above (not from either road)
    fams = {f["name"]: f for f in got["family_list"]}  # type: ignore[index, union-attr]
    assert (fams["c_total"]["samples"], fams["c_total"]["series"]) == (5, 4)
    assert (fams["g"]["samples"], fams["g"]["series"]) == (3, 2)  # label order is no series
    assert fams["zero"]["all_zero"] and not fams["c_total"]["all_zero"]
    assert fams["h"]["samples"] == 7 and fams["h"]["series"] == 7
    assert fams["empty"]["samples"] == 0 and "empty" in got["no_samples"]  # type: ignore[operator]
    assert got["samples"] == 25 and got["problem_count"] == 0


@pytest.mark.parametrize("path", SCRAPES, ids=lambda p: p.name)
def test_every_recorded_scrape(path: Path) -> None:
    data = path.read_bytes()
    brief = brief_road(data, str(path))
    if brief is not None:
        assert brief == numpy_road(data, str(path))
    assert msgspec.to_builtins(summarize_text(data, path=str(path), backend="native")) \
        == numpy_road(data, str(path))


def test_recorded_0_0_4_scrapes_are_clean() -> None:
    """The road is for real scrapes: the recorded 0.0.4 ones all take it."""
    taken = [p for p in SCRAPES if brief_road(p.read_bytes()) is not None]
    assert len(taken) >= 5, taken


@pytest.mark.parametrize("sets", [0, 1, 7, 300])
def test_generated_expositions(sets: int) -> None:
    data = generate_exposition(sets)
    assert brief_road(data) is not None
    assert brief_road(data) == numpy_road(data)


# Lines the seeded texts draw from: well-formed ones mostly, and each kind of trouble.
LINES = [b"# TYPE h histogram", b"# TYPE s summary", b"# TYPE c counter", b"# HELP c help",
         b"# HELP h_bucket a help line naming a sample name", b"# TYPE g gauge",
         b'h_bucket{le="0.5",a="1"} 1', b'h_bucket{a="2",le="+Inf"} 2', b'h_bucket{a="1"} 3',
         b'h_bucket{le="x"} 1', b"h_count 2", b"h_sum 0", b'h_created 1',
         b's{quantile="0.9"} 1', b"s 2", b"s_count 0", b'c{a="1"} 0', b'c{a="1"} 1',
         b'c{b="2",a="1"} 2', b"c NaN", b"c -0", b"g 0", b'g{z="\\\\"} 1', b"# comment",
         b"", b"bad line {", b"u 1", b'u{a="1",a="1"} 1', b"lmcache:x 1", b"# EOF"]


@pytest.mark.parametrize("seed", range(40))
def test_seeded_texts_agree_on_both_roads(seed: int) -> None:
    rnd = random.Random(seed)
    pool = LINES if seed % 2 else [ln for ln in LINES if ln not in (b"bad line {", b"# EOF")]
    data = b"\n".join(rnd.choice(pool) for _ in range(rnd.randint(0, 60))) + b"\n"
    brief = brief_road(data)
    if brief is not None:
        assert brief == numpy_road(data)
        assert brief["problem_count"] == 0
    assert msgspec.to_builtins(summarize_text(data, backend="native")) == numpy_road(data)


def _block_text(rnd: random.Random) -> bytes:
    """A well-formed 0.0.4 text: families in blocks (HELP/TYPE, then samples with random
    label orders, repeats, zeros, NaN, escapes), the shape real scrapes have."""
    out: list[bytes] = []
    for fi in range(rnd.randint(0, 8)):
        typ = rnd.choice(["counter", "gauge", "histogram", "summary", "untyped", None])
        name = f"f{fi}".encode()
        if rnd.random() < 0.5:
            out.append(b"# HELP " + name + b" some \\\\ help")
        if typ:
            out.append(b"# TYPE " + name + b" " + typ.encode())
        for _ in range(rnd.randint(0, 12)):
            labels = [(k, rnd.choice([b"1", b"2", b'x\\\\\\"y', b""])) for k in
                      rnd.sample([b"a", b"b", b"c"], rnd.randint(0, 3))]
            value = rnd.choice([b"0", b"-0", b"1", b"NaN", b"+Inf", b"2.5e3"])
            suffix = b""
            if typ == "histogram":
                suffix = rnd.choice([b"_bucket", b"_bucket", b"_sum", b"_count", b"_created"])
                if suffix == b"_bucket":
                    labels.append((b"le", rnd.choice([b"0.5", b"1", b"+Inf", b"1e2"])))
            elif typ == "summary":
                suffix = rnd.choice([b"", b"_sum", b"_count"])
                if not suffix:
                    labels.append((b"quantile", rnd.choice([b"0.5", b"0.99"])))
            rnd.shuffle(labels)
            body = b",".join(k + b'="' + v + b'"' for k, v in labels)
            out.append(name + suffix + (b"{" + body + b"}" if labels or rnd.random() < 0.2
                                        else b"") + b" " + value)
    return b"\n".join(out) + b"\n"


@pytest.mark.parametrize("seed", range(60))
def test_seeded_well_formed_texts_take_the_road_and_agree(seed: int) -> None:
    data = _block_text(random.Random(seed))
    brief = brief_road(data)
    assert brief is not None, data
    assert brief == numpy_road(data)


@pytest.mark.parametrize("text, why", [
    (EDGE, "the columnar edge cases (a repeated label, bad le values)"),
    (b"x 1\nbad {\n", "a malformed line"),
    (b"# TYPE h histogram\nh_bucket{a=\"1\"} 1\n", "a bucket without le"),
    (b"# TYPE h histogram\nh_bucket{le=\"abc\"} 1\n", "a bucket whose le is no number"),
    (b"# TYPE s summary\ns 1\n", "a quantile sample without quantile"),
    (b"# TYPE x gauge\nx 1\n# TYPE x gauge\n", "a second TYPE line"),
    (b"x 1\n# TYPE x gauge\n", "TYPE after the samples"),
    (b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\n# HELP h_bucket b\nh_bucket{le=\"1\"} 2\n",
     "a HELP line that gives a sample name its own family"),
    (b"# TYPE x gauge\nx 1\n# EOF\n", "OpenMetrics"),
    (b"# HELP x \\q\nx 1\n", "a bad escape in HELP"),
])
def test_where_the_road_declines_the_general_road_decides(text: bytes, why: str) -> None:
    assert brief_road(text) is None, why
    got = summarize_text(text, backend="native")
    assert msgspec.to_builtins(got) == numpy_road(text)


@pytest.mark.parametrize("text", [
    b"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"1e-3\",a=\"b\"} 1\n",
    b"# TYPE s summary\ns{quantile=\"0.99\"} 1\ns_sum 1\n",
    b"# TYPE x gauge\n# HELP x text\nx 1\n",
    b"x_bucket 1\n",  # untyped: no bound needed
])
def test_near_misses_stay_on_the_road(text: bytes) -> None:
    assert brief_road(text) == numpy_road(text)
    assert brief_road(text) is not None


def test_the_kernel_refuses_ids_out_of_range() -> None:
    from inferguard._native import _prom as native

    rows = native.tokenize_rows(b"x 1\ny{a=\"b\"} 2\n", False)
    assert rows is not None
    n = len(rows.names)
    assert native.brief(rows, [0] * n, [0] * n, -1, -1, 1)[:3] == ([2], [0], [2])
    with pytest.raises(ValueError, match="out of range"):
        native.brief(rows, [5] * n, [0] * n, -1, -1, 1)  # family past n_fams
    with pytest.raises(ValueError, match="out of range"):
        native.brief(rows, [0] * (n - 1), [0] * (n - 1), -1, -1, 1)  # name past
    with pytest.raises(ValueError, match="out of range"):
        native.brief(rows, [0] * n, [3] * n, -1, -1, 1)  # no such role


def test_short_lines_fall_back_to_the_general_road(tmp_path: Path) -> None:
    data = b"a 1\n" * 100_000  # ~4 bytes a line: more lines than the one call has room for
    from inferguard._native import _prom as native

    assert native.tokenize_rows(data, False) is None
    assert msgspec.to_builtins(summarize_text(data, backend="native")) == numpy_road(data)


def test_a_mapped_file_gives_the_read_file_summary(tmp_path: Path) -> None:
    data = generate_exposition(4000)
    assert len(data) >= 1 << 20  # mapped, not read
    path = tmp_path / "scrape.prom"
    path.write_bytes(data)
    assert msgspec.to_builtins(summarize_metrics(path)) == numpy_road(data, str(path))
    bad = tmp_path / "bad.prom"
    bad.write_bytes(data + b"broken {\n")  # mapped, declined, then read from the map
    got = summarize_metrics(bad)
    assert got.problem_count == 1
    assert msgspec.to_builtins(got) == numpy_road(data + b"broken {\n", str(bad))
    assert bad.read_bytes() == data + b"broken {\n"


def test_metrics_summary_on_a_scrape_imports_no_numpy(tmp_path: Path) -> None:
    path = tmp_path / "scrape.prom"
    path.write_bytes(generate_exposition(4000))
    rc, numpy_loaded, got = run_cli(["metrics", "summary", str(path), "--json"])
    assert rc == 0 and not numpy_loaded
    assert got["backend"] == "native" and got["samples"] > 10_000
    assert got == {**numpy_road(path.read_bytes(), str(path)), "path": str(path)}
