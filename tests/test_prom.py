"""inferguard.prom on the real LMCache 0.5.6 `/metrics` files and on small hand-made texts:
families, samples, lookups and problems, on both backends."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from inferguard import PromParseError, parse_file, parse_text
from inferguard.prom._model import Exposition

from .conftest import UPSTREAM

METRICS = UPSTREAM / "metrics"
L1_AFTER = METRICS / "mp-l1-storage-trace" / "metrics_after.txt"
BLEND_FINAL = METRICS / "blend-prometheus" / "metrics_final.txt"
OTLP_MODE = METRICS / "mp-otlp-engine-driven" / "metrics_otlpmode.txt"


def test_real_l1_trace_file(backend: str) -> None:
    exp = parse_file(L1_AFTER)
    assert exp.backend == backend
    assert exp.format == "prometheus"
    assert exp.problems == ()
    hist = exp.family("lmcache_mp_l1_chunk_reuse_gap_seconds")
    assert hist is not None and hist.type == "histogram"
    assert hist.help.startswith("Histogram of time gaps between consecutive touches")
    names = {s.name for s in hist.samples}
    assert names == {"lmcache_mp_l1_chunk_reuse_gap_seconds_bucket",
                     "lmcache_mp_l1_chunk_reuse_gap_seconds_count",
                     "lmcache_mp_l1_chunk_reuse_gap_seconds_sum"}
    counts = exp.bucket_counts("lmcache_mp_l1_chunk_reuse_gap_seconds")
    assert list(counts) == [(("l1_tag", "_default"),)]
    buckets = counts[(("l1_tag", "_default"),)]
    assert buckets[0] == (1.0, 48.0)
    assert buckets[-1] == (math.inf, 64.0)
    assert len(buckets) == 14
    assert exp.label_values("target_info", "service_instance_id") == {"live-packet-A"}
    write = exp.family("lmcache_mp_l1_write_chunks_total")
    assert write is not None and write.type == "counter"
    assert write.samples[0].labels == (("l1_tag", "_default"),)
    assert write.samples[0].value == 32.0
    assert exp.all_zero("lmcache_mp_event_bus_queue_depth")
    assert not exp.all_zero("lmcache_mp_l1_write_chunks_total")


def test_lookup_by_normalised_and_otel_names(backend: str) -> None:
    exp = parse_file(L1_AFTER)
    fam = exp.find("lmcache_mp.l1_write", unit="chunks")
    assert fam is not None and fam.name == "lmcache_mp_l1_write_chunks_total"
    assert exp.find("lmcache_mp:l1_write_chunks") is fam
    hist = exp.find("lmcache_mp.l1_chunk_reuse_gap", unit="s")
    assert hist is not None and hist.name == "lmcache_mp_l1_chunk_reuse_gap_seconds"
    assert exp.find("no_such_family") is None


def test_blend_file_has_blend_families(backend: str) -> None:
    exp = parse_file(BLEND_FINAL)
    assert exp.ok
    blend = [n for n in exp.family_names() if n.startswith("lmcache_blend_")]
    assert len(blend) == 29
    summary = exp.summary()
    assert sorted(summary.lmcache["lmcache_blend"]) == sorted(blend)
    assert summary.families == len(exp.family_names())


def test_otlp_mode_file_has_no_lmcache_family(backend: str) -> None:
    exp = parse_file(OTLP_MODE)
    assert exp.ok
    assert all(not n.startswith("lmcache") for n in exp.family_names())
    assert exp.summary().lmcache == {}


def test_untyped_samples_become_families(backend: str) -> None:
    exp = parse_text(b'a 1\nb{x="1"} 2\nb{x="2"} 3\na_total 4\n')
    assert exp.family_names() == ("a", "b", "a_total")
    b = exp.family("b")
    assert b is not None and b.type == "untyped" and len(b.samples) == 2
    om = parse_text(b"a 1\n# EOF\n")
    assert om.format == "openmetrics"
    fam = om.family("a")
    assert fam is not None and fam.type == "unknown"


def test_values_and_escapes(backend: str) -> None:
    text = (b'm{v="a\\\\b\\"c\\nd"} NaN\n'
            b'm{v="2"} +Inf\nm{v="3"} -Inf\nm{v="4"} 1.5e3\nm{v="5"} -0\n'
            b'm{v="6"} 12 1700000000000\n')
    exp = parse_text(text)
    assert exp.ok
    samples = exp.family("m").samples  # type: ignore[union-attr]
    assert samples[0].labels == (("v", 'a\\b"c\nd'),)
    assert math.isnan(samples[0].value)
    assert samples[1].value == math.inf and samples[2].value == -math.inf
    assert samples[3].value == 1500.0
    assert math.copysign(1.0, samples[4].value) == -1.0
    assert samples[5].timestamp == 1700000000.0


def test_problem_reports_line_and_column(backend: str) -> None:
    exp = parse_text(b'ok 1\nbad{a="1" 2\nok 3\n', path="m.txt")
    assert [s.value for s in exp.family("ok").samples] == [1.0, 3.0]  # type: ignore[union-attr]
    (p,) = exp.problems
    assert (p.path, p.line, p.column) == ("m.txt", 2, 11)
    assert p.expected == "',' or '}' after a label"
    assert p.text == 'bad{a="1" 2'
    with pytest.raises(PromParseError) as err:
        parse_text(b'ok 1\nbad{a="1" 2\n', path="m.txt", strict=True)
    assert err.value.problem == p
    assert str(err.value) == "m.txt:2:11: expected ',' or '}' after a label"


def test_parse_text_accepts_str(backend: str, tmp_path: Path) -> None:
    f = tmp_path / "m.txt"
    f.write_text('x{m="é"} 1\n', encoding="utf-8")
    a = parse_file(f)
    b = parse_text('x{m="é"} 1\n')
    assert isinstance(a, Exposition)
    assert a.family("x") == b.family("x")
