"""The summary's events block (`trace info`) folded from the C decoder's rows agrees with
its msgspec reading (lenient: str()/int()/bool() of whatever the fields hold).

On the native backend a batch row is folded from C's columns only when they reproduce
that reading (`_evrows.ok_for_summary`); these tests pin which rows qualify and compare the
block on both backends, and against the small-trace path (msgspec only), on the real
events capture, generated traces, every hand-made edge case and damaged traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from benchmarks.trace_gen import write_events_trace
from inferguard import TraceFile, native_available
from inferguard.lct import _evrows, _file
from inferguard.lct._stats import analyze_trace
from tests.test_trace_events_native import (
    CASES,
    REAL,
    P,
    batch,
    c_rows,
    damaged_agree,
    entry,
    key,
    m,
    trace_of,
)

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")


def block(data: bytes | Path, backend: str, *, small: bool = False) -> Any:
    """The summary's events block; `small`: the one-scan small-trace road (msgspec)."""
    src = data if isinstance(data, bytes) else data.read_bytes()
    old = _file.SMALL_TRACE_BYTES
    _file.SMALL_TRACE_BYTES = (1 << 40) if small else 0
    try:
        with TraceFile(src) as t:
            s = t.summary(backend=backend)  # type: ignore[arg-type]
    finally:
        _file.SMALL_TRACE_BYTES = old
    return msgspec.to_builtins(s.events)


def same(data: bytes | Path) -> Any:
    native = block(data, "native")
    assert native == block(data, "python")
    if isinstance(data, bytes) or data.stat().st_size < (8 << 20):
        assert native == block(data, "python", small=True)
    a = analyze_trace(data, backend="native").stats.summary.events  # decoded once, shared
    assert msgspec.to_builtins(a) == native
    assert msgspec.to_builtins(analyze_trace(data, backend="python").stats.summary.events
                               ) == native
    return native


SUMMARY_CASES: dict[str, tuple[bytes, bool]] = {  # name: (args, folded from C columns)
    "canonical": (CASES["canonical"][0], True),
    "tokens_empty": (batch(entry(extra=P([]))), True),
    "tokens_nil": (batch(entry(extra=P(None))), True),
    "tokens_zero": (batch(entry(extra=P(0))), True),
    "tokens_str": (batch(entry(extra=P("x"))), True),
    "tokens_float": (batch(entry(extra=P(0.0))), False),
    "tokens_absent": (batch(m((P("key"), key()), (P("size_bytes"), P(100)))), True),
    "shared_true": (batch(entry(), shared=P(True)), True),
    "shared_int": (batch(entry(), shared=P(2)), True),
    "shared_str_empty": (batch(entry(), shared=P("")), True),
    "shared_float": (batch(entry(), shared=P(1.0)), False),
    "shared_absent": (batch(entry(), shared=b"-"), True),
    "size_bool": (CASES["size_bool"][0], False),
    "size_float": (CASES["size_float"][0], False),
    "size_absent": (batch(m((P("key"), key()), (P("token_ids"), P([1, 2])))), True),
    "inc_absent": (batch(entry(), incarnation=b"-"), True),
    "inc_bool": (CASES["inc_bool"][0], False),
    "inc_nil": (batch(entry(), incarnation=P(None)), False),
    "backend_nil": (CASES["backend_nil"][0], True),
    "backend_empty": (batch(entry(), backend=P("")), True),
    "backend_int": (CASES["backend_int"][0], False),
    "instance_nil": (batch(entry(), instance_id=P(None)), True),
    "etype_absent": (batch(entry(), event_type=b"-"), True),
    "tier_nil": (batch(entry(), tier=P(None)), True),
    "delete_float_size": (batch(entry(size=P(1.5)), event_type=P("delete")), False),
    "malformed_key": (batch(entry(key(kv_rank=P(True)))), True),
}


@pytest.mark.parametrize("name", sorted(SUMMARY_CASES))
def test_summary_case(name: str) -> None:
    args, from_c = SUMMARY_CASES[name]
    data = trace_of(args)
    rows = np.array([r for r, _ in c_rows(data)], np.int64)
    assert _evrows.ok_for_summary(rows).tolist() == [True, from_c, True], name
    same(data)


@pytest.mark.parametrize("name", sorted(CASES))
def test_events_edge_cases_summary_identical(name: str) -> None:
    same(trace_of(CASES[name][0]))


def test_summary_cases_mean_what_python_says() -> None:
    """Outcomes pinned independently of either decoder."""
    def ev(name: str) -> Any:
        return block(trace_of(SUMMARY_CASES[name][0]), "native")
    # the two canonical records around each case: a store (100 bytes, tokens) and a delete
    base = ev("canonical")
    assert base["store_bytes"] == 300 and base["entries_with_tokens"] == 3
    assert ev("tokens_empty")["entries_with_tokens"] == 1
    assert ev("tokens_str")["entries_with_tokens"] == 2
    assert ev("size_bool")["store_bytes"] == 101  # int(True)
    assert ev("size_float")["store_bytes"] == 101  # int(1.5)
    assert ev("size_absent")["store_bytes"] == 100
    scopes = [(b["event_type"], b["scope"], b["count"]) for b in ev("shared_int")["batches"]]
    assert sorted(scopes) == [("delete", "local", 1), ("store", "local", 1),
                              ("store", "shared", 1)]
    assert [i["instance_id"] for i in ev("instance_nil")["instances"]] == ["None", "srv"]
    assert [i["incarnations"] for i in ev("inc_absent")["instances"]] == [[0, 3]]
    assert {b["backend"] for b in ev("backend_nil")["batches"]} == {"", "dram"}
    assert ev("inc_nil")["undecodable_records"] == 1


def test_real_trace_summary_from_c() -> None:
    rows = c_rows(REAL.read_bytes())
    assert rows and all(r[0] == 1 and r[18] == 1 for r, _ in rows)
    e = same(REAL)
    assert e["undecodable_records"] == 0 and sum(b["count"] for b in e["batches"]) == len(rows)


@pytest.mark.parametrize("kw", [{}, {"token_ids": 64, "entries_per_batch": 8}])
def test_generated_summary_identical(tmp_path: Path, kw: dict[str, Any]) -> None:
    p = tmp_path / "ev.lct"
    write_events_trace(p, 400_000, **kw)
    assert all(r[18] == 1 for r, _ in c_rows(p.read_bytes()))
    e = same(p)
    assert e["entries_with_tokens"] == (e["entries"]["store"] if kw else 0)
    with TraceFile(p.read_bytes(), window_size=1 << 14) as t:  # frames across windows
        _file.SMALL_TRACE_BYTES, old = 0, _file.SMALL_TRACE_BYTES
        try:
            assert msgspec.to_builtins(t.summary(backend="native").events) == e
        finally:
            _file.SMALL_TRACE_BYTES = old


def test_damaged_summary_identical(tmp_path: Path) -> None:
    assert damaged_agree(tmp_path, 9, block) > 80


def test_summary_decode_without_fingerprints_gives_the_same_columns() -> None:
    """The summary's own decode (no key fingerprints, `trace info`) gives the columns of
    the full decode wherever that one takes the row; keys it does not hex-decode (spaces in
    a hash) it takes too, and the block stays the msgspec one."""
    from inferguard._native._lct import NativeEventsDecoder
    from tests.test_trace_events_native import frames

    for name, (args, _) in sorted(CASES.items()):
        data = trace_of(args)
        fr = [f for f in frames(data) if b"\xacevents.batch" in f[2][:80]]
        off = np.array([f[0] for f in fr], np.int64)
        ln = np.array([f[1] for f in fr], np.uint32)
        full, fps = NativeEventsDecoder().decode_all(data, 0, off, ln)
        lean, none = NativeEventsDecoder().decode_all(data, 0, off, ln, fingerprints=False)
        assert len(none) == 0 and len(fps) == full[full[:, 0] == 1, 15].sum()
        cols = [c for c in range(NativeEventsDecoder.COLS) if c != 17]
        taken = full[:, 0] == 1
        assert (lean[taken][:, cols] == full[taken][:, cols]).all(), name
        if name == "hex_with_space":
            assert lean[1, 0] == 1 and full[1, 0] == 0
        same(data)
