"""Issue #17: the native scrub (frames planned in C, fast frames copied with their bins
overwritten in place) writes the same bytes, and reports the same counts, as the
pure-Python walk (`_scrub_walk`, the twin) on every kind of trace: recorded fixtures,
generated storage and events traces, salts, token ids, hex keys, damaged and unusual
frames, window edges; the copy reads back with the same records and keys."""

from __future__ import annotations

import hashlib
import os
import random
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest

from benchmarks import trace_gen
from inferguard import native_available
from inferguard.lct import _scrub
from inferguard.lct._file import TraceFile, summarize_trace
from inferguard.lct._scrub import ScrubReport, _Keyed, scrub_trace
from inferguard.lct._stats import trace_stats

from . import lct_writer as w
from .conftest import FIXTURES

KEY = bytes(range(32))
FIXTURE_TRACES = sorted(FIXTURES.rglob("*.lct"))
native = pytest.mark.skipif(not native_available(), reason="native backend not built")


def _walk(src: Path, tmp: Path, key: bytes = KEY) -> tuple[bytes, ScrubReport]:
    out = tmp / "walk.lct"
    rep = scrub_trace(src, out, key, backend="python")
    return out.read_bytes(), rep


def _same(src: Path, tmp: Path, key: bytes = KEY) -> tuple[bytes, ScrubReport]:
    """The backend under test (chosen by INFERGUARD_NO_NATIVE, as a user would) against
    the walk: the same bytes and the same report."""
    want, want_rep = _walk(src, tmp, key)
    out = tmp / "test.lct"
    rep = scrub_trace(src, out, key)
    assert rep == want_rep
    got = out.read_bytes()
    assert got == want
    return got, rep


def _trace(tmp: Path, *frames: bytes, head: bytes | None = None, name: str = "t.lct") -> Path:
    p = tmp / name
    p.write_bytes(w.frame(w.header() if head is None else head) + b"".join(frames))
    return p


def _rec(args: Any, t: float = 0.5) -> bytes:
    return w.frame(w.record(w.STORAGE_PREFIX + "reserve_write", args, t, 1.8e9 + t))


def _plain(i: int) -> bytes:
    return _rec({"keys": [w.object_key(i), w.object_key(i + 1)], "layout_desc": w.layout(),
                 "mode": "new"}, 0.1 * i)


# -- recorded and generated traces ------------------------------------------------------------


@pytest.mark.parametrize("trace", FIXTURE_TRACES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_recorded_fixture(tmp_path: Path, trace: Path, backend: str) -> None:
    assert FIXTURE_TRACES
    try:
        want = _walk(trace, tmp_path)
    except ValueError:  # not a trace the scrub takes: both backends refuse it alike
        with pytest.raises(ValueError):
            scrub_trace(trace, tmp_path / "x.lct", KEY)
        return
    got = _same(trace, tmp_path)
    assert got == want


GENERATED = {
    "storage": lambda p: trace_gen.write_storage_trace(p, 3 << 20),
    "storage-reuse": lambda p: trace_gen.write_storage_trace(p, 3 << 20, keys_per_call=(1, 6),
                                                            reuse=0.6),
    "events": lambda p: trace_gen.write_events_trace(p, 1 << 20),
    "events-tokens": lambda p: trace_gen.write_events_trace(p, 1 << 20, token_ids=16),
}


@pytest.mark.parametrize("shape", sorted(GENERATED))
def test_generated_traces(tmp_path: Path, shape: str, backend: str) -> None:
    src = tmp_path / "g.lct"
    GENERATED[shape](src)
    out, rep = _same(src, tmp_path)
    assert rep.frames_dropped == 0 and rep.hashes_replaced > 0
    if shape == "events-tokens":
        assert rep.token_ids_zeroed > 0
    # the copy reads back here with the same records and the same key counts
    copy = tmp_path / "test.lct"
    a, b = summarize_trace(str(src)), summarize_trace(str(copy))
    assert a.total_records == b.total_records == rep.records
    if shape.startswith("storage"):
        with TraceFile(str(src)) as ta, TraceFile(str(copy)) as tb:
            ka, kb = ta.scan().nkeys, tb.scan().nkeys
            assert ka.tolist() == kb.tolist() and int(ka.sum()) == rep.hashes_replaced
        sa, sb = trace_stats(str(src)).keys, trace_stats(str(copy)).keys
        assert sa == sb and sa.key_rows == rep.hashes_replaced
        raw = {hashlib.sha256(str(i).encode()).digest() for i in range(512 * 64)}
        assert not any(h in out for h in list(raw)[:2000])


# -- what the walk changes beyond bins --------------------------------------------------------


def test_salts_tokens_hex_keys_and_plain_frames_mixed(tmp_path: Path, backend: str) -> None:
    frames = [
        _plain(0),
        _rec({"keys": [w.object_key(3, salt="tenant-acme")]}),
        _rec({"keys": [w.object_key(4, salt="")]}),  # an empty salt stays as it is
        _rec({"token_ids": [1, 2, 300, 70000], "keys": [w.object_key(5)]}),
        _rec({"token_ids": [], "keys": [w.object_key(6)]}),
        _rec({"entries": [{"key": {"chunk_hash_hex": "ab" * 32, "cache_salt": "s"},
                           "token_ids": [0, 1]}]}),
        _rec({"k": {"chunk_hash_hex": "not hex!"}}),
        _rec({"k": {"chunk_hash_hex": "AB CD"}}),
        _rec({"v": w.wrap("ObjectKey", {"chunk_hash_hex": "00ff", "token_ids": [9]})}),
        _plain(10),
    ]
    src = _trace(tmp_path, *frames, head=w.header(
        level="events", level_meta={"instance_id": "x", "chunk_hash_hex": "abcd"}))
    data, rep = _same(src, tmp_path)
    assert b"tenant-acme" not in data and rep.token_ids_zeroed == 4 + 2 + 0
    assert rep.records == len(frames) and rep.frames_dropped == 0


def test_config_redaction_and_header(tmp_path: Path, backend: str) -> None:
    cfg = {"l2_adapter": "redis://u:pw@h:1", "chunk_size": 256}
    src = _trace(tmp_path, _plain(0), _plain(1), head=w.header(variant="schema2", config=cfg))

    def red(s: str) -> str:
        return s.replace("u:pw@", "<redacted>@")

    want = scrub_trace(src, tmp_path / "a.lct", KEY, redact_config=red, backend="python")
    got = scrub_trace(src, tmp_path / "b.lct", KEY, redact_config=red)
    assert got == want and got.config_redacted
    assert (tmp_path / "a.lct").read_bytes() == (tmp_path / "b.lct").read_bytes()


# -- damage and unusual encodings --------------------------------------------------------------

def _body(obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj)


def _nest(n: int) -> Any:
    v: Any = b"x"
    for _ in range(n):
        v = [v]
    return v


REC = {"type": "record", "t_mono": 1.0, "t_wall": 2.0, "qualname": "q"}
ODD_BODIES = {
    "garbage": os.urandom(40),
    "empty": b"",
    "not-a-map": _body([1, 2, 3]),
    "second-header": _body({"type": "header", "args": {}}),
    "no-type": _body({"t_mono": 1.0, "args": {"h": b"x" * 32}}),
    "no-args": _body(REC),
    "args-not-map": _body({**REC, "args": [b"\x01" * 32, [b"\x02" * 16]]}),
    "bin-outside-args": _body({**REC, "extra": b"\x03" * 32, "args": {"h": b"\x04" * 32}}),
    "trailing-bytes": _body({**REC, "args": {}}) + b"\xc0",
    "uint8-not-smallest": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1n\xcc\x05",
    "int8-positive": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1n\xd0\x05",
    "int16-small": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1n\xd1\xff\xf0",
    "float32": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1f\xca\x3f\x80\x00\x00",
    "nan": _body({**REC, "args": {"f": float("nan")}}),
    "str8-short": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1s\xd9\x02ab",
    "bin16-short": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1b\xc5\x00\x02ab",
    "array16-short": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1a\xdc\x00\x01\x01",
    "map16-short": w.pack({**REC, "args": {}})[:-1] + b"\xde\x00\x01\xa1a\x01",
    "duplicate-key": w.pack({**REC, "args": {}})[:-1] + b"\x82\xa1a\xc4\x01x\xa1a\xc4\x01y",
    "duplicate-top-args": b"\x86" + b"".join(w.pack(k) + w.pack(v) for k, v in REC.items())
    + w.pack("args") + w.pack({"h": b"1" * 4}) + w.pack("args") + w.pack({}),
    "int-key": w.pack({**REC, "args": {}})[:-1] + b"\x82\x01\xc4\x01x\xc3\xc4\x01y",
    "bin-key": w.pack({**REC, "args": {}})[:-1] + b"\x81\xc4\x02kk\xc4\x01x",
    "ext": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1e\xd4\x01\x02",
    "timestamp": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1e\xd6\xff\x00\x00\x00\x01",
    "bad-utf8": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1s\xa2\xc3\x28",
    "surrogate": w.pack({**REC, "args": {}})[:-1] + b"\x81\xa1s\xa3\xed\xa0\x80",
    "tag-second": _body({**REC, "args": {"k": {"v": {"chunk_hash": b"\x05" * 32},
                                                  "__t__": "ObjectKey"}}}),
    "deep-62": _body({**REC, "args": {"d": _nest(62)}}),
    "deep-63": _body({**REC, "args": {"d": _nest(63)}}),
    "deep-70": _body({**REC, "args": {"d": _nest(70)}}),
    "deep-250": _body({**REC, "args": {"d": _nest(250)}}),
    "long-bin": _body({**REC, "args": {"h": bytes(range(256)) * 3, "e": b""}}),
    "big-map": _body({**REC, "args": {f"k{i}": b"\x06" * 8 for i in range(40)}}),
    "unicode": _body({**REC, "qualname": "é\u20ac\U0001f600", "args": {"ü": b"\x07" * 32}}),
    "ints": _body({**REC, "args": {"i": [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1,
                                         2**32, 2**64 - 1, -1, -32, -33, -128, -129,
                                         -32768, -32769, -2**31, -2**31 - 1, -2**63]}}),
    "floats": _body({**REC, "args": {"f": [0.0, -0.0, 1e308, float("inf"), -1.5]}}),
    # what the walk changes beyond bins: same-length forms are patched, others walked
    "hex": _body({**REC, "args": {"e": [{"key": {"chunk_hash_hex": "0a" * 32}}]}}),
    "hex-upper": _body({**REC, "args": {"k": {"chunk_hash_hex": "AbCd" * 8}}}),
    "hex-empty": _body({**REC, "args": {"k": {"chunk_hash_hex": ""}}}),
    "hex-odd": _body({**REC, "args": {"k": {"chunk_hash_hex": "abc"}}}),
    "hex-space": _body({**REC, "args": {"k": {"chunk_hash_hex": "ab cd"}}}),
    "hex-not": _body({**REC, "args": {"k": {"chunk_hash_hex": "zz€"}}}),
    "hex-long": _body({**REC, "args": {"k": {"chunk_hash_hex": "ab" * 200}}}),
    "hex-bytes": _body({**REC, "args": {"k": {"chunk_hash_hex": b"\x01" * 8}}}),
    "hex-outside-args": _body({**REC, "chunk_hash_hex": "abcd", "args": {}}),
    "hex-with-tag": _body({**REC, "args": {"k": {"chunk_hash_hex": "abcd"},
                                            "o": w.object_key(1)}}),
    "hex-in-objectkey": _body({**REC, "args": {"k": w.wrap("ObjectKey",
                                                            {"chunk_hash_hex": "abcd"})}}),
    "salt-empty": _body({**REC, "args": {"k": {"cache_salt": "", "h": b"\x01" * 32}}}),
    "salt-set": _body({**REC, "args": {"k": {"cache_salt": "tenant"}}}),
    "salt-nil": _body({**REC, "args": {"k": {"cache_salt": None}}}),
    "salt-empty-objectkey": _body({**REC, "args": {"k": w.object_key(3, salt="")}}),
    "tokens-small": _body({**REC, "args": {"token_ids": [0, 5, 127, -1, -32]}}),
    "tokens-16": _body({**REC, "args": {"e": [{"token_ids": list(range(16))}]}}),
    "tokens-big": _body({**REC, "args": {"token_ids": [1, 128]}}),
    "tokens-empty": _body({**REC, "args": {"token_ids": []}}),
    "tokens-nil": _body({**REC, "args": {"token_ids": [None]}}),
    "tokens-not-list": _body({**REC, "args": {"token_ids": 7}}),
    "tokens-with-tag": _body({**REC, "args": {"token_ids": [1], "o": w.object_key(1)}}),
}
FAST = {"args-not-map", "bin-outside-args", "deep-62", "floats", "ints", "long-bin",
        "unicode", "hex", "hex-upper", "hex-empty", "salt-empty", "salt-empty-objectkey",
        "tokens-small", "tokens-16", "tokens-empty"}


@pytest.mark.parametrize("name", sorted(ODD_BODIES))
def test_odd_frames_between_plain_ones(tmp_path: Path, name: str, backend: str) -> None:
    src = _trace(tmp_path, _plain(0), w.frame(ODD_BODIES[name]), _plain(1))
    _same(src, tmp_path)
    if backend == "native":  # which of them the C core takes without the walk
        from inferguard._native._lct import NativeScrubPlanner

        fast = NativeScrubPlanner(KEY, 16).frame(ODD_BODIES[name]) is not None
        assert fast == (name in FAST)


@pytest.mark.parametrize("tail", ["cut-frame", "cut-prefix", "oversize", "huge", "zero"])
def test_damaged_tails(tmp_path: Path, tail: str, backend: str) -> None:
    good = _plain(0) + _plain(1)
    end = {"cut-frame": _plain(2)[:-7], "cut-prefix": b"\x00\x00",
           "oversize": struct.pack(">I", 1 << 20) + b"\x80" * 10,
           "huge": struct.pack(">I", (1 << 30) + 1) + b"\x80" * 10,
           "zero": struct.pack(">I", 0)}[tail]
    src = _trace(tmp_path, good, end)
    _, rep = _same(src, tmp_path)
    assert rep.frames_dropped == 1 and rep.records == 2


@pytest.mark.parametrize("case", ["empty", "short", "not-header", "cut-header"])
def test_bad_starts(tmp_path: Path, case: str, backend: str) -> None:
    src = tmp_path / "s.lct"
    src.write_bytes({"empty": b"", "short": b"\x00\x01",
                     "not-header": _plain(0) + _plain(1),
                     "cut-header": w.frame(w.header())[:-3]}[case])
    if case == "not-header":
        for b in ("python", None):
            with pytest.raises(ValueError, match=r"not a \.lct header frame"):
                scrub_trace(src, tmp_path / "x.lct", KEY, backend=b)
        return
    _same(src, tmp_path)


@native
@pytest.mark.parametrize("window", [64, 300, 1000, 4096])
def test_window_edges_and_frames_larger_than_a_window(tmp_path: Path, window: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames straddling windows, frames larger than a window, and small plan capacities
    (LCT_STOP_FULL mid-window)."""
    from inferguard._native import _lct

    big = _rec({"keys": [w.object_key(i) for i in range(40)]})
    frames = [_plain(0), big, _rec({"keys": [w.object_key(7, salt="s")]}), _plain(2), big,
              w.frame(os.urandom(30)), *(_plain(i) for i in range(3, 30)), _plain(40)[:-3]]
    src = _trace(tmp_path, *frames)
    monkeypatch.setattr(_scrub, "WINDOW", window)

    class Small(_lct.NativeScrubPlanner):
        def __init__(self, key: bytes, max_entries: int) -> None:
            super().__init__(key, max_entries, item_capacity=5, slow_capacity=1)

    monkeypatch.setattr(_lct, "NativeScrubPlanner", Small)
    monkeypatch.delenv("INFERGUARD_NO_NATIVE", raising=False)
    _, rep = _same(src, tmp_path)
    assert rep.frames_dropped == 2


# -- random frames: whatever the C core calls fast must be exact --------------------------------


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([0, 1, 127, 128, 300, 70000, 2**33, -1, -40, -200, -40000, -2**40,
                           True, False, None])
    if kind == 1:
        return rng.choice([0.5, -0.0, 1e300, float("inf")])
    if kind == 2:
        return "".join(rng.choice("ab_é€") for _ in range(rng.choice([0, 3, 31, 32, 300])))
    if kind in (3, 4, 5):
        return rng.randbytes(rng.choice([0, 1, 16, 32, 32, 64, 65, 300]))
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 3, 16]))]
    keys = ["keys", "chunk_hash", "model_name", "__t__", "v", "cache_salt", "token_ids",
            "chunk_hash_hex", "x", "y"]
    d: dict[str, Any] = {}
    for _ in range(rng.choice([0, 1, 2, 4, 17])):
        k = rng.choice(keys) if rng.random() < 0.7 else f"k{rng.randrange(100)}"
        d[k] = _value(rng, depth + 1)
    if rng.random() < 0.3:
        return w.wrap("ObjectKey", d)
    return d


@native
def test_random_records_and_mutations(tmp_path: Path) -> None:
    rng = random.Random(17)
    frames: list[bytes] = []
    for i in range(400):
        args = _value(rng, 0)
        body = _body({**REC, "args": args}) if rng.random() < 0.5 else w.pack(
            {**REC, "args": args})
        if rng.random() < 0.3 and body:  # a flipped byte: canonical or not, valid or not
            j = rng.randrange(len(body))
            body = body[:j] + bytes([rng.randrange(256)]) + body[j + 1:]
        frames.append(w.frame(body))
        frames.append(_plain(i))
    src = _trace(tmp_path, *frames)
    _same(src, tmp_path)
    from inferguard._native._lct import NativeScrubPlanner

    planner = NativeScrubPlanner(KEY, 16)
    fast = sum(planner.frame(f[4:]) is not None for f in frames)
    assert 400 < fast < len(frames)  # both paths taken


@native
def test_events_frames_take_the_fast_path(tmp_path: Path) -> None:
    """Events-level batches as the 0.5.x sink writes them (hex keys, empty salts, empty
    token lists) are patched, not walked; with real token ids they are walked."""
    from inferguard._native._lct import NativeScrubPlanner

    planner = NativeScrubPlanner(KEY, 16)
    for tokens, fast in ((0, True), (16, False)):
        src = tmp_path / f"ev{tokens}.lct"
        trace_gen.write_events_trace(src, 64 << 10, token_ids=tokens)
        data = src.read_bytes()
        pos = 4 + struct.unpack(">I", data[:4])[0]
        kinds = set()
        while pos < len(data):
            (n,) = struct.unpack_from(">I", data, pos)
            kinds.add(planner.frame(data[pos + 4:pos + 4 + n]) is not None)
            pos += 4 + n
        assert kinds == {True} if fast else False in kinds  # lifecycle frames stay fast


# -- the C fingerprints are hashlib's -----------------------------------------------------------


@native
@pytest.mark.parametrize("keylen", [0, 1, 32, 64, 100])
def test_c_fingerprints_equal_hashlib(keylen: int) -> None:
    from inferguard._native._lct import NativeScrubPlanner

    rng = random.Random(keylen)
    keyed = _Keyed(rng.randbytes(keylen))
    planner = NativeScrubPlanner(keyed.key, 1 << 10)
    for n in [*range(0, 140), 255, 256, 1000, 4097]:
        raw = rng.randbytes(n)
        assert planner.fingerprint(raw) == keyed.fp(raw), n


@native
def test_plan_reports_bins_of_fast_frames_only() -> None:
    from inferguard._native._lct import NativeScrubPlanner

    planner = NativeScrubPlanner(KEY, 16)
    body = w.record("q", {"keys": [w.object_key(1), w.object_key(2, hash_len=7)],
                          "h": [b"", b"z" * 300]}, 1.0, 2.0)
    got = planner.frame(body)
    assert got is not None
    items, hashes, tokens = got
    assert [(body[o:o + n], k) for o, n, k in items] == [
        (hashlib.sha256(b"1").digest(), 0), (hashlib.sha256(b"2").digest()[:7], 0),
        (b"z" * 300, 0)]  # an empty bin: counted, nothing to write
    assert (hashes, tokens) == (4, 0)
    body = w.record("events.batch", {"entries": [
        {"key": {"chunk_hash_hex": "ab" * 32, "cache_salt": ""}, "token_ids": [1, 2, 3]}]},
        1.0, 2.0)
    got = planner.frame(body)
    assert got is not None
    assert [(body[o:o + n], k) for o, n, k in got[0]] == [
        (b"ab" * 32, 1), (b"\x01\x02\x03", 2)]
    assert got[1:] == (1, 3)
    assert planner.frame(w.record("q", {"keys": [w.object_key(1, salt="s")]}, 1.0, 2.0)) is None


def test_no_native_env_takes_the_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERGUARD_NO_NATIVE", "1")

    def refuse(*_: Any) -> None:
        raise AssertionError("the native path ran")

    monkeypatch.setattr(_scrub, "_scrub_planned", refuse)
    rep = scrub_trace(_trace(tmp_path, _plain(0)), tmp_path / "o.lct", KEY)
    assert rep.records == 1
