"""The metrics evidence's road without numpy (`prom._brief.clean_facts`: prom_scan rows, the
family rules per name, prom_facts.c per row) keeps exactly the family facts, summary and
service instance ids of the numpy road (`parse_text(...).family_facts()`, on both
backends) on every recorded scrape, generated expositions and seeded texts; it declines
where the kernel cannot decide a figure, and the evidence is then the general road's;
`lmcache-compat` on a well-formed scrape imports no numpy and gives the same verdict."""

from __future__ import annotations

import math
import random
from pathlib import Path

import msgspec
import pytest

from inferguard._native import native_available
from inferguard.evidence._metrics import MAX_LABEL_VALUES, family_stats, read_metrics
from inferguard.prom._brief import clean_facts
from inferguard.prom._model import parse_text
from inferguard.prom._summary import FamilyFacts
from tests.cli_imports import run_cli
from tests.prom_gen import generate_exposition
from tests.test_metrics_brief import CLEAN, LINES, _block_text
from tests.test_metrics_columnar import EDGE, SCRAPES, oracle_family_stats

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")

KEEP = MAX_LABEL_VALUES


def numpy_road(data: bytes, path: str = "<text>", backend: str = "native",
               keep: int = KEEP) -> tuple[object, list[FamilyFacts], set[str]]:
    exp = parse_text(data, path=path, backend=backend)  # type: ignore[arg-type]
    ids: set[str] = set()
    for name in ("target_info", "target"):
        if exp.family(name) is not None:
            ids |= exp.label_values(name, "service_instance_id")
    return msgspec.to_builtins(exp.summary()), exp.family_facts(keep), ids


def facts_road(data: bytes, path: str = "<text>", keep: int = KEEP
               ) -> tuple[object, list[FamilyFacts], set[str]] | None:
    got = clean_facts(data, path, keep)
    if got is None:
        return None
    return msgspec.to_builtins(got.summary), got.families, got.service_instance_ids


def same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN (a total or a sum of NaN-free values is never NaN, but a
    bound or label total could be): compared through their repr."""
    return repr(a) == repr(b)


def test_a_clean_exposition_takes_the_road_with_the_figures_the_rules_give() -> None:
    got = facts_road(CLEAN)
    assert got is not None
    assert same(got, numpy_road(CLEAN))
    fams = {f.name: f for f in got[1]}
    c = fams["c_total"]  # x, x\"q, y NaN, z 0, z -0.0
    assert (c.samples, c.series, c.nonzero_samples, c.total) == (5, 4, 2, 3.0)
    assert c.labels == {"a": (4, ["x", 'x"q', "y", "z"])}
    assert c.label_totals == {"a": {"x": 1.0, 'x"q': 2.0, "z": 0.0}}  # NaN is no total
    g = fams["g"]  # a,b and b,a: two spellings of one label set are two series here
    assert (g.samples, g.series, g.total) == (3, 3, 7.0)
    assert g.label_totals == {}  # two labels, neither varies
    h = fams["h"]  # _created never counts; only _count is totalled
    assert (h.samples, h.total) == (6, 9.0)
    assert h.buckets == [(0.1, 1.0), (1.0, 2.0), (1000.0, 0.0)]  # +Inf is not finite
    assert h.labels == {"m": (2, ["a", "b\\"])}
    assert fams["s"].total == 4.0 and "quantile" not in fams["s"].labels
    assert fams["empty"].samples == 0 and fams["empty"].total == 0.0


@pytest.mark.parametrize("path", SCRAPES, ids=lambda p: p.name)
def test_every_recorded_scrape(path: Path) -> None:
    data = path.read_bytes()
    got = facts_road(data, str(path))
    if got is not None:
        assert same(got, numpy_road(data, str(path)))
        assert same(got[1], numpy_road(data, str(path), "python")[1])


def test_recorded_0_0_4_scrapes_take_the_road() -> None:
    taken = [p for p in SCRAPES if facts_road(p.read_bytes()) is not None]
    assert len(taken) >= 5, taken


@pytest.mark.parametrize("sets", [0, 1, 7, 300])
def test_generated_expositions(sets: int) -> None:
    data = generate_exposition(sets)
    got = facts_road(data)
    assert got is not None
    assert same(got, numpy_road(data))


@pytest.mark.parametrize("keep", [0, 1, 2, 64])
def test_the_kept_values_bound(keep: int) -> None:
    data = generate_exposition(7)
    got = facts_road(data, keep=keep)
    assert got is not None and same(got, numpy_road(data, keep=keep))


@pytest.mark.parametrize("values, split", [(2, True), (3, False)])
def test_label_totals_up_to_the_kept_values(values: int, split: bool) -> None:
    """keep = 2: a gauge whose only varying label takes 2 values is split, 3 are not; a
    counter with one label the same way."""
    data = b"".join(b'g{a="%d",b="x"} %d\n' % (i, i + 1) for i in range(values))
    data += b"".join(b'c_total{k="%d"} 1\n' % i for i in range(values))
    data = b"# TYPE g gauge\n# TYPE c_total counter\n" + data
    got = facts_road(data, keep=2)
    assert got is not None and same(got, numpy_road(data, keep=2))
    fams = {f.name: f for f in got[1]}
    want_g = {"a": {str(i): float(i + 1) for i in range(values)}} if split else {}
    assert fams["g"].label_totals == want_g
    assert fams["c_total"].label_totals == (
        {"k": {str(i): 1.0 for i in range(values)}} if split else {})


@pytest.mark.parametrize("seed", range(40))
def test_seeded_texts_agree_on_both_roads(seed: int) -> None:
    rnd = random.Random(seed)
    pool = LINES if seed % 2 else [ln for ln in LINES if ln not in (b"bad line {", b"# EOF")]
    data = b"\n".join(rnd.choice(pool) for _ in range(rnd.randint(0, 60))) + b"\n"
    got = facts_road(data)
    if got is not None:
        assert same(got, numpy_road(data))


@pytest.mark.parametrize("seed", range(80))
def test_seeded_well_formed_texts_take_the_road_and_agree(seed: int) -> None:
    rnd = random.Random(seed)
    data = _block_text(rnd)
    if seed % 3 == 0:  # and the service instance label, in the info families
        data += b'target_info{service_instance_id="i-%d",job="j"} 1\n' % rnd.randint(0, 3)
        data += b'target{service_instance_id="\\\\i"} 1\n'
    got = facts_road(data)
    assert got is not None, data
    assert same(got, numpy_road(data))
    assert same(got[1], numpy_road(data, backend="python")[1])
    # and the per-sample reference (Sample objects, plain sets and sums)
    assert msgspec.json.encode(family_stats(got[1])) == msgspec.json.encode(
        oracle_family_stats(parse_text(data)))


def test_service_instance_ids_come_from_the_info_families_only() -> None:
    data = (b'target_info{service_instance_id="a"} 1\ntarget{service_instance_id="b\\\\"} 1\n'
            b'other{service_instance_id="c"} 1\n')
    got = facts_road(data)
    assert got is not None and got[2] == {"a", "b\\"}


@pytest.mark.parametrize("text, why", [
    (b'# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="1.0",a="b"} 2\n',
     "two spellings of one bound in a family (the numpy road sums across both)"),
    (EDGE, "the columnar edge cases (a repeated label, bad le values)"),
    (b"x 1\nbad {\n", "a malformed line"),
    (b"# TYPE x gauge\nx 1\n# EOF\n", "OpenMetrics"),
])
def test_where_the_road_declines_the_evidence_is_the_general_roads(text: bytes, why: str,
                                                                   tmp_path: Path) -> None:
    assert facts_road(text) is None, why
    path = tmp_path / "m.txt"
    path.write_bytes(text)
    ev = read_metrics(path)
    want = numpy_road(text, str(path))
    assert ev.facts is not None
    assert same([(f.name, f.total, f.buckets) for f in ev.facts.families],
                [(f.name, f.total, f.buckets) for f in want[1]])


@pytest.mark.parametrize("text", [
    b'# TYPE x histogram\nx_bucket{le="1"} 1\nx_bucket{le="2"} 3\n',  # read as buckets
    # a bucket-named sample the summary road does not read as a bucket: still summed
    b'# TYPE x_bucket histogram\nx_bucket_bucket{le="1"} 1\nx_bucket{le="2"} 3\n',
    b'# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="1",a="b"} 2\n'
    b'g_bucket{le="1.0"} 5\n',  # the same bound in two families: each its own
    b'# TYPE c counter\nc{a="1"} 1e308\nc{a="2"} 1e308\nc{a="2"} -1e308\n',  # fsum rescales
    b'# TYPE c counter\nc{a="1"} 1e308\nc{a="1"} 1e308\n',  # past the range: inf
    b'c{a="x"} 1\nc{a="x\\\\"} 2\nc{a="\\"x"} 3\n',  # escaped values: canonical ids
])
def test_near_misses_stay_on_the_road(text: bytes) -> None:
    got = facts_road(text)
    assert got is not None
    assert same(got, numpy_road(text))


def test_an_overflowing_total_is_infinite_on_both_roads() -> None:
    got = facts_road(b'# TYPE c counter\nc{a="1"} 1e308\nc{a="1"} 1e308\n')
    assert got is not None and got[1][0].total == math.inf


def test_the_kernel_refuses_ids_out_of_range() -> None:
    from inferguard._native import _prom as native

    rows = native.tokenize_rows(b'x 1\ny{a="b"} 2\n', False)
    assert rows is not None
    n, s = len(rows.names), len(rows.strs)
    flags = bytes(n)
    ok = native.facts(rows, [0] * n, flags, b"\0", None, (-1, -1), 64, (-1, -1, -1))
    assert (ok.samples, ok.series, ok.total) == ([2], [2], [3.0])
    assert ok.pairs == ([0], [rows.strs.index(b"a")], [rows.strs.index(b"b")])
    with pytest.raises(ValueError, match="out of range"):
        native.facts(rows, [5] * n, flags, b"\0", None, (-1, -1), 64, (-1, -1, -1))
    with pytest.raises(ValueError, match="out of range"):
        native.facts(rows, [0] * (n - 1), flags[1:], b"\0", None, (-1, -1), 64, (-1, -1, -1))
    with pytest.raises(ValueError, match="out of range"):
        native.facts(rows, [0] * n, flags, b"\0", [9] * s, (-1, -1), 64,
                     (-1, -1, -1))  # a canonical id past the strings
    with pytest.raises(ValueError, match="differ in length"):
        native.facts(rows, [0] * n, flags, b"\0", [0], (-1, -1), 64, (-1, -1, -1))


def test_read_metrics_gives_the_same_evidence_by_both_roads(tmp_path: Path) -> None:
    data = generate_exposition(50) + b'target_info{service_instance_id="i-1"} 1\n'
    path = tmp_path / "m.txt"
    path.write_bytes(data)
    road = read_metrics(path)
    from inferguard.evidence._metrics import _read_parsed

    general = _read_parsed(data, str(path), road.source, "lmcache_metrics", None)
    assert msgspec.json.encode(road) == msgspec.json.encode(general)
    assert clean_facts(data, str(path), KEEP) is not None  # the road was taken
    assert road.facts.service_instance_ids == ["bench-A", "i-1"]


def test_lmcache_compat_on_a_scrape_imports_no_numpy_and_judges_alike(tmp_path: Path
                                                                       ) -> None:
    path = tmp_path / "vllm.txt"
    path.write_bytes(generate_exposition(300))
    args = ["lmcache-compat", "--engine-metrics-file", str(path), "--json"]
    rc, numpy_loaded, got = run_cli(args)
    assert rc == 0 and not numpy_loaded
    bad = tmp_path / "bad.txt"  # the same scrape with one problem: the numpy road
    bad.write_bytes(path.read_bytes() + b"broken {\n")
    _, numpy_loaded2, other = run_cli(["lmcache-compat", "--engine-metrics-file", str(bad),
                                       "--json"])
    assert numpy_loaded2
    def without_source(fams: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in f.items() if k != "source"} for f in fams]

    assert without_source(got["report"]["families"]) == without_source(
        other["report"]["families"])
    a, b = got["report"]["detected"], other["report"]["detected"]
    assert {k: v for k, v in a.items() if k != "candidates"} == {
        k: v for k, v in b.items() if k != "candidates"}
    assert [c["mode"] for c in a["candidates"]] == [c["mode"] for c in b["candidates"]]


@pytest.mark.parametrize("sets", [3, 100])  # read (~60 KB), and mapped (~1.8 MB)
def test_the_evidence_source_carries_the_files_digest(sets: int, tmp_path: Path) -> None:
    import hashlib

    data = generate_exposition(sets)
    assert (len(data) >= 1 << 20) is (sets == 100)
    path = tmp_path / "m.txt"
    path.write_bytes(data)
    ev = read_metrics(path)
    assert ev.status == "ok"
    assert ev.source.sha256 == hashlib.sha256(data).hexdigest()
    assert ev.source.size == len(data) and ev.source.path == str(path)
    assert path.read_bytes() == data  # the input is not altered


def test_a_mapped_scrape_with_a_problem_keeps_its_digest_and_problem(tmp_path: Path) -> None:
    import hashlib

    data = generate_exposition(100) + b"broken {\n"
    path = tmp_path / "m.txt"
    path.write_bytes(data)
    ev = read_metrics(path)
    assert ev.status == "partial" and len(ev.problems) == 1
    assert ev.problems[0].line == data.count(b"\n")
    assert ev.source.sha256 == hashlib.sha256(data).hexdigest()


def test_reading_many_inputs_gives_each_its_own_evidence_in_order(tmp_path: Path) -> None:
    """Two or more inputs are read by two threads: the evidence is what one read of each
    gives, in the order given, a damaged or missing input included."""
    from inferguard.evidence._readers import read_evidence, read_evidence_many

    fixtures = Path(__file__).parent / "fixtures" / "lmcache-0.5.6"
    a, b = tmp_path / "engine.txt", tmp_path / "lmcache.txt"
    a.write_bytes(generate_exposition(100))  # mapped: over 1 MiB
    b.write_bytes(generate_exposition(5) + b"broken {\n")
    items: list[tuple[str, str | Path]] = [
        ("engine_metrics", a), ("lmcache_metrics", b),
        ("log", fixtures / "logs" / "mp_server.log"), ("trace", fixtures / "storage.lct"),
        ("lmcache_metrics", tmp_path / "missing.txt")]
    got = read_evidence_many(items)
    want = [read_evidence(kind, path) for kind, path in items]
    assert [msgspec.json.encode(e) for e in got] == [msgspec.json.encode(e) for e in want]
    assert [e.status for e in got] == ["ok", "partial", "ok", "ok", "malformed"]
    assert read_evidence_many(items[:1])[0].source.path == str(a)
    assert read_evidence_many([]) == []


def test_reading_many_inputs_raises_what_a_reader_raised() -> None:
    from inferguard.evidence._readers import read_evidence_many

    with pytest.raises(ValueError, match="no reader for evidence kind"):  # in the 2nd half
        read_evidence_many([("engine_metrics", "/nonexistent"), ("no_such_kind", "x")])


def test_a_metrics_input_that_cannot_be_mapped_is_reported_as_read_source_reports_it(
        tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(40 << 20)  # sparse: over the reader's 32 MiB limit
    ev = read_metrics(big)
    assert ev.status == "malformed" and "over this reader's limit" in ev.problems[0].message
    ev = read_metrics(tmp_path)  # a directory
    assert ev.status == "malformed" and ev.problems
    ev = read_metrics(tmp_path / "missing.txt")
    assert ev.status == "malformed" and "cannot read file" in ev.problems[0].message
