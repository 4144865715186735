"""The summary road of native storage traces (`TallyKernel`: rows folded in C by
native/lct_tally.c as they are scanned) gives exactly the summary of the numpy road
(`_Aggregate` over the same native scan's chunks) and of the pure-Python backend, on clean
and damaged traces, one thread or two, and without importing numpy."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard import native_available
from inferguard.lct import _file
from inferguard.lct import _frame as tf
from inferguard.lct import _scan as _trace_scan
from inferguard.lct._file import TraceFile, _Aggregate
from inferguard.lct._scan import FindingLog

from . import lct_writer as w
from .cli_imports import run_cli
from .test_trace_parity import _mutate
from .test_trace_small import GENERATED

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")
REPO = Path(__file__).resolve().parent.parent
NAN = float("nan")


def _tally_road(data: bytes, window: int = 1 << 20) -> dict[str, Any]:
    with TraceFile(data, window_size=window) as t:
        out: dict[str, Any] = msgspec.to_builtins(t.summary(backend="native"))
    return out


def _numpy_road(data: bytes, window: int = 1 << 20) -> dict[str, Any]:
    """The numpy aggregate over the native scan's chunks (what the summary did before)."""
    findings = FindingLog(_file.MAX_FINDINGS)
    with TraceFile(data, window_size=window) as t:
        chunks, kernel = t._chunks("native", findings)
        agg = _Aggregate(False, "native")
        for c in chunks:
            agg.add(c, kernel)
        out: dict[str, Any] = msgspec.to_builtins(agg.result(
            t, "native", kernel.names(), t._header_findings + findings, findings.omitted,
            findings.omitted_skipped))
    return out


def _python(data: bytes, window: int = 1 << 20) -> dict[str, Any]:
    with TraceFile(data, window_size=window) as t:
        out: dict[str, Any] = msgspec.to_builtins(t.summary(backend="python"))
    out["backend"] = "native"
    return out


@pytest.fixture
def general(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small traces take the general roads too."""
    monkeypatch.setattr(_file, "SMALL_TRACE_BYTES", -1)


@pytest.fixture(params=[1, 2], ids=["one_thread", "two_threads"])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """One scan thread, or the two-thread window split forced on tiny inputs."""
    n: int = request.param
    monkeypatch.setattr(_trace_scan, "SCAN_THREADS", n)
    if n == 2:
        monkeypatch.setattr(_trace_scan, "PARALLEL_MIN_BYTES", 1)
    return n


def _same(data: bytes, window: int = 1 << 20) -> dict[str, Any]:
    got = _tally_road(data, window)
    assert got == _numpy_road(data, window)
    assert got == _python(data, window)
    return got


@pytest.mark.parametrize("name", sorted(n for n in GENERATED if n != "events"))
def test_generated_traces(name: str, general: None, threads: int) -> None:
    _same(GENERATED[name])


def test_random_damage(general: None, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 37)  # many chunks per window
    rng = random.Random(11)
    seed = w.trace(*[w.storage_record("reserve_write" if k % 3 else "finish_write", k % 7,
                                      k * 0.25 - 3 if k % 50 else NAN, k) for k in range(400)])
    compared = 0
    for round_ in range(120):
        data = _mutate(rng, seed) if round_ else seed
        try:
            _numpy_road(data, 1 << 16)
        except ValueError:  # not a trace at all
            continue
        _same(data, 1 << 16)
        compared += 1
    assert compared > 80


def test_timestamps_across_chunks(general: None, threads: int,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Decreases, negatives, NaNs and first/last are counted across chunk and thread
    boundaries exactly as in one pass; a -0.0 ties with 0.0 and reports as 0.0."""
    monkeypatch.setattr(_trace_scan, "CHUNK_ROWS", 5)
    times = [(3.0, -0.0), (NAN, 0.0), (2.0, 5.0), (-0.0, NAN), (0.0, -1.5), (-4.0, 9.0),
             (NAN, NAN), (1.0, -0.0)] * 9 + [(0.5, 0.0)]
    data = w.trace(*[w.record(f"op{k % 3}", {}, m, t) for k, (m, t) in enumerate(times)])
    got = _same(data)
    mono = [m for m, _ in times if m == m]
    integ = got["integrity"]
    assert integ["nan_timestamps"] == sum((m != m) + (t != t) for m, t in times)
    assert integ["negative_t_mono"] == sum(1 for m in mono if m < 0)
    assert integ["t_mono_decreases"] == sum(1 for a, b in itertools.pairwise(mono) if b < a)
    assert (got["t_mono_first"], got["t_mono_last"]) == (3.0, 0.5)
    assert (got["wall_start"], got["wall_end"]) == (-1.5, 9.0)
    assert str(got["wall_start"]) != "-0.0" and got["duration_s"] == 3.0


def test_op_table_full_across_the_thread_split(general: None, threads: int) -> None:
    """More qualnames than the table holds: the second half's names that do not fit in the
    first half's table count as OP_TABLE_FULL rows, as one thread would count them."""
    n_ops = tf.MAX_OPS + 300
    data = w.trace(*[w.record(f"op.{k % n_ops}", {"keys": [w.object_key(k)] * (k % 3)},
                              1.0, 2.0) for k in range(9000)])
    got = _same(data)
    full = [o for o in got["ops"] if o["qualname"] == _file._STATUS_NAMES[tf.ROW_OP_TABLE_FULL]]
    assert full and full[0]["count"] == sum(1 for k in range(9000) if k % n_ops >= tf.MAX_OPS)


def test_events_traces_keep_the_numpy_road(general: None) -> None:
    """Near miss: an events-level trace needs its records' args, so it is not tallied."""
    data = GENERATED["events"]
    with TraceFile(data) as t:
        s = t.summary(backend="native")
    assert s.events is not None and s.events.entries


def test_merge_refuses_a_mapping_past_the_table() -> None:
    from inferguard._native._lct import NativeTally

    a, b = NativeTally(), NativeTally()
    with pytest.raises(ValueError, match="past the name table"):
        a.merge(b, [tf.MAX_OPS])
    a.merge(b, [0, -1])
    assert a.read().frames == 0


def test_trace_info_on_a_big_storage_trace_imports_no_numpy(tmp_path: Path) -> None:
    path = tmp_path / "big.lct"
    body = w.storage_record("reserve_write", 3, 1.0)
    path.write_bytes(w.trace(*[body] * ((_file.SMALL_TRACE_BYTES * 2) // len(body))))
    rc, numpy_loaded, summary = run_cli(["trace", "info", str(path), "--json"])
    assert rc == 0 and not numpy_loaded
    assert summary["backend"] == "native" and summary["total_records"] > 1000
