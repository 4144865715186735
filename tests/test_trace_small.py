"""The small-trace road of `TraceFile.summary()` (one list scan, no numpy) gives exactly the
summary of the general, numpy road, on both backends, for clean traces of every shape, and
steps aside on any damage (the general road then reports it)."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import msgspec
import pytest

from inferguard import native_available
from inferguard.lct import _file
from tests import lct_writer as w
from tests.cli_imports import run_cli

REPO = Path(__file__).resolve().parent.parent
FIXTURES = sorted(p for p in (REPO / "tests" / "fixtures").rglob("*.lct")
                  if p.stat().st_size <= _file.SMALL_TRACE_BYTES)
BACKENDS = ["python"] + (["native"] if native_available() else [])
NAN = float("nan")


def _generated() -> dict[str, bytes]:
    rng = random.Random(3)
    ops = ["submit_prefetch_task", "reserve_write", "finish_write",
           "read_prefetched_results.__enter__", "finish_read_prefetched"]
    clean = [w.storage_record(rng.choice(ops), rng.randint(0, 9), 0.01 * i, i * 16)
             for i in range(300)]
    odd_times = [w.record("a.op", {}, t, tw) for t, tw in
                 [(1.0, 5.0), (NAN, 6.0), (0.5, NAN), (-2.0, 7.0), (3.0, 1.0), (NAN, NAN)]]
    events = [w.record("events.batch", {"instance_id": "i0", "incarnation": k % 2,
                                        "event_type": "store", "tier": "L1", "shared": False,
                                        "entries": [{"size_bytes": 10 + k, "token_ids": [k]}]},
                       0.1 * k, 1.0 + k) for k in range(20)]
    events.append(w.record("events.lifecycle", {"phase": "start"}, 5.0, 9.0))
    events.append(w.record("events.batch", {"entries": 3}, 6.0, 10.0))  # undecodable fold
    long_name = [w.record("x" * 2000, {}, 1.0, 2.0), w.record("b", {}, 2.0, 3.0)]
    many_ops = [w.record(f"op{i}", {}, float(i), float(i)) for i in range(4200)]
    base = w.trace(*clean)
    return {
        "clean": base,
        "empty": w.trace(),
        "odd_times": w.trace(*odd_times),
        "events": w.trace(*events, head=w.header(level="events")),
        "v0_header": w.trace(*clean[:5], head=w.header(variant="v0")),
        "bad_magic": w.trace(*clean[:5], head=w.header(magic=b"XXXX")),
        "long_qualname": w.trace(*long_name),
        "op_table_full": w.trace(*many_ops),
        "truncated": base[:-7],
        "malformed_body": w.trace(clean[0], b"\xc1\xc1\xc1", clean[1]),
        "bad_length": base[:200] + struct.pack(">I", 1 << 30) + base[204:],
    }


GENERATED = _generated()


def _both(source: Path | bytes, backend: str, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[object, object]:
    small = msgspec.to_builtins(_file.summarize_trace(source, backend=backend))  # type: ignore[arg-type]
    with monkeypatch.context() as m:
        m.setattr(_file, "SMALL_TRACE_BYTES", -1)
        general = msgspec.to_builtins(_file.summarize_trace(source, backend=backend))  # type: ignore[arg-type]
    return small, general


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_small_road_equals_general_road(name: str, backend: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    small, general = _both(GENERATED[name], backend, monkeypatch)
    assert msgspec.json.encode(small) == msgspec.json.encode(general)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_small_road_equals_general_road_on_recorded_traces(
        path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    small, general = _both(path, backend, monkeypatch)
    assert msgspec.json.encode(small) == msgspec.json.encode(general)


def test_the_small_road_is_taken_for_clean_traces_only(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    real = _file.TraceFile._small_summary

    def spy(self: _file.TraceFile, backend: str) -> object:
        got = real(self, backend)  # type: ignore[arg-type]
        taken.append(got is not None)
        return got

    monkeypatch.setattr(_file.TraceFile, "_small_summary", spy)
    for name in ("clean", "odd_times", "events", "truncated", "malformed_body",
                 "long_qualname"):
        _file.summarize_trace(GENERATED[name], backend="python")
    assert taken == [True, True, True, False, False, False]
    s = _file.summarize_trace(GENERATED["truncated"], backend="python")
    assert not s.integrity.ok and s.integrity.findings[0].kind == "truncated_frame"


def test_trace_info_on_a_small_trace_loads_no_numpy(tmp_path: Path) -> None:
    path = tmp_path / "tiny.lct"
    path.write_bytes(GENERATED["clean"])
    rc, numpy_loaded, summary = run_cli(["trace", "info", str(path), "--json"])
    assert rc == 0 and not numpy_loaded
    assert summary["total_records"] == 300
