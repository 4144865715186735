"""Native and pure-Python paths agree: per frame body, and per file under random damage."""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np
import pytest

from inferguard import TraceFile, native_available
from inferguard.lct import _frame as tf
from inferguard.lct._scan import CHUNK_ROWS, FindingLog

from . import lct_writer as w
from .conftest import UPSTREAM

needs_native = pytest.mark.skipif(not native_available(), reason="native backend not built")


def native_decode(body: bytes) -> tuple[int, float, float, str | None, int]:
    from inferguard import _core

    ffi, lib = _core.ffi, _core.lib
    tm, tw = ffi.new("double *"), ffi.new("double *")
    qo, qn, nk = ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("int32_t *")
    st = lib.lct_decode_record(body, len(body), tm, tw, qo, qn, nk)
    if st == tf.ROW_MALFORMED:
        return st, float("nan"), float("nan"), None, 0
    return st, tm[0], tw[0], body[qo[0]:qo[0] + qn[0]].decode(), nk[0]


def fast_python_decode(body: bytes) -> tuple[int, float, float, str | None, int]:
    interner = tf.PyInterner()
    rows = tf.Rows()
    tf.scan_python(w.frame(body), 0, 0, interner, 1, rows)
    st = rows.status[0]
    name = interner.names[rows.op[0]] if rows.op[0] >= 0 else None
    if st == tf.ROW_QUALNAME_LONG:
        name = tf.decode_body(body).qualname
    return st, rows.t_mono[0], rows.t_wall[0], name, rows.nkeys[0]


def oracle_decode(body: bytes) -> tuple[int, float, float, str | None, int]:
    d = tf.decode_body(body)
    return d.status, d.t_mono, d.t_wall, d.qualname, d.nkeys


def same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return all((x != x and y != y) or x == y for x, y in zip(a, b, strict=True))


def m(*pairs: tuple[bytes, bytes]) -> bytes:
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


S = w.pack
W = tf.OBJECT_KEY_WRAPPER
W_TAIL = W  # as a token's last byte (0x82), then three fixstrs: "__t__" "ObjectKey" "v"
BASE = [(S("type"), S("record")), (S("t_mono"), S(1.5)), (S("t_wall"), S(2.5)),
        (S("qualname"), S("q.op")), (S("args"), S({"keys": [w.object_key(1)]}))]


def replace(key: str, value: bytes) -> bytes:
    return m(*[(k, value if k == S(key) else v) for k, v in BASE])


CASES: dict[str, bytes] = {
    "base": m(*BASE),
    "map16": b"\xde\x00\x05" + b"".join(k + v for k, v in BASE),
    "map32": b"\xdf\x00\x00\x00\x05" + b"".join(k + v for k, v in BASE),
    "map32 huge": b"\xdf\xff\xff\xff\xff" + b"".join(k + v for k, v in BASE),
    "no type": m(*BASE[1:]),
    "dup t_mono": m(*BASE, (S("t_mono"), S(9.0))),
    "dup type bad": m(*BASE, (S("type"), S("zzz"))),
    "type int": replace("type", b"\x01"),
    "type str8": replace("type", b"\xd9\x06record"),
    "key str8": m((b"\xd9\x04type", S("record")), *BASE[1:]),
    "nonstr key": m(*BASE, (b"\x01", b"\x02")),
    "bin key": m(*BASE, (b"\xc4\x01a", b"\x02")),
    "invalid utf8 unknown key": m(*BASE, (b"\xa2\xff\xfe", b"\x02")),
    "qualname invalid utf8": replace("qualname", b"\xa2\xff\xfe"),
    "qualname surrogate": replace("qualname", b"\xa3\xed\xa0\x80"),
    "qualname overlong": replace("qualname", b"\xa2\xc0\x80"),
    "qualname beyond U+10FFFF": replace("qualname", b"\xa4\xf4\x90\x80\x80"),
    "qualname 4-byte ok": replace("qualname", b"\xa4\xf0\x9f\x98\x80"),
    "qualname nul": replace("qualname", b"\xa1\x00"),
    "qualname bin": replace("qualname", b"\xc4\x01a"),
    "qualname long": replace("qualname", S("x" * 1025)),
    "qualname at limit": replace("qualname", S("y" * 1024)),
    "t_mono int": replace("t_mono", b"\x05"),
    "t_mono negfixint": replace("t_mono", b"\xf0"),
    "t_mono uint64 max": replace("t_mono", b"\xcf" + b"\xff" * 8),
    "t_mono int64 min": replace("t_mono", b"\xd3\x80" + b"\x00" * 7),
    "t_mono int8": replace("t_mono", b"\xd0\x80"),
    "t_mono f32": replace("t_mono", b"\xca" + struct.pack(">f", 1.1)),
    "t_mono bool": replace("t_mono", b"\xc3"),
    "t_mono nil": replace("t_mono", b"\xc0"),
    "t_mono nan": replace("t_mono", S(float("nan"))),
    "t_mono str": replace("t_mono", S("1.0")),
    "t_mono trunc": replace("t_mono", b"\xcb\x00"),
    "args int": replace("args", b"\x01"),
    "args list": replace("args", S([1])),
    "args ext": replace("args", b"\xd4\x01\x00"),
    "args map with ext": replace("args", b"\x81\xa1e\xc7\x03\x05abc"),
    "args c1": replace("args", b"\x81\xa1k\xc1"),
    "args invalid utf8 str": replace("args", b"\x81\xa1k\xa2\xff\xfe"),
    "args nested 5000": replace("args", b"\x81\xa1k" + b"\x91" * 5000 + b"\x00"),
    "unknown nested 100000": m(*BASE, (S("zz"), b"\x91" * 100000 + b"\x00")),
    "args map declares too much": replace("args", b"\xdf\x7f\xff\xff\xff"),
    "args bin32 huge": replace("args", b"\x81\xa1k\xc6\xff\xff\xff\xff"),
    "missing args": m(*BASE[:4]),
    "missing t_wall": m(BASE[0], BASE[1], BASE[3], BASE[4]),
    "trailing": m(*BASE) + b"\x00",
    "array top": b"\x95" + b"".join(v for _, v in BASE),
    "empty": b"",
    "c1 top": b"\xc1",
    "truncated map": m(*BASE)[:-3],
    "wrapper inside bin": replace("args", S({"b": tf.OBJECT_KEY_WRAPPER + b"\xc0"})),
    "two wrappers": replace("args", S({"keys": [w.object_key(1), w.object_key(2)]})),
    "wrapper str8 form": replace(
        "args", b"\x81\xa1k\x82\xa5__t__\xd9\x09ObjectKey\xa1v\xc0"),
    "dup args": m(*BASE, (S("args"), S({"keys": []}))),
    # Wrapper bytes that start inside a token and run on into the next ones: the raw search
    # counts them, so the scan's counting walk must too (one case per kind of token bytes).
    "wrapper in a key's hash": replace("args", S({"keys": [w.wrap("ObjectKey", {
        "chunk_hash": W + bytes(13), "model_name": "m", "kv_rank": 1, "object_group_id": 0})]})),
    "wrapper from a uint64": replace("args", b"\x81\xa1k\x94\xcf" + bytes(7) + W_TAIL),
    "wrapper from a uint16": replace("args", b"\x81\xa1k\x94\xcd\x00" + W_TAIL),
    "wrapper from a uint32": replace("args", b"\x81\xa1k\x94\xce\x00\x00\x00" + W_TAIL),
    "wrapper from a str": replace("args", b"\x81\xa1k\x94\xa3ab" + W_TAIL),
    "wrapper from a bin8 length": replace(
        "args", b"\x81\xa1k\xc4" + W + bytes(0x82 - len(W) + 1)),
    "wrapper from an array16 length": replace(
        "args", b"\x81\xa1k\xdc\x00" + W_TAIL + b"\xc0" * 127),
    "wrapper from a fixext16 type": replace("args", b"\x81\xa1k\x92\xd8" + W[:17] + b"\xa1v"),
    "wrapper from a float64": replace("args", b"\x81\xa1k\x94\xcb" + bytes(7) + W_TAIL),
    "wrapper in a key's model name": replace("args", b"\x81\xa4keys\x91" + W + (
        b"\x84\xaachunk_hash\xc4\x20" + bytes(32) + b"\xaamodel_name\xb4\xc4" + W
        + b"\xa7kv_rank\x01\xafobject_group_id\x00")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_frame_contract_python_paths_agree(name: str) -> None:
    body = CASES[name]
    assert same(fast_python_decode(body), oracle_decode(body)), name


@needs_native
@pytest.mark.parametrize("name", sorted(CASES))
def test_frame_contract_native_agrees(name: str) -> None:
    body = CASES[name]
    assert same(native_decode(body), oracle_decode(body)), name


def _kernel_rows(buf: bytes, backend: str) -> tuple[object, ...]:
    """Every row one kernel call gives for `buf`, with op ids turned into names."""
    from inferguard._native._lct import NativeFrameScanner

    if backend == "native":
        sc = NativeFrameScanner()
        stop, pos, r = sc.scan(buf, 0, 0, 1 << 12)
        names = sc.names()
        cols = [] if r is None else [r.offset.tolist(), r.length.tolist(), r.t_mono.tolist(),
                                     r.t_wall.tolist(), r.op.tolist(), r.nkeys.tolist(),
                                     r.status.tolist()]
    else:
        interner, rows = tf.PyInterner(), tf.Rows()
        stop, pos = tf.scan_python(buf, 0, 0, interner, 1 << 12, rows)
        names = list(interner.names)
        cols = [rows.offset, rows.length, rows.t_mono, rows.t_wall, rows.op, rows.nkeys,
                rows.status]
    if cols:
        cols[4] = [names[i] if i >= 0 else None for i in cols[4]]
    return (stop, pos, *[tuple(c) for c in cols])


def _same_rows(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return all(same(x, y) if isinstance(x, tuple) else x == y for x, y in zip(a, b, strict=True))


@needs_native
@pytest.mark.parametrize("name", sorted(CASES))
def test_frame_contract_native_scan_agrees_with_a_warm_name_cache(name: str) -> None:
    """The scan skips the UTF-8 check and the hash for a qualname it interned lately: a case
    between records that fill that cache (same name, then others) gets the oracle's row."""
    warm = w.frame(m(*BASE))
    other = w.frame(replace("qualname", S("q.other")))
    buf = warm + other + w.frame(CASES[name]) + warm + other
    native = _kernel_rows(buf, "native")
    assert _same_rows(native, _kernel_rows(buf, "python")), name
    st, mono, _, qual, nkeys = oracle_decode(CASES[name])
    assert native[8][2] == st and same((native[4][2], native[7][2]), (mono, nkeys))
    assert native[6][2] == (qual if st == tf.ROW_OK else None)


@needs_native
def test_native_scan_names_past_the_cache_size() -> None:
    """More qualnames than the scan's name cache holds, cycling and interleaved with names
    the cache evicted, with one invalid name equal in length to a cached one: same ids and
    statuses as the pure-Python kernel."""
    names = [f"op.{i:02d}" for i in range(20)]
    order = names + names[::-1] + names[::3] + names[:9] * 3
    bodies = [replace("qualname", S(q)) for q in order]
    bodies.insert(5, replace("qualname", b"\xa5op.0\xff"))
    buf = b"".join(w.frame(b) for b in bodies)
    native = _kernel_rows(buf, "native")
    assert _same_rows(native, _kernel_rows(buf, "python"))
    assert native[8][5] == tf.ROW_MALFORMED and native[6][5] is None
    assert [q for q in native[6] if q is not None] == order


def test_frame_contract_expected_verdicts() -> None:
    ok = {"base", "map16", "map32", "no type", "dup t_mono", "type str8", "key str8",
          "invalid utf8 unknown key", "qualname 4-byte ok", "qualname nul", "qualname at limit",
          "t_mono int", "t_mono negfixint", "t_mono uint64 max", "t_mono int64 min",
          "t_mono int8", "t_mono f32", "t_mono nan", "args map with ext",
          "args invalid utf8 str", "args nested 5000", "unknown nested 100000",
          "wrapper inside bin", "two wrappers", "wrapper str8 form", "dup args"}
    ok |= {n for n in CASES if n.startswith(("wrapper in a key", "wrapper from"))}
    verdicts = {n: oracle_decode(b)[0] for n, b in CASES.items()}
    assert {n for n, v in verdicts.items() if v == tf.ROW_OK} == ok
    assert verdicts["qualname long"] == tf.ROW_QUALNAME_LONG
    assert oracle_decode(CASES["two wrappers"])[4] == 2
    assert oracle_decode(CASES["dup args"])[4] == 0  # the last args wins
    # Documented limit: the count is of wrapper bytes, so one hidden in a bin counts too,
    # and a non-canonical (str8) wrapper does not.
    assert oracle_decode(CASES["wrapper inside bin"])[4] == 1
    assert oracle_decode(CASES["wrapper str8 form"])[4] == 0
    for n in CASES:  # the raw search finds the bytes wherever they start
        if n.startswith("wrapper from"):
            assert oracle_decode(CASES[n])[4] == 1, n
        elif n.startswith("wrapper in a key"):
            assert oracle_decode(CASES[n])[4] == 2, n
    assert oracle_decode(CASES["t_mono uint64 max"])[1] == float(2**64 - 1)


def _scan(data: bytes, backend: str, window: int) -> tuple[list[object], ...]:
    with TraceFile(data, window_size=window) as t:
        c = t.scan(backend=backend)  # type: ignore[arg-type]
    return (c.offset.tolist(), c.length.tolist(), c.t_mono.tobytes(), c.t_wall.tobytes(),
            c.op.tolist(), c.nkeys.tolist(), c.status.tolist(), list(c.ops),
            [(f.kind, f.offset, f.detail, f.skipped_bytes) for f in c.findings])


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        i = rng.randrange(len(b))
        if kind < 0.5:
            b[i] = rng.randrange(256)
        elif kind < 0.7:
            del b[i:i + rng.randint(1, 40)]
        elif kind < 0.85:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
        else:
            size = rng.choice([0, 1, 7, 0xFFFFFFFF, rng.randrange(1 << 16)])
            b[i:i + 4] = struct.pack(">I", size)
    return bytes(b[:max(0, len(b) - rng.choice([0, 0, 0, rng.randint(1, 50)]))])


@needs_native
def test_random_damage_same_results_on_both_backends() -> None:
    rng = random.Random(20261128)
    seeds = [(UPSTREAM / "storage.lct").read_bytes(),
             w.trace(*[w.storage_record("finish_write", k % 5, k * 0.1, k) for k in range(60)])]
    compared = 0
    for round_ in range(400):
        data = _mutate(rng, seeds[round_ % 2])
        try:
            native = _scan(data, "native", 1 << 20)
        except ValueError as exc:  # not a trace at all: both must say so
            with pytest.raises(ValueError) as again:
                _scan(data, "python", 1 << 20)
            assert str(again.value) == str(exc)
            continue
        assert native == _scan(data, "python", 1 << 20), f"round {round_}"
        compared += 1
    assert compared > 300


def test_capacity_boundary_chunks(backend: str) -> None:
    n = CHUNK_ROWS + 5
    body = w.record("q", {}, 1.0, 2.0)
    data = w.trace(*[body] * n)
    with TraceFile(data) as t:
        cols = t.scan()
        s = t.summary()
    assert len(cols.offset) == n and s.total_records == n
    assert np.all(np.diff(cols.offset) == len(w.frame(body)))


@pytest.fixture
def speculate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the two-thread window split even on tiny inputs."""
    from inferguard.lct import _scan as _trace_scan

    monkeypatch.setattr(_trace_scan, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_trace_scan, "SCAN_THREADS", 2)
    monkeypatch.setattr(_trace_scan, "ANALYTICS_SCAN_THREADS", 2)


@needs_native
def test_two_thread_scan_equals_python_under_damage(speculate: None) -> None:
    rng = random.Random(7)
    seed = w.trace(*[w.storage_record("reserve_write", 1 + k % 9, k * 0.1, k) for k in range(300)])
    for round_ in range(150):
        data = _mutate(rng, seed) if round_ else seed
        try:
            native = _scan(data, "native", 1 << 16)
        except ValueError:
            continue
        assert native == _scan(data, "python", 1 << 16), f"round {round_}"


@needs_native
def test_two_thread_scan_survives_decoy_signatures(speculate: None) -> None:
    # Every record carries, inside a bin argument, bytes that look exactly like a frame.
    decoy = w.frame(w.record("decoy.op", {}, 1.0, 2.0))
    bodies = [w.record("real.op", {"blob": decoy * 3, "keys": [w.object_key(k)]}, k, k)
              for k in range(2000)]
    data = w.trace(*bodies)
    native = _scan(data, "native", 1 << 16)
    assert native == _scan(data, "python", 1 << 16)
    assert native[7] == ["real.op"] and native[5] == [1] * 2000


@needs_native
def test_two_thread_scan_merges_op_tables_like_one_thread(speculate: None) -> None:
    bodies = [w.record(f"op.{k % (tf.MAX_OPS + 300)}", {}, 1.0, 2.0) for k in range(9000)]
    data = w.trace(*bodies)
    native = _scan(data, "native", 1 << 16)
    assert native == _scan(data, "python", 1 << 16)
    assert len(native[7]) == tf.MAX_OPS
    statuses = native[6]
    assert statuses.count(tf.ROW_OP_TABLE_FULL) == sum(
        1 for k in range(9000) if k % (tf.MAX_OPS + 300) >= tf.MAX_OPS)


def _scan_chunks(data: bytes, window: int, keys: bool) -> tuple[list[object], ...]:
    """The pure-Python scan's rows and findings, batch (`keys`) or frame by frame."""
    findings = FindingLog(1000)
    with TraceFile(data, window_size=window) as t:
        chunks, kernel = t._chunks("python", findings, keys=keys)
        parts = list(chunks)
        names = kernel.names()
    cat = [np.concatenate([getattr(c, f) for c in parts]) if parts else np.zeros(0)
           for f in ("offset", "length", "t_mono", "t_wall", "op", "nkeys", "status")]
    return ([x.tobytes() for x in cat], names,
            [(f.kind, f.offset, f.detail, f.skipped) for f in findings])


def _other_layouts() -> bytes:
    """Valid records msgspec reads but upstream does not write (args not last, int times,
    str8 qualname), among canonical ones: the batch scan's second proof of boundaries."""
    args = {"keys": [w.wrap("ObjectKey", {"chunk_hash": b"h" * 32, "model_name": "m",
                                           "kv_rank": 1, "object_group_id": 0})]}
    odd = [w.pack({"args": args, "qualname": "q.a", "t_mono": 1, "t_wall": 2,
                   "type": "record"}),
           w.pack({"type": "record", "t_mono": 1.5, "t_wall": 2.5, "qualname": "q" * 40,
                   "args": args}),
           w.pack({"t_mono": 1.5, "t_wall": 2.5, "qualname": "q.b", "args": {}, "x": [1]})]
    return w.trace(*[odd[i % 3] if i % 4 == 0 else w.record("q.c", args, i, i)
                     for i in range(30)])


def test_batch_scan_equals_frame_by_frame_scan() -> None:
    """The batch scan (one msgspec call per run, boundaries proven by upstream's layout or
    a second decode) gives the frame-by-frame scan's rows, names and findings: on every
    frame-contract case, odd layouts, real files and random damage."""
    rng = random.Random(1202)
    good = w.storage_record("finish_write", 3, 1.0, 0)
    seeds = [(UPSTREAM / "storage.lct").read_bytes(), _other_layouts(),
             w.trace(*[w.storage_record("finish_write", k % 5, k * 0.1, k) for k in range(60)])]
    inputs = [w.trace(good, body, good) for body in CASES.values()]
    inputs += seeds + [_mutate(rng, seeds[i % 3]) for i in range(300)]
    compared = 0
    for data in inputs:
        for window in (1 << 20, 4096):
            try:
                frame_by_frame = _scan_chunks(data, window, False)
            except ValueError:
                continue
            assert _scan_chunks(data, window, True) == frame_by_frame
            compared += 1
    assert compared > 400


def _layout_road(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each batch was read from upstream's layout (`_canonical_batch`), in order."""
    used: list[bool] = []
    real = tf._canonical_batch

    def spy(*a: Any) -> Any:
        r = real(*a)
        used.append(r is not None)
        return r

    monkeypatch.setattr(tf, "_canonical_batch", spy)
    return used


def test_batch_scan_reads_upstream_layout_and_refuses_what_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Clean batches in upstream's layout are read from the layout, with one msgspec pass
    that only proves the boundaries; a qualname whose length runs past its body, or rows
    whose qualnames share a hash, send the batch to the full decode. Every time the rows,
    names and findings are the frame-by-frame scan's."""
    ops = ["finish_write", "reserve_write", "submit_prefetch_task", "finish_read_prefetched"]
    clean = w.trace(*[w.storage_record(ops[k % 4], k % 4, k * 0.1, k) for k in range(80)],
                    w.record("q" * 200, {"keys": []}, 9.0, 9.0))  # a str8 qualname too
    used = _layout_road(monkeypatch)
    assert _scan_chunks(clean, 1 << 20, True) == _scan_chunks(clean, 1 << 20, False)
    assert used == [True]  # near miss of both refusals below

    good = w.storage_record("finish_write", 2, 1.0, 0)
    at = good.index(b"\xa8qualname") + 9
    runs_past = good[:at] + b"\xd9\xff" + b"x" * 8  # 255 bytes claimed, 8 there
    data = w.trace(good, runs_past, good)
    used.clear()
    assert _scan_chunks(data, 1 << 20, True) == _scan_chunks(data, 1 << 20, False)
    assert used and not used[0]

    monkeypatch.setattr(tf, "_qualname_hash",  # every qualname hashes alike
                        lambda words, qlen: np.zeros(len(qlen), np.uint64))
    used.clear()
    assert _scan_chunks(clean, 1 << 20, True) == _scan_chunks(clean, 1 << 20, False)
    assert used == [False]
