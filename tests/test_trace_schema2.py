"""Trace schema 2 (LMCache 0.5.7) against real files written by upstream `lmcache==0.5.7rc2`.

The files, upstream's own `lmcache trace info` text and its full decode (`storage.lct.dump.json`)
are in tests/fixtures/lmcache-0.5.7rc2/ (copied from the shared samples). What schema 2 changed,
read in the 0.5.7rc2 wheel: `mp_observability/trace/format.py` (TRACE_SCHEMA_VERSION = 2:
`submit_prefetch_task` without `skip_l2`, PrefetchTaskSpec with memory-tag filters) and
`trace/codecs.py` (`_dec_prefetch_task_spec`, `_dec_allowed_tags`, `_dec_memory_tags`, the
`MemoryTags` codec). 0.5.7's `TraceReader` refuses schema 1; InferGuard reads both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferguard import TraceFile, summarize_trace
from inferguard.cli._main import main
from inferguard.evidence._trace_read import read_trace
from inferguard.lct import iter_key_columns
from inferguard.lct._codec import MemoryTags, PrefetchTaskSpec, TaggedValue

from . import lct_writer as w
from .conftest import FIXTURES, UPSTREAM
from .test_trace_upstream import _jsonable, _upstream_info

V057 = FIXTURES / "lmcache-0.5.7rc2"
RUNS = [V057 / "mp-l1-storage-trace", V057 / "mp-lmcache-driven"]


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_summary_matches_upstream_trace_info(backend: str, run: Path) -> None:
    expected = _upstream_info(run / "trace_info_storage.txt")
    s = summarize_trace(run / "storage.lct")
    assert s.backend == backend
    assert expected["trace_schema_version"] == "2"
    assert str(s.header.trace_schema_version) == "2"
    assert s.header.variant == "schema2"
    assert s.header.level == expected["level"]
    assert f"{s.duration_s:.3f}s" == expected["duration"]
    assert s.header.sm_config_digest == expected["sm_config_digest"]
    assert s.header.sm_config_digest_ok is True
    assert s.total_records == int(expected["total_records"])
    assert {o.qualname: o.count for o in s.ops} == expected["ops"]
    assert s.integrity.ok and s.integrity.findings == []


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_trace_info_text_equals_upstreams(backend: str, run: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Upstream's text (its first line is a log line) equals ours row for row; only the path
    on the `Trace file:` line differs (upstream printed the name it was given)."""
    trace = run / "storage.lct"
    assert main(["trace", "info", str(trace)]) == 0
    out = capsys.readouterr().out.splitlines()
    upstream = (run / "trace_info_storage.txt").read_text().splitlines()[1:]
    assert upstream[0] == "Trace file: storage.lct"
    assert out[0] == f"Trace file: {trace}"
    assert out[1:len(upstream)] == upstream[1:]


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_records_identical_to_upstream_decode(backend: str, run: Path) -> None:
    dump = json.loads((run / "storage.lct.dump.json").read_text())
    with TraceFile(run / "storage.lct") as t:
        records = list(t.records(unwrap_args=False))
        cols = t.scan()
    assert len(records) == len(dump["records"]) == dump["num_frames"] - 1  # header frame
    for got, want in zip(records, dump["records"], strict=True):
        assert got.offset == want["offset"]
        assert (got.t_mono, got.t_wall, got.qualname) == (
            want["record"]["t_mono"], want["record"]["t_wall"], want["record"]["qualname"])
        assert _jsonable(got.args) == want["record"]["args"]
    expected_keys = [json.dumps(r["record"]["args"]).count('"__t__": "ObjectKey"')
                     for r in dump["records"]]
    assert cols.nkeys.tolist() == expected_keys


def test_schema2_prefetch_spec_decodes_like_upstream() -> None:
    """`submit_prefetch_task` args are `{spec, external_request_id}` (no `skip_l2`); the
    server-written filters are null, decoded to None (upstream `_dec_allowed_tags`)."""
    with TraceFile(RUNS[0] / "storage.lct") as t:
        first = next(iter(t.records()))
    assert set(first.args) == {"spec", "external_request_id"}
    spec = first.args["spec"]
    assert isinstance(spec, PrefetchTaskSpec)
    assert spec.allowed_l1_memory_tags is None and spec.allowed_l2_memory_tags is None
    assert spec.lock_mode.name == "LOCK" and spec.fetching_policy == "prefix"


def test_schema1_spec_has_no_filters() -> None:
    with TraceFile(UPSTREAM / "storage.lct") as t:
        first = next(iter(t.records()))
    assert first.args["skip_l2"] is False
    spec = first.args["spec"]
    assert isinstance(spec, PrefetchTaskSpec)
    assert spec.allowed_l1_memory_tags is None and spec.allowed_l2_memory_tags is None


def _spec_trace(l1: Any, l2: Any) -> bytes:
    """A schema-2 trace whose one prefetch spec carries the given filters in upstream's wire
    form (the findings' run D: a list of MemoryTags wrappers sorted by (segment, residency),
    an empty list meaning none allowed)."""
    group = w.wrap("GroupedObjectKeys", {"keys": [w.object_key(0), w.object_key(1)],
                                         "object_group_id": 0, "layout_desc": w.layout(),
                                         "sliding_window_size": -1})
    spec = w.wrap("PrefetchTaskSpec", {
        "key_groups": [group], "num_kv_readers": 1, "fetching_policy": "full",
        "lock_mode": w.wrap("PrefetchLockMode", "NO_LOCK"),
        "allowed_l1_memory_tags": l1, "allowed_l2_memory_tags": l2})
    rec = w.record(w.STORAGE_PREFIX + "submit_prefetch_task",
                   {"spec": spec, "external_request_id": "p2p-0"}, 1.0, 1.0)
    return w.trace(rec, head=w.header("schema2"))


def _tags(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [w.wrap("MemoryTags", {"segment": s, "residency": r}) for s, r in pairs]


def test_memory_tags_decode(tmp_path: Path) -> None:
    p = tmp_path / "tags.lct"
    p.write_bytes(_spec_trace(_tags(("dram", "local"), ("storage", "remote")), []))
    with TraceFile(p) as t:
        spec = next(iter(t.records())).args["spec"]
    assert isinstance(spec, PrefetchTaskSpec)
    assert spec.allowed_l1_memory_tags == frozenset(
        {MemoryTags("dram", "local"), MemoryTags("storage", "remote")})
    assert spec.allowed_l2_memory_tags == frozenset()
    assert spec.lock_mode.name == "NO_LOCK" and spec.fetching_policy == "full"


def test_memory_tag_outside_upstreams_enums_keeps_the_spec_raw(tmp_path: Path) -> None:
    """Upstream's decode raises on a segment MemorySegment lacks; InferGuard keeps the
    spec as a TaggedValue (a newer server's trace still reads) instead of inventing a value."""
    p = tmp_path / "tags.lct"
    p.write_bytes(_spec_trace(_tags(("hbm3", "local")), None))
    with TraceFile(p) as t:
        spec = next(iter(t.records())).args["spec"]
    assert isinstance(spec, TaggedValue) and spec.tag == "PrefetchTaskSpec"
    assert spec.value["allowed_l1_memory_tags"][0] == TaggedValue(
        "MemoryTags", {"segment": "hbm3", "residency": "local"})


def test_keys_of_a_tagged_spec_on_both_backends(backend: str, tmp_path: Path) -> None:
    """MemoryTags wrappers are no ObjectKeys: the spec's two keys are its only key rows."""
    p = tmp_path / "tags.lct"
    p.write_bytes(_spec_trace(_tags(("dram", "local")), _tags(("dram", "remote"))))
    rows = sum(len(k.fingerprint) for k in iter_key_columns(p))
    assert rows == 2
    s = summarize_trace(p)
    assert s.header.variant == "schema2" and s.integrity.ok
    assert [o.keys_total for o in s.ops] == [2]


def test_first_chunk_gaps_from_the_null_block_run() -> None:
    """Run A (server default --null-block-id 0): the lmcache-driven requests req-10/11 were
    stored without chunk 0 and never read back; run A2 (--null-block-id -1) stored all."""
    a = read_trace(RUNS[0] / "storage.lct").facts.first_chunk_gaps
    a2 = read_trace(RUNS[1] / "storage.lct").facts.first_chunk_gaps
    assert a is not None and a2 is not None
    # bench4: req-10-cold, req-10-warm, req-11-cold, req-11-warm (the dump's records 65-74)
    assert (a.gap_lookups, a.gap_lookups_read, a.lookups) == (4, 0, 20)
    assert a2.gap_lookups == 0 and a2.lookups == 10
    old = read_trace(UPSTREAM / "storage.lct").facts.first_chunk_gaps
    assert old is not None and old.gap_lookups == 0


def _batch057(seq: int, etype: str, keys: list[int], t: float) -> bytes:
    """An `events.batch` in 0.5.7's shape (the findings' §3): 0.5.6's keys plus
    `dropped_events`."""
    entries = [{"key": {"chunk_hash_hex": f"{k:064x}", "model_name": "m", "kv_rank": 0,
                        "object_group_id": 0, "cache_salt": ""},
                "size_bytes": 100, "token_ids": [], "token_offset": -1} for k in keys]
    return w.record("events.batch", {
        "instance_id": "srv", "incarnation": 1, "seq": seq, "event_type": etype, "tier": "l1",
        "backend": "dram", "entries": entries, "shared": False, "ts": 1.8e9 + t,
        "capacity_bytes": 0, "capacity_revision": 0, "dropped_events": 0}, t, 1.8e9 + t)


def test_events_level_schema2_reads_like_schema1(backend: str) -> None:
    """0.5.7 events batches carry `dropped_events` (0 in all 185 real batches); the events
    fold reads the keys it knows and ignores that one, so the same batches give the same
    stats, and the header's `level_meta.lmcache_version` is a version the report uses."""
    from inferguard.lct import analyze_trace

    bodies = [_batch057(1, "store", [1, 2, 3], 1.0), _batch057(2, "access", [1], 2.0),
              _batch057(3, "delete", [2], 3.0)]
    meta = {"instance_id": "srv", "cache_event_schema_version": 1,
            "lmcache_version": "0.5.7rc2"}
    e = analyze_trace(w.trace(*bodies, head=w.header("schema2", level="events",
                                                     level_meta=meta))).stats.events
    assert e is not None
    assert (e.batches, e.entries, e.undecodable_records, e.malformed_keys) == (3, 5, 0, 0)
    s = summarize_trace(w.trace(*bodies, head=w.header("schema2", level="events",
                                                       level_meta=meta)))
    assert s.header.variant == "schema2+level_meta"
    assert s.header.lmcache_version == "0.5.7rc2"
