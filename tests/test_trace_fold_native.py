"""The C key fold and read-context matching (native/lct_fold.c) against their numpy / Python
twins in lct/_engine.py: whole analytics results equal on every lifecycle role (abort_write
and unknown ops too), malformed keys, damaged frames, sampling-level raises in the middle
of a piece (tiny key bounds), pieces of a few rows and the benchmark's many-keys shape;
the context matcher on random enter/exit streams and past its open bound; and the C entry
point refusing out-of-range input without changing any state."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from benchmarks.trace_gen import write_storage_trace
from inferguard import native_available
from inferguard.lct import _engine as ts
from inferguard.lct import _keys as tk
from inferguard.lct import _scan as _trace_scan
from inferguard.lct._stats import TraceStats, trace_stats
from tests import lct_writer as w

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")

OPS = ["reserve_write", "finish_write", "abort_write", "submit_prefetch_task",
       "read_prefetched_results.__enter__", "read_prefetched_results.__exit__",
       "finish_read_prefetched", "contains"]


def _lifecycle_trace(seed: int, records: int = 3000, keyspace: int = 400) -> bytes:
    """Random ops over a small key space (so every lifecycle rule fires many times), with
    contexts opened and closed on repeating key sets and some malformed keys."""
    rng = random.Random(seed)
    bodies, t = [], 0.0
    open_ctx: list[int] = []
    for i in range(records):
        t += rng.expovariate(50.0)
        if rng.random() < 0.25:  # contexts: reuse the key sets of open ones
            if open_ctx and rng.random() < 0.55:
                first = open_ctx.pop(rng.randrange(len(open_ctx))) if rng.random() < 0.3 \
                    else open_ctx.pop()
                bodies.append(w.storage_record("read_prefetched_results.__exit__", 2, t, first))
            elif rng.random() < 0.1:  # an exit with no enter
                bodies.append(w.storage_record("read_prefetched_results.__exit__", 2, t,
                                               keyspace + i))
            else:
                first = rng.randrange(keyspace // 8)
                open_ctx.append(first)
                bodies.append(w.storage_record("read_prefetched_results.__enter__", 2, t,
                                               first))
            continue
        op = rng.choice(OPS)
        if rng.random() < 0.02:  # a malformed ObjectKey next to a good one
            keys = [w.wrap("ObjectKey", 7), w.object_key(rng.randrange(keyspace))]
            bodies.append(w.record(w.STORAGE_PREFIX + op, {"keys": keys}, t, 1.8e9 + t))
            continue
        bodies.append(w.storage_record(op, rng.randint(1, 5), t, rng.randrange(keyspace)))
    return w.trace(*bodies)


def _comparable(s: TraceStats) -> dict[str, Any]:
    d: dict[str, Any] = msgspec.to_builtins(s)
    d.pop("backend")
    d["summary"].pop("backend")
    return d


def _both(path: Path, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return (_comparable(trace_stats(path, backend="python", **kw)),
            _comparable(trace_stats(path, backend="native", **kw)))


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fold") / "life.lct"
    path.write_bytes(_lifecycle_trace(5))
    return path


@pytest.mark.parametrize("max_keys", [1 << 20, 60, 5])
@pytest.mark.parametrize("key_rows", [tk.KEY_ROWS, 7])
def test_native_fold_equals_the_twin(lifecycle: Path, max_keys: int, key_rows: int,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tk, "KEY_ROWS", key_rows)
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 301)
    py, nat = _both(lifecycle, max_exact_keys=max_keys)
    assert py == nat
    life = nat["lifecycle"]
    for rule in ("unfinished_writes", "finish_without_reserve", "open_read_contexts",
                 "exits_without_enter", "unserved_prefetches", "cold_lookups_unread",
                 "reads_without_lookup"):
        assert life[rule]["count"]["value"] > 0, rule  # the comparison covered every rule
    assert nat["keys"]["malformed_key_rows"] > 0
    assert nat["keys"]["exact"] == (max_keys == 1 << 20)


def test_damaged_trace(tmp_path: Path) -> None:
    data = bytearray(_lifecycle_trace(9, records=1500))
    rng = random.Random(3)
    for at in rng.sample(range(200, len(data)), 40):  # bytes hit anywhere past the header
        data[at] ^= 0xFF
    path = tmp_path / "damaged.lct"
    path.write_bytes(bytes(data[:-17]))  # and a torn last frame
    for max_keys in (1 << 20, 30):
        py, nat = _both(path, max_exact_keys=max_keys)
        assert py == nat
        assert not nat["summary"]["integrity"]["ok"]


def test_many_keys_shape_with_raises_in_pieces(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "many.lct"
    write_storage_trace(path, 1 << 20, seed=4, keys_per_call=(1, 6), reuse=0.6)
    monkeypatch.setattr(tk, "KEY_ROWS", 997)  # a raise lands inside most pieces
    py, nat = _both(path, max_exact_keys=700)
    assert py == nat and not nat["keys"]["exact"]
    assert nat["keys"]["sample_rate"] <= 1 / 16  # four raises or more


# -- the context matcher -----------------------------------------------------------------------


def _stream(rng: random.Random, n: int, alphabet: int) -> tuple[np.ndarray, ...]:
    ks = np.array([rng.randrange(alphabet) * 0x9E3779B97F4A7C15 % (1 << 64)
                   for _ in range(n)], np.uint64)
    ent = np.array([rng.random() < 0.55 for _ in range(n)], np.bool_)
    off = np.arange(n, dtype=np.int64) * 10 + 100
    t = np.arange(n, dtype=np.float64) / 7
    return ks, ent, off, t


def _matchers() -> tuple[Any, Any]:
    from inferguard._native._lct import NativeContextMatcher

    return ts.PythonContextMatcher(), NativeContextMatcher()


def test_context_matcher_equals_the_twin() -> None:
    rng = random.Random(1)
    py, nat = _matchers()
    for part in range(20):  # in batches, as chunks come
        ks, ent, off, t = _stream(rng, 500, 3 + part)
        off = off + part * 10_000
        assert py.match(ks, ent, off, t).tolist() == nat.match(ks, ent, off, t).tolist()
        assert (py.n_open, py.untracked, py.exit_alone) == (
            nat.n_open, nat.untracked, nat.exit_alone)
    assert _pairs(py.open_contexts()) == _pairs(nat.open_contexts())
    assert py.exit_alone > 0 and py.n_open > 0


def test_context_matcher_past_its_bound() -> None:
    py, nat = _matchers()
    n = ts.MAX_OPEN_CONTEXTS + 50
    ks = np.arange(n, dtype=np.uint64) % np.uint64(1000)
    ent = np.ones(n, np.bool_)
    off = np.arange(n, dtype=np.int64)
    t = off.astype(np.float64)
    for m in (py, nat):
        assert len(m.match(ks, ent, off, t)) == 0
        assert (m.n_open, m.untracked) == (ts.MAX_OPEN_CONTEXTS, 50)
    ex = np.ones(2000, np.bool_) & False  # exits: each key set's newest open enter closes
    a = py.match(ks[:2000], ex, off[:2000] + n, t[:2000])
    b = nat.match(ks[:2000], ex, off[:2000] + n, t[:2000])
    assert a.tolist() == b.tolist()
    assert _pairs(py.open_contexts()) == _pairs(nat.open_contexts())
    assert py.n_open == nat.n_open == ts.MAX_OPEN_CONTEXTS - 2000


# -- refusing bad input ------------------------------------------------------------------------


def test_fold_refuses_out_of_range_rows_ids_and_classes() -> None:
    from inferguard._native._protocols import KeyRows

    keys = ts.Keys("native", 16)
    assert keys.native is not None
    fp = np.array([3, 5], np.uint64)
    _, before = keys.intern(KeyRows(np.array([0, 1], np.int32), fp,
                                      np.zeros(2, np.int32), np.full(2, -1, np.int32),
                                      np.zeros(2, np.int64), np.zeros(2, np.int64),
                                      np.zeros(2, np.uint8)), np.ones(2, np.bool_),
                              survival=False)
    roles = np.array([ts.ROLE_RESERVE, ts.ROLE_LOOKUP], np.uint8)
    off = np.array([10, 20], np.int64)
    tb = np.zeros(2, np.int64)
    classes = np.zeros((1, ts.NROLES), np.int64)
    snapshot = [a.copy() for a in (keys.state, keys.cls, keys.first_bucket)]

    def fold(row: list[int], ids_: list[int], cls: list[int], rr: np.ndarray = roles) -> None:
        k = KeyRows(np.array(row, np.int32), fp, np.zeros(2, np.int32),
                    np.full(2, -1, np.int32), np.zeros(2, np.int64), np.zeros(2, np.int64),
                    np.zeros(2, np.uint8))
        assert keys.native is not None
        keys.native.fold(k, np.array(ids_, np.int32), np.array(cls, np.int32), before,
                         keys.count, 0, rr, off, tb, None, classes, None)

    for bad in (([0, 2], [0, 1], [0, 0]), ([0, -1], [0, 1], [0, 0]),  # row outside the chunk
                ([0, 1], [0, 2], [0, 0]),  # id not in the table
                ([0, 1], [0, 1], [0, 1]), ([0, 1], [0, 1], [-1, 0])):  # class not known
        with pytest.raises(RuntimeError, match="inconsistent"):
            fold(*bad)
    with pytest.raises(RuntimeError, match="inconsistent"):
        fold([0, 1], [0, 1], [0, 0], np.array([1, 8], np.uint8))  # role out of range
    for a, b in zip(snapshot, (keys.state, keys.cls, keys.first_bucket), strict=True):
        assert np.array_equal(a, b)
    assert not classes.any()
    fold([0, 1], [0, 1], [0, 0])  # the good piece goes in
    assert keys.cnt[0, ts.C_RESERVE] == 1 and keys.pend_lookup[1] == 21
    assert classes[0, ts.ROLE_RESERVE] == 1 and classes[0, ts.ROLE_LOOKUP] == 1


def test_hyperloglog_registers_equal_the_twin() -> None:
    keys = ts.Keys("native", 4)
    assert keys.native is not None
    rng = np.random.default_rng(2)
    fp = rng.integers(0, 1 << 64, 50_000, dtype=np.uint64, endpoint=False)
    edge = np.array([0, 1, (1 << 64) - 1, 1 << 50, (1 << 50) - 1, 1 << 63, 3 << 49],
                    np.uint64)  # rank clipped at 51, bucket 0, top bucket
    fp = np.concatenate([fp, edge, fp >> np.uint64(30)])
    py, nat = ts.HyperLogLog(), ts.HyperLogLog()
    py.add(fp)
    keys.native.hll_add(nat.reg, fp)
    assert np.array_equal(py.reg, nat.reg) and py.reg.max() == 64 - ts.HLL_P + 1


# -- the first-chunk digest, taken from the analytics pass -------------------------------------


@pytest.mark.parametrize("limit", [50_000, 37, 1])
def test_first_chunk_tap_equals_the_second_scan(lifecycle: Path, limit: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.evidence import _trace_read as et
    from inferguard.lct._file import TraceFile
    from inferguard.lct._stats import analyze_trace

    monkeypatch.setattr(et, "MAX_GAP_RECORDS", limit)  # the limit inside a chunk, or past it
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 301)
    fixtures = Path(__file__).parent / "fixtures"
    gaps = 0
    for path in [lifecycle, *sorted(fixtures.rglob("storage.lct"))]:
        for backend in ("python", "native"):
            with TraceFile(path) as t:
                tap = et.FirstChunkTap()
                analyze_trace(t, backend=backend, tap=tap)  # type: ignore[arg-type]
                got = tap.result(t)
                assert got == et.first_chunk_gaps(t, path), (path, backend)
                gaps += got.gap_lookups if got is not None else 0
    assert gaps > 0 or limit < 50_000  # the 0.5.7rc2 null-block run has some


@pytest.mark.parametrize("backend", ["python"] + (["native"] if native_available() else []))
@pytest.mark.parametrize("block", [1 << 16, 7, 1])
def test_raising_the_level_keeps_exactly_the_kept_keys_rows(
        backend: str, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kept key's whole state (its key row, class, first bucket) moves to its new id
    (its rank among the kept), the rest is zeroed; the table gives the same new ids."""
    monkeypatch.setattr(ts, "COMPACT_ROWS", block)
    rng = np.random.default_rng(9)
    n, cap = 700, 1000
    keys = ts.Keys(backend, cap)  # type: ignore[arg-type]
    fp = np.unique(rng.integers(1, 1 << 62, n, dtype=np.int64)).astype(np.uint64)
    ids, full = keys.table.intern(fp, np.ones(len(fp), np.bool_))
    assert not full and ids.tolist() == list(range(len(fp)))
    raw = keys.state.view(np.uint8)
    raw[:] = rng.integers(0, 256, raw.shape, dtype=np.uint8)
    keys.cls[:] = rng.integers(0, 50, cap, dtype=np.int32)
    keys.first_bucket[:] = rng.integers(-5, 1 << 40, cap, dtype=np.int64)
    before = (keys.state.view(np.int64).reshape(cap, -1).copy(), keys.cls.copy(),
              keys.first_bucket.copy())
    keep = keys._raise_level()
    kept = np.flatnonzero((fp & np.uint64(1)) == 0)  # level 1: the lowest bit clear
    assert keep.tolist() == ((fp & np.uint64(1)) == 0).tolist()
    k = len(kept)
    after = (keys.state.view(np.int64).reshape(cap, -1), keys.cls, keys.first_bucket)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(b[:k], a[kept])
        assert not b[k:len(fp)].any()
        assert np.array_equal(b[len(fp):], a[len(fp):])  # never used: untouched
    again, _ = keys.table.intern(fp[kept], np.ones(k, np.bool_))
    assert again.tolist() == list(range(k))


def _pairs(cols: tuple[Any, Any]) -> list[tuple[int, float]]:
    """A matcher's open contexts as sorted (offset, t_mono) pairs."""
    off, t = cols
    return sorted(zip(off.tolist(), t.tolist(), strict=True))
