"""Trace analytics: real upstream traces, generated traces with known answers, sampling,
events level, findings, exports and the CLI; both backends give identical results."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from inferguard import native_available
from inferguard.cli._main import main
from inferguard.findings._codes import FINDING_CODES, table_code
from inferguard.lct import _engine as ts
from inferguard.lct import _keys as tk
from inferguard.lct import _scan as _trace_scan
from inferguard.lct._export import export_trace
from inferguard.lct._stats import (
    EVIDENCE_LEVELS,
    TraceStats,
    analyze_trace,
    trace_findings,
    trace_stats,
)

from . import lct_writer as w
from .conftest import FIXTURES, UPSTREAM
from .test_trace_parity import _mutate
from .trace_truth import generate, oracle

needs_native = pytest.mark.skipif(not native_available(), reason="native backend not built")
STORAGE = UPSTREAM / "storage.lct"
REPLAY = UPSTREAM / "lookup-replay-storage.lct"


def comparable(s: TraceStats) -> dict[str, Any]:
    d: dict[str, Any] = msgspec.to_builtins(s)
    d.pop("backend")
    d["summary"].pop("backend")
    return d


# -- real upstream traces ---------------------------------------------------------------------


def test_upstream_storage_trace(backend: str) -> None:
    s = trace_stats(STORAGE)
    k, r, life = s.keys, s.reuse, s.lifecycle
    assert s.backend == backend and k.exact and k.sample_rate == 1.0
    assert k.key_rows == s.summary.keys_total == 336 and k.malformed_key_rows == 0
    assert (k.distinct.value, k.written.value, k.reserved.value, k.looked_up.value,
            k.read.value) == (32, 32, 32, 32, 32)
    assert k.written_more_than_once.value == 0 and k.read_never_written.value == 0
    # 14 finish_read_prefetched calls over 64 key rows, all of keys written earlier.
    assert (r.reads, r.reads_of_written.value, r.reads_of_unwritten.value) == (64, 64, 0)
    assert r.read_reuse_ratio == 1.0 and r.write_amplification == 1.0
    # 20 lookups (96 key rows): the 8 cold ones (32 rows) miss, the rest hit written keys.
    assert (r.lookups, r.lookups_of_written.value) == (96, 64)
    assert life.cold_lookups_unread.count.value == 32
    assert life.cold_lookups_unread.first_offset == 1504
    assert life.cold_lookups_unread.first_t_mono == pytest.approx(5.797149095000009)
    for name in ("unfinished_writes", "redundant_reserves", "finish_without_reserve",
                 "open_read_contexts", "exits_without_enter", "unserved_prefetches",
                 "reads_without_lookup"):
        assert getattr(life, name).count.value == 0, name
    assert [(o.qualname.rsplit(".", 2)[-1] if "__" in o.qualname else o.role, o.count,
             o.key_rows) for o in s.ops] == [
        ("finish_read_prefetched", 14, 64), ("finish_write", 8, 32),
        ("__enter__", 12, 56), ("__exit__", 12, 56), ("reserve_write", 8, 32),
        ("submit_prefetch_task", 20, 96)]
    (model,) = s.breakdowns.model
    assert (model.value, model.key_rows, model.distinct_keys.value) == ("test-model", 336, 32)
    (rank,) = s.breakdowns.kv_rank
    assert (rank.value, rank.world_size, rank.global_rank, rank.local_world_size,
            rank.local_rank) == ("16777472", 1, 0, 1, 0)
    assert [b.value for b in s.breakdowns.cache_salt] == ["(no salt)"]
    assert [b.value for b in s.breakdowns.object_group] == ["0"]
    assert s.findings == []
    t = s.time
    assert t.bucket_s == 1.0 and t.t_origin == 5.0
    assert sum(g.duration_s > 1 for g in t.largest_idle_gaps) == t.idle_gaps_over_threshold == 3


def test_upstream_lookup_replay_trace(backend: str) -> None:
    """The run where a new model's first warm lookup missed and the bench stored again."""
    s = trace_stats(REPLAY)
    k, r, life = s.keys, s.reuse, s.lifecycle
    assert (k.distinct.value, k.written.value, k.looked_up.value, k.read.value) == (44, 42, 44,
                                                                                    32)
    assert k.looked_up_never_read.value == 12
    # The two re-reserves of already stored keys (llama-alpha: 3 keys, qwen-beta: 7) were
    # rejected upstream: never finished.
    assert life.redundant_reserves.count.value == r.reserves_of_written.value == 10
    assert life.redundant_reserves.offsets == [19416, 32263]
    assert life.unfinished_writes.count.value == 0
    # Their warm lookups found the keys written but no read followed.
    assert life.unserved_prefetches.count.value == 10
    assert life.unserved_prefetches.offsets == [18493, 30885]
    assert life.cold_lookups_unread.count.value == 46
    models = {b.value: (b.key_rows, b.distinct_keys.value) for b in s.breakdowns.model}
    assert models == {"llama-alpha": (57, 12), "qwen-beta": (77, 16), "test-model": (120, 16)}
    codes = {f.code: f for f in s.findings}
    # Nothing was rewritten (the re-reserves were refused), so no write amplification; the
    # unserved prefetches are an exact count on a cleanly ending trace: measured, supported.
    assert r.rewrites.value == 0
    assert set(codes) == {"trace_unserved_prefetches"}
    assert codes["trace_unserved_prefetches"].evidence == "supported"
    assert codes["trace_unserved_prefetches"].first_offset == 18493
    assert codes["trace_unserved_prefetches"].first_t_mono == pytest.approx(11.604521572999602)


@needs_native
@pytest.mark.parametrize("path", [STORAGE, REPLAY])
def test_upstream_backends_identical(path: Path) -> None:
    assert comparable(trace_stats(path, backend="native")) == comparable(
        trace_stats(path, backend="python"))


def test_json_round_trip() -> None:
    s = trace_stats(REPLAY)
    again = msgspec.json.decode(msgspec.json.encode(s), type=TraceStats)
    assert again == s
    assert s.schema == "inferguard.trace_stats/1"
    # exact counts are written as {"value": n}
    doc = json.loads(msgspec.json.encode(s))
    assert doc["keys"]["distinct"] == {"value": 44}


# -- generated traces with known answers ------------------------------------------------------


def check_against_truth(s: TraceStats, recs: list[Any]) -> None:
    tr = oracle(recs)
    k, r, life = s.keys, s.reuse, s.lifecycle
    assert (k.key_rows, k.malformed_key_rows) == (tr.key_rows, tr.malformed)
    got = {n: getattr(k, n).value for n in ("distinct", "written", "written_more_than_once",
                                             "reserved", "looked_up", "read",
                                             "read_never_written", "looked_up_never_read")}
    assert got == {n: getattr(tr, n) for n in got}
    assert (r.reads, r.reads_of_written.value, r.reads_of_unwritten.value) == (
        tr.reads, tr.reads_of_written, tr.reads - tr.reads_of_written)
    assert (r.lookups, r.lookups_of_written.value) == (tr.lookups, tr.lookups_of_written)
    assert (r.writes, r.rewrites.value) == (tr.writes, tr.rewrites)
    assert (r.reserves, r.reserves_of_written.value) == (tr.reserves, tr.reserves_of_written)
    for name, (count, offsets) in tr.lifecycle.items():
        lc = getattr(life, name)
        assert (lc.count.value, lc.offsets) == (count, offsets), name
    ops = {o.qualname: o for o in s.ops}
    for q, (rows, bad) in tr.op_rows.items():
        assert (ops[q].key_rows, ops[q].malformed_key_rows) == (rows, bad), q
    for q, n in tr.op_written.items():
        written = ops[q].key_rows_of_written
        assert written is not None and written.value == n, q
    models = {b.value: (b.key_rows, b.distinct_keys.value, b.reads_of_written.value,
                        b.lookups_of_written.value) for b in s.breakdowns.model}
    assert models == tr.by_model
    salts = {b.value: b.key_rows for b in s.breakdowns.cache_salt}
    assert salts == {("(no salt)" if x is None else x): n for x, n in tr.by_salt.items()}
    assert {int(b.value): b.key_rows for b in s.breakdowns.kv_rank} == tr.by_rank
    assert {int(b.value): b.key_rows for b in s.breakdowns.object_group} == tr.by_group


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_matches_truth(backend: str, seed: int) -> None:
    wl = generate(seed, 400, salts=(None, "tenant-a", "tenant-b") if seed == 2 else (None,))
    s = trace_stats(wl.data)
    check_against_truth(s, wl.recs)
    assert s.summary.total_records == len(wl.recs)


def test_generated_results_do_not_depend_on_chunking(backend: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    wl = generate(4, 300)
    whole = comparable(trace_stats(wl.data))
    monkeypatch.setattr(tk, "KEY_ROWS", 7)
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 13)
    small = analyze_trace(wl.data)
    assert comparable(small.stats) == whole
    check_against_truth(small.stats, wl.recs)
    from inferguard import TraceFile

    with TraceFile(wl.data, window_size=4096) as t:  # frames cross windows too
        assert comparable(analyze_trace(t).stats) == whole


@needs_native
def test_generated_backends_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in (5, 6):
        wl = generate(seed, 300, salts=(None, "s"))
        native = comparable(trace_stats(wl.data, backend="native"))
        assert native == comparable(trace_stats(wl.data, backend="python"))
        with monkeypatch.context() as m:  # one thread: no worker, no window split
            m.setattr(_trace_scan, "SCAN_THREADS", 1)
            m.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 1)
            assert comparable(trace_stats(wl.data, backend="native")) == native
        with monkeypatch.context() as m:  # the scan a chunk ahead, on small chunks
            m.setattr(_trace_scan, "CHUNK_ROWS", 64)
            m.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 2)
            assert comparable(trace_stats(wl.data, backend="native")) == native
            assert comparable(trace_stats(wl.data, backend="python")) == native


@needs_native
def test_random_damage_same_stats_on_both_backends() -> None:
    rng = random.Random(77)
    seeds = [generate(8, 120).data, REPLAY.read_bytes(), events_trace()]
    compared = 0
    for round_ in range(150):
        data = _mutate(rng, seeds[round_ % 3])
        try:
            native = comparable(trace_stats(data, backend="native"))
        except ValueError:
            continue
        assert native == comparable(trace_stats(data, backend="python")), f"round {round_}"
        compared += 1
    assert compared > 100


# -- bounded memory: sampling and HyperLogLog -------------------------------------------------


def test_sampling_beyond_the_exact_limit(backend: str) -> None:
    wl = generate(9, 1500, docs=1200)
    tr = oracle(wl.recs)
    s = trace_stats(wl.data, max_exact_keys=256)
    k = s.keys
    assert not k.exact and k.sample_rate < 1 and k.tracked_keys <= 256
    assert k.distinct.method == "hyperloglog"
    for name in ("distinct", "written", "looked_up", "read"):
        c = getattr(k, name)
        assert abs(c.value - getattr(tr, name)) <= 4 * c.stderr + 2, name
    for name in ("written_more_than_once", "read_never_written", "looked_up_never_read"):
        c = getattr(k, name)
        assert c.method == "key_sample" and not c.exact
        assert abs(c.value - getattr(tr, name)) <= 4 * c.stderr + 2, name
    r = s.reuse
    assert r.reads == tr.reads and r.lookups == tr.lookups  # row totals stay exact
    for got, want in ((r.reads_of_written, tr.reads_of_written),
                      (r.lookups_of_written, tr.lookups_of_written)):
        assert abs(got.value - want) <= 4 * got.stderr + 2
    assert "trace_key_stats_sampled" in {f.code for f in s.findings}


@needs_native
def test_sampling_identical_on_both_backends() -> None:
    wl = generate(10, 800, docs=600)
    assert comparable(trace_stats(wl.data, backend="native", max_exact_keys=100)) == \
        comparable(trace_stats(wl.data, backend="python", max_exact_keys=100))


def test_hyperloglog_accuracy() -> None:
    rng = np.random.default_rng(1)
    for n in (10, 1000, 200_000):
        h = ts.HyperLogLog()
        fp = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + \
            np.uint64(1)
        h.add(fp)
        h.add(fp[: n // 2])  # duplicates change nothing
        assert abs(h.estimate() - n) <= 4 * ts.HLL_STDERR * n + 1


def test_clz_exact() -> None:
    w_ = np.array([0, 1, 2, 3, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 53) + 1,
                   (1 << 54) - 1], np.uint64)
    assert ts._clz64(w_).tolist() == [64, 63, 62, 62, 1, 0, 0, 10, 10]


# -- time ----------------------------------------------------------------------------------------


def _timed(times: list[float]) -> bytes:
    return w.trace(*[w.storage_record("finish_write", 1, t, i) for i, t in enumerate(times)])


def test_timeline_bursts_and_gaps(backend: str) -> None:
    times = [0.5 + 0.25 * i for i in range(38)]  # 4 records/s until 9.75 s
    times += [10.0 + 0.01 * i for i in range(60)]  # a burst: 60 records in 0.6 s
    times += [30.0, 30.5]  # after a 19.4 s idle gap
    a = analyze_trace(_timed(times))
    s, arr = a.stats, a.arrays
    assert int(arr.records.sum()) == len(times) == int(arr.key_rows.sum())
    assert arr.records_by_role["finish_write"].sum() == len(times)
    assert s.time.buckets == len(arr.records) == 31 and s.time.t_origin == 0.0
    assert arr.bucket_start[0] == 0.0 and arr.bucket_start[-1] == 30.0
    (burst,) = s.time.bursts
    assert burst.t_start == 10.0 and burst.records == 60
    gap = s.time.largest_idle_gaps[0]
    assert gap.duration_s == pytest.approx(30.0 - 10.59) and gap.offset > 0
    assert s.time.idle_gaps_over_threshold == 1
    assert arr.new_keys.sum() == len(times)  # every record writes a new key


def test_timeline_coarsens_exactly(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    times = [i * 0.7 for i in range(500)]
    fine = analyze_trace(_timed(times), bucket_s=1.0).arrays
    monkeypatch.setattr(ts, "MAX_BUCKETS", 40)
    monkeypatch.setattr(ts.Timeline.__init__, "__defaults__", (40, ts.TL_COLS))
    a = analyze_trace(_timed(times), bucket_s=1.0)
    assert a.stats.time.bucket_s == 16.0 and len(a.arrays.records) <= 40
    # Every coarse bucket is the exact sum of the fine ones it covers.
    coarse = np.add.reduceat(fine.records, np.arange(0, len(fine.records), 16))
    assert a.arrays.records.tolist() == coarse.tolist()


def test_odd_timestamps(backend: str) -> None:
    bodies = [w.storage_record("finish_write", 1, t, i) for i, t in
              enumerate([5.0, float("nan"), 1e300, -3.0, 6.0])]
    a = analyze_trace(w.trace(*bodies))
    assert int(a.arrays.records.sum()) == 3  # NaN and 1e300 are outside the timeline
    assert a.stats.time.records_outside_timeline == 1


# -- events level -------------------------------------------------------------------------------


def _batch(seq: int, etype: str, tier: str, keys: list[int], t: float, inc: int = 1,
           backend: str | None = None, instance: str = "srv-a") -> bytes:
    entries = [{"key": {"chunk_hash_hex": f"{k:064x}", "model_name": "m", "kv_rank": 0,
                        "object_group_id": 0, "cache_salt": None},
                "size_bytes": 100, "token_ids": [], "token_offset": -1} for k in keys]
    args = {"instance_id": instance, "incarnation": inc, "seq": seq, "event_type": etype,
            "tier": tier, "backend": backend, "entries": entries, "shared": False,
            "ts": 1.8e9 + t, "capacity_bytes": 10, "capacity_revision": 0}
    return w.record("events.batch", args, t, 1.8e9 + t)


def _life(phase: str, t: float, inc: int, instance: str = "srv-a") -> bytes:
    args: dict[str, Any] = {"phase": phase, "instance_id": instance}
    if phase == "start":
        args |= {"incarnation": inc, "ip": "127.0.0.1", "http_port": 1, "mq_port": 2}
    return w.record("events.lifecycle", args, t, 1.8e9 + t)


def events_trace() -> bytes:
    meta = {"instance_id": "srv-a", "cache_event_schema_version": 1, "lmcache_version": "0.5.6"}
    head = w.header("schema1", level="events", level_meta=meta)
    bodies = [
        _life("start", 0.0, 1),
        _batch(1, "store", "l1", [1, 2, 3, 4], 1.0),
        _batch(2, "store", "l2", [1, 2], 3.0, backend="fs"),  # flow: 2 s after l1
        _batch(3, "access", "l1", [1, 1, 3], 3.5),
        _batch(4, "delete", "l1", [1, 2], 5.0),  # lifetimes 4 s
        _batch(5, "store", "l2", [9], 5.5, backend="fs"),  # on l2 without l1
        _batch(6, "delete", "l1", [7], 6.0),  # never stored
        _life("stop", 7.0, 1),
        _life("start", 8.0, 2),  # a restart
        _batch(1, "store", "l1", [5], 9.0, inc=2),
        _batch(2, "delete", "l2", [1], 10.0, inc=2, backend="fs"),  # l2 lifetime 7 s
    ]
    return w.trace(*bodies, head=head)


def test_events_level(backend: str) -> None:
    a = analyze_trace(events_trace())
    e = a.stats.events
    assert e is not None
    assert (e.batches, e.entries, e.undecodable_records, e.malformed_keys) == (8, 15, 0, 0)
    kinds = {(k.event_type, k.tier, k.backend): (k.batches, k.entries, k.bytes)
             for k in e.kinds}
    assert kinds == {("store", "l1", "-"): (2, 5, 500), ("store", "l2", "fs"): (2, 3, 300),
                     ("access", "l1", "-"): (1, 3, 300), ("delete", "l1", "-"): (2, 3, 300),
                     ("delete", "l2", "fs"): (1, 1, 100)}
    f = e.flow
    assert (f.l1_keys_stored.value, f.l2_keys_stored.value, f.l1_then_l2_keys.value,
            f.l2_without_l1_keys.value) == (5, 3, 2, 1)
    assert f.l1_to_l2_delay_s.p50 == 2.0 and f.l1_to_l2_delay_s.max == 2.0
    lt = {x.tier: x for x in e.lifetimes}
    assert (lt["l1"].stored, lt["l1"].deleted, lt["l1"].alive_at_end.value) == (5, 3, 3)
    assert lt["l1"].lifetime_s.p50 == 4.0 and lt["l1"].lifetime_s.count.value == 2
    assert lt["l2"].lifetime_s.max == 7.0 and lt["l2"].alive_at_end.value == 2
    assert e.deletes_of_unstored.value == 1
    (inst,) = e.instances
    assert (inst.incarnations, inst.restarts, inst.starts, inst.stops) == ([1, 2], 1, 2, 1)
    assert inst.restart_t_mono == [8.0]
    codes = {x.code: x for x in a.stats.findings}
    assert codes["trace_events_restarts"].offsets == inst.restart_offsets
    assert codes["trace_events_delete_without_store"].evidence == "partial"
    cols = a.arrays.events_by_kind
    assert cols["store_l1_-"].sum() == 5 and cols["delete_l2_fs"].sum() == 1
    assert len(cols["store_l1_-"]) == len(a.arrays.records)


def test_events_level_sampled(backend: str) -> None:
    e = trace_stats(events_trace(), max_exact_keys=1).events
    assert e is not None and not e.exact and e.sample_rate < 1
    assert e.batches == 8 and e.entries == 15  # totals stay exact


# -- findings -------------------------------------------------------------------------------


def test_findings_are_typed_and_point_at_records(backend: str) -> None:
    wl = generate(11, 400)
    s = trace_stats(wl.data)
    fs = trace_findings(s)
    codes = {f.code for f in fs}
    assert {"trace_leaked_read_contexts", "trace_unfinished_writes", "trace_write_amplification",
            "trace_unserved_prefetches", "trace_malformed_object_keys",
            "trace_reads_of_unwritten_keys", "trace_exit_without_enter",
            "trace_finish_without_reserve"} <= codes
    by_offset = {r.offset: r for r in wl.recs}
    for f in fs:
        assert f.evidence in EVIDENCE_LEVELS
        assert FINDING_CODES[table_code(f.code)].severity in ("info", "warning")
        assert f.offsets == sorted(f.offsets) and len(f.offsets) <= 20
        for off in f.offsets:
            assert off in by_offset, f.code
        if f.first_offset is not None:
            assert f.first_t_mono == by_offset[f.first_offset].t
    leak = next(f for f in fs if f.code == "trace_leaked_read_contexts")
    assert all(by_offset[o].qualname.endswith("__enter__") for o in leak.offsets)
    assert leak.evidence == "supported"


def test_leak_at_the_very_end_is_only_partial(backend: str) -> None:
    bodies = [w.storage_record("finish_write", 2, 1.0, 0),
              w.storage_record("read_prefetched_results.__enter__", 2, 1.2, 0)]
    s = trace_stats(w.trace(*bodies))
    (f,) = [f for f in s.findings if f.code == "trace_leaked_read_contexts"]
    assert f.evidence == "partial" and f.count.value == 1


def test_damaged_trace_finding(backend: str) -> None:
    data = generate(12, 50).data
    s = trace_stats(data[:-7])
    assert "trace_damaged" in {f.code for f in s.findings}


def test_trace_without_keys(backend: str) -> None:
    s = trace_stats(w.trace(*[w.record("q.op", {"x": i}, i, i) for i in range(5)]))
    assert [f.code for f in s.findings] == ["trace_no_object_keys"]
    assert s.findings[0].evidence == "missing_signal"


def test_events_level_trace_is_not_keyless(backend: str) -> None:
    """A real events-level trace (L2 run): its keys are entries' chunk_hash_hex, never
    ObjectKeys, so "no ObjectKeys" is not a finding there."""
    s = trace_stats(FIXTURES / "lmcache_live" / "mp_live_l2" / "packet" / "inputs" / "trace"
                    / "events.lct")
    assert s.summary.header.level == "events" and s.summary.total_records
    assert s.keys.key_rows == 0 and s.events is not None and s.events.entries
    assert "trace_no_object_keys" not in {f.code for f in s.findings}


def test_write_amplification_needs_a_rewrite(backend: str) -> None:
    """A re-reserve of a written key alone (refused upstream) is no amplification; a second
    finish_write of the key is, measured: supported on a clean trace, partial when cut."""
    one = [w.storage_record("reserve_write", 1, 1.0, 0),
           w.storage_record("finish_write", 1, 1.1, 0)]
    again = [w.storage_record("reserve_write", 1, 2.0, 0)]
    s = trace_stats(w.trace(*one, *again))
    assert s.reuse.reserves_of_written.value == 1
    assert "trace_write_amplification" not in {f.code for f in s.findings}
    rewrite = [*one, *again, w.storage_record("finish_write", 1, 2.1, 0),
               w.storage_record("finish_write", 1, 5.0, 1)]
    data = w.trace(*rewrite)
    (f,) = [f for f in trace_stats(data).findings if f.code == "trace_write_amplification"]
    assert f.evidence == "supported" and f.count.value == 1 and f.detail.startswith("1 ")
    cut = [f for f in trace_stats(data[:-3]).findings if f.code == "trace_write_amplification"]
    assert cut and cut[0].evidence == "partial"


def test_header_only_trace(backend: str) -> None:
    s = trace_stats(w.trace())
    assert s.keys.distinct.value == 0 and s.time.buckets == 0 and s.findings == []


# -- exports and CLI ----------------------------------------------------------------------------


def test_export_csv(tmp_path: Path, backend: str) -> None:
    paths = export_trace(STORAGE, tmp_path, "csv")
    assert [p.name for p in paths] == ["trace_ops.csv", "trace_timeline.csv",
                                       "trace_records.csv"]
    ops_text = (tmp_path / "trace_ops.csv").read_bytes()
    assert ops_text.startswith(b"qualname,count,") and ops_text.count(b"\r\n") == 7
    rows = list(csv.DictReader((tmp_path / "trace_ops.csv").open(newline="")))
    # Upstream's `lmcache trace replay` of this same file wrote trace_replay_ops.csv: the
    # shared columns (qualname, count) and the row order agree.
    with (UPSTREAM / "storage.trace_replay_ops.csv").open(newline="") as f:
        upstream = list(csv.DictReader(f))
    assert [(r["qualname"], r["count"]) for r in rows] == [
        (r["qualname"], r["count"]) for r in upstream]
    recs = list(csv.DictReader((tmp_path / "trace_records.csv").open(newline="")))
    assert len(recs) == 74 and recs[0]["offset"] == "1504"
    assert recs[0]["qualname"].endswith("submit_prefetch_task") and recs[0]["nkeys"] == "4"
    tl = list(csv.DictReader((tmp_path / "trace_timeline.csv").open(newline="")))
    assert sum(int(r["records"]) for r in tl) == 74
    assert sum(int(r["records_finish_write"]) for r in tl) == 8


def test_export_jsonl_and_npz(tmp_path: Path, backend: str) -> None:
    export_trace(STORAGE, tmp_path, "jsonl", tables=("ops", "records"))
    lines = (tmp_path / "trace_records.jsonl").read_text().splitlines()
    assert len(lines) == 74 and json.loads(lines[0])["offset"] == 1504
    ops = [json.loads(x) for x in (tmp_path / "trace_ops.jsonl").read_text().splitlines()]
    assert sum(o["count"] for o in ops) == 74
    (p,) = export_trace(STORAGE, tmp_path, "npz")
    with np.load(p) as z:
        from inferguard import TraceFile

        with TraceFile(STORAGE) as t:
            cols = t.scan()
        assert np.array_equal(z["records_offset"], cols.offset)
        assert np.array_equal(z["records_nkeys"], cols.nkeys)
        assert list(z["records_qualnames"]) == list(cols.ops)
        assert int(z["timeline_records"].sum()) == 74
        assert int(z["ops_key_rows"].sum()) == 336


def test_key_rows_export_and_library(tmp_path: Path, backend: str) -> None:
    from inferguard.lct._stats import iter_key_columns

    cols = list(iter_key_columns(REPLAY))
    fps = np.concatenate([c.fingerprint for c in cols])
    assert len(fps) == 254 and len(set(fps.tolist())) == 44
    assert cols[-1].models == ("test-model", "llama-alpha", "qwen-beta")
    export_trace(REPLAY, tmp_path, "csv", tables=("keys",))
    rows = list(csv.DictReader((tmp_path / "trace_keys.csv").open(newline="")))
    assert len(rows) == 254 and rows[0]["offset"] == "1498"
    assert int(rows[0]["fingerprint"], 16) == int(fps[0]) and rows[0]["model_name"] == "test-model"
    assert all(len(r["fingerprint"]) == 16 for r in rows)
    raw = REPLAY.read_bytes()
    assert not any(bytes.fromhex(r["fingerprint"]) in raw for r in rows)  # no raw hashes
    (p,) = export_trace(REPLAY, tmp_path, "npz", tables=("keys",))
    with np.load(p) as z:
        assert np.array_equal(z["keys_fingerprint"], fps)
        assert list(z["keys_models"]) == ["test-model", "llama-alpha", "qwen-beta"]


def test_cli_stats_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "stats", str(REPLAY)]) == 0
    out = capsys.readouterr().out
    assert "redundant_reserves:" in out and "trace_unserved_prefetches" in out
    assert "trace_write_amplification" not in out  # nothing was rewritten
    assert "16777472 (world_size=1 global_rank=0 local_world_size=1 local_rank=0)" in out
    assert main(["trace", "stats", "--json", str(REPLAY)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "inferguard.trace_stats/1" and doc["keys"]["distinct"]["value"] == 44


def test_cli_stats_events_and_sampled(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "events.lct"
    p.write_bytes(events_trace())
    assert main(["trace", "stats", str(p)]) == 0
    out = capsys.readouterr().out
    assert "  events:" in out and "srv-a: incarnations=[1, 2] restarts=1" in out
    assert "trace_events_restarts (warning, supported)" in out
    q = tmp_path / "big.lct"
    q.write_bytes(generate(3, 300, docs=250).data)
    assert main(["trace", "stats", "--max-exact-keys", "64", str(q)]) == 0
    out = capsys.readouterr().out
    assert "(estimates: hash sample" in out and "hyperloglog)" in out


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "export", str(STORAGE), "--format", "csv", "-o", str(tmp_path),
                 "--tables", "ops"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "trace_ops.csv")


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.txt"
    p.write_text("not a trace at all\n")
    assert main(["trace", "stats", str(p)]) == 2
    assert "not an LMCache trace" in capsys.readouterr().err
    assert main(["trace", "stats", "--bucket-s", "0", str(STORAGE)]) == 2


def test_progress_callback() -> None:
    calls: list[tuple[int, int]] = []
    analyze_trace(REPLAY, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (REPLAY.stat().st_size,) * 2
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from inferguard.cli._trace import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, tty = io.StringIO(), Tty()
    for stream in (quiet, tty):
        p = Progress(stream, min_interval=0.0)
        p(50, 100)
        p(100, 100)
        p.close()
    assert quiet.getvalue() == ""
    assert "100.0%" in tty.getvalue() and tty.getvalue().endswith("\n")


def test_arrays_are_numpy() -> None:
    a = analyze_trace(STORAGE).arrays
    assert a.records.dtype == np.int64 and a.bucket_start.dtype == np.float64
    assert math.isclose(float(a.bucket_start[1] - a.bucket_start[0]), 1.0)


def test_events_odd_keys(backend: str) -> None:
    head = w.header("schema1", level="events", level_meta={"instance_id": "a"})
    good = {"chunk_hash_hex": "ab" * 32, "model_name": "m", "kv_rank": 0,
            "object_group_id": 0, "cache_salt": ["not", "a", "str"]}
    bad = [{"chunk_hash_hex": "zz", "model_name": "m"}, {"model_name": "m"},
           {"chunk_hash_hex": "ab", "model_name": 5}, "not a map"]
    entries = [{"key": k, "size_bytes": 1} for k in [good, *bad]]
    args = {"instance_id": "a", "incarnation": 1, "event_type": "store", "tier": "l1",
            "backend": None, "entries": entries}
    e = trace_stats(w.trace(w.record("events.batch", args, 1.0, 1.0), head=head)).events
    assert e is not None and (e.entries, e.malformed_keys) == (5, 4)
    assert e.flow.l1_keys_stored.value == 1
