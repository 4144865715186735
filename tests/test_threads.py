"""`inferguard._threads.Ahead`: a stage on a worker thread a bounded number of items ahead
of its consumer, and its use by the analytics pass (scan + key extraction ahead of the fold)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferguard._threads import Ahead


def _workers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("test-ahead")]


def test_every_item_arrives_in_order_and_the_worker_ends() -> None:
    with Ahead(iter(range(1000)), "test-ahead") as items:
        got = list(items)
    assert got == list(range(1000))
    assert _workers() == []


def test_the_worker_stays_at_most_depth_items_ahead() -> None:
    made: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            made.append(i)
            yield i

    with Ahead(produce(), "test-ahead", depth=2) as items:
        first = next(items)
        # One item consumed, two queued, one made and waiting to be queued: no more.
        for _ in range(1000):  # up to 5 s for the worker to fill the queue
            if len(made) >= 4:
                break
            threading.Event().wait(0.005)
        threading.Event().wait(0.05)
        assert first == 0
        assert len(made) == 4
    assert _workers() == []


def test_an_error_in_the_worker_comes_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("from the worker")

    got: list[int] = []
    with pytest.raises(ValueError, match="from the worker"), \
            Ahead(produce(), "test-ahead") as items:
        for x in items:
            got.append(x)
    assert got == [1, 2]
    assert _workers() == []


def test_leaving_early_stops_the_worker_before_the_with_ends() -> None:
    """A `break` or an error in the consumer: the worker stops taking items and is joined,
    so nothing it reads (a mapped file) is closed under it."""
    made: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(10_000):
            made.append(i)
            yield i

    with Ahead(produce(), "test-ahead") as items:
        for x in items:
            if x == 3:
                break
    assert _workers() == []
    assert len(made) <= 3 + 1 + 2  # taken, queued, one in hand
    with pytest.raises(KeyError), Ahead(produce(), "test-ahead") as items:
        next(items)
        raise KeyError("consumer")
    assert _workers() == []


def test_an_empty_stage() -> None:
    with Ahead(iter(()), "test-ahead") as items:
        assert list(items) == []


def _stage_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The thread each item of the analytics' scan stage is made on, in order."""
    from inferguard.lct import _stats

    seen: list[str] = []
    real = _stats._scanned

    def spy(*a: object, **k: object) -> Iterator[object]:
        for item in real(*a, **k):  # type: ignore[arg-type]
            seen.append(threading.current_thread().name)
            yield item

    monkeypatch.setattr(_stats, "_scanned", spy)
    return seen


@pytest.mark.parametrize("backend", ["native", "python"])
def test_the_analytics_pass_runs_its_scan_on_a_worker_with_two_threads(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str) -> None:
    """With two threads the scan stage runs on the worker (one with one thread, and at the
    events level, whose folds read the scan's window); the results are the same."""
    from inferguard import native_backend
    from inferguard.lct import _scan, analyze_trace
    from tests import lct_writer as w

    if backend == "native" and native_backend() != "native":
        pytest.skip("native core not built")
    path = tmp_path / "t.lct"
    ops = ["submit_prefetch_task", "reserve_write", "finish_write", "finish_read_prefetched"]
    path.write_bytes(w.trace(*(w.storage_record(ops[i % 4], 1 + i % 3, 0.001 * i, i % 50)
                               for i in range(2000))))
    monkeypatch.setattr(_scan, "CHUNK_ROWS", 64)  # many chunks: the worker runs ahead
    seen = _stage_threads(monkeypatch)
    out = {}
    for threads in (1, 2):
        seen.clear()
        monkeypatch.setattr(_scan, "ANALYTICS_SCAN_THREADS", threads)
        out[threads] = analyze_trace(path, backend=backend).stats  # type: ignore[arg-type]
        want = "inferguard-scan" if threads == 2 else threading.current_thread().name
        assert len(seen) > 20 and set(seen) == {want}
    assert out[1] == out[2]
    assert [t.name for t in threading.enumerate() if t.name == "inferguard-scan"] == []


def test_the_events_level_folds_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Near miss of the test above: an events-level trace's folds read records from the
    scan's window, which the scan unmaps when it moves on, so its scan stays inline."""
    from inferguard.lct import _scan, analyze_trace

    seen = _stage_threads(monkeypatch)
    monkeypatch.setattr(_scan, "ANALYTICS_SCAN_THREADS", 2)
    monkeypatch.setattr(_scan, "CHUNK_ROWS", 16)
    events = (Path(__file__).parent / "fixtures/lmcache_live/mp_live_l2/packet/inputs/trace"
              / "events.lct")
    analyze_trace(events)
    assert len(seen) > 1 and set(seen) == {threading.current_thread().name}


@pytest.mark.parametrize("backend", ["native", "python"])
def test_an_error_in_the_fold_stops_the_worker_before_the_file_closes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str) -> None:
    """The fold fails mid-trace while the worker scans ahead: the fold's error is what the
    caller sees (not one from a window unmapped under the worker), and no worker is left."""
    from inferguard import native_backend
    from inferguard.lct import TraceFile, _engine, _scan, analyze_trace
    from tests import lct_writer as w

    if backend == "native" and native_backend() != "native":
        pytest.skip("native core not built")
    path = tmp_path / "t.lct"
    path.write_bytes(w.trace(*(w.storage_record("reserve_write", 2, 0.001 * i, i)
                               for i in range(3000))))
    monkeypatch.setattr(_scan, "ANALYTICS_SCAN_THREADS", 2)
    monkeypatch.setattr(_scan, "CHUNK_ROWS", 32)
    real, calls = _engine.Engine.add, [0]

    def failing(self: Any, *a: Any) -> None:
        calls[0] += 1
        if calls[0] == 5:
            raise RuntimeError("fold failed")
        real(self, *a)

    monkeypatch.setattr(_engine.Engine, "add", failing)
    with pytest.raises(RuntimeError, match="fold failed"), \
            TraceFile(path, window_size=1 << 16) as t:  # many windows, each unmapped in turn
        analyze_trace(t, backend=backend)  # type: ignore[arg-type]
    assert [t.name for t in threading.enumerate() if t.name == "inferguard-scan"] == []
