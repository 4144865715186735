"""The benchmark trace shapes (benchmarks/trace_gen.py) in the parity tests: the few-keys pool
shape and the many-keys shape (~2.4 M distinct keys per GiB, 60 % of key rows reused) give
the same summary and analytics on both backends and on one or two scan threads, exact
distinct counts while the keys fit the bound (checked against a plain msgpack walk of the
file), and HyperLogLog estimates within their error past it."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest

from benchmarks.trace_gen import write_storage_trace
from inferguard import native_available
from inferguard.lct import _scan as _trace_scan
from inferguard.lct._file import summarize_trace
from inferguard.lct._stats import TraceStats, trace_stats

BACKENDS = ["python"] + (["native"] if native_available() else [])
SHAPES: dict[str, dict[str, Any]] = {
    "pool_keys": {},
    "many_keys": {"keys_per_call": (1, 6), "reuse": 0.6},
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def shaped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, Path, int]:
    path = tmp_path_factory.mktemp("shapes") / f"{request.param}.lct"
    records = write_storage_trace(path, 3 << 20, seed=21, **SHAPES[request.param])
    return request.param, path, records


def _distinct_hashes(path: Path) -> tuple[int, int]:
    """(key rows, distinct chunk hashes), by decoding every record with plain msgpack."""
    data = path.read_bytes()
    rows, seen = 0, set()

    def walk(v: Any) -> None:
        nonlocal rows
        if isinstance(v, dict):
            if v.get("__t__") == "ObjectKey":
                rows += 1
                seen.add(v["v"]["chunk_hash"])
                return
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    pos = 4 + struct.unpack_from(">I", data, 0)[0]  # the header frame
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        walk(msgspec.msgpack.decode(data[pos + 4:pos + 4 + n])["args"])
        pos += 4 + n
    return rows, len(seen)


def _comparable(s: TraceStats) -> dict[str, Any]:
    d: dict[str, Any] = msgspec.to_builtins(s)
    d.pop("backend")
    d["summary"].pop("backend")
    return d


def test_exact_while_the_keys_fit(shaped: tuple[str, Path, int]) -> None:
    shape, path, records = shaped
    rows, distinct = _distinct_hashes(path)
    s = trace_stats(path, max_exact_keys=1 << 20)
    assert s.summary.total_records == records and s.keys.key_rows == rows
    assert s.keys.exact and s.keys.distinct.value == distinct
    if shape == "many_keys":  # the shape's point: most rows reuse, yet keys keep coming
        assert 0.3 < distinct / rows < 0.5, (distinct, rows)
    else:
        assert distinct < 20_000


def test_hyperloglog_past_the_bound(shaped: tuple[str, Path, int]) -> None:
    _, path, _ = shaped
    _, distinct = _distinct_hashes(path)
    bound = max(64, distinct // 8)
    s = trace_stats(path, max_exact_keys=bound)
    k = s.keys
    assert not k.exact and k.distinct.method == "hyperloglog"
    assert abs(k.distinct.value - distinct) <= 4 * k.distinct.stderr + 2


@pytest.mark.skipif(not native_available(), reason="native backend not built")
@pytest.mark.parametrize("max_keys", [1 << 20, 500])
def test_backends_and_thread_counts_agree(shaped: tuple[str, Path, int], max_keys: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, path, _ = shaped
    python = _comparable(trace_stats(path, backend="python", max_exact_keys=max_keys))
    with monkeypatch.context() as m:  # two threads on a small file: the summary's window
        m.setattr(_trace_scan, "PARALLEL_MIN_BYTES", 1)  # split, the analytics' scan a
        m.setattr(_trace_scan, "SCAN_THREADS", 2)  # chunk ahead of the fold (small chunks,
        m.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 2)  # so it runs ahead)
        m.setattr(_trace_scan, "CHUNK_ROWS", 4096)
        two = _comparable(trace_stats(path, backend="native", max_exact_keys=max_keys))
        info_two = msgspec.to_builtins(summarize_trace(path, backend="native"))
    with monkeypatch.context() as m:
        m.setattr(_trace_scan, "SCAN_THREADS", 1)
        m.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 1)
        one = _comparable(trace_stats(path, backend="native", max_exact_keys=max_keys))
        info_one = msgspec.to_builtins(summarize_trace(path, backend="native"))
    assert python == two == one
    assert info_one == info_two
    info_py = msgspec.to_builtins(summarize_trace(path, backend="python"))
    info_py.pop("backend"), info_one.pop("backend")
    assert info_py == info_one


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_results_do_not_depend_on_piece_boundaries(
        shaped: tuple[str, Path, int], backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the bound the sampling level rises mid-trace; the lifecycle examples must be
    # those of the keys still tracked at the end, wherever the pieces ended (they once
    # kept offsets of keys dropped later, so chunk sizes and thread counts changed them).
    from inferguard.lct import _keys as tk

    _, path, _ = shaped
    whole = _comparable(trace_stats(path, backend=backend, max_exact_keys=300))  # type: ignore[arg-type]
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 997)
    monkeypatch.setattr(tk, "KEY_ROWS", 1009)
    assert _comparable(trace_stats(path, backend=backend, max_exact_keys=300)) == whole  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampling_compaction_in_blocks_equals_one_block(
        shaped: tuple[str, Path, int], backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Raising the sampling level moves the kept keys' rows down a block at a time (the
    # state is never copied whole); any block size must give the same results. Small
    # pieces, so that levels rise after keys have state (in one big piece they would all
    # rise before the first fold).
    from inferguard.lct import _engine
    from inferguard.lct import _keys as tk

    _, path, _ = shaped
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 997)
    monkeypatch.setattr(tk, "KEY_ROWS", 1009)
    whole = _comparable(trace_stats(path, backend=backend, max_exact_keys=300))  # type: ignore[arg-type]
    assert not whole["keys"]["exact"]
    monkeypatch.setattr(_engine, "COMPACT_ROWS", 7)
    assert _comparable(trace_stats(path, backend=backend, max_exact_keys=300)) == whole  # type: ignore[arg-type]
