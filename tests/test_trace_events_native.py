"""The events level decoded in C (native/lct_events.c) agrees with the msgspec path.

The C decoder takes a record only when its args read unambiguously and leaves the rest
to msgspec; these tests check which road each shape takes, that both roads give the same
EventStats on real, generated, hand-made edge-case and damaged traces, and that the
fingerprints C computes are the documented ones."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from benchmarks.trace_gen import write_events_trace
from inferguard import TraceFile, native_available
from inferguard.lct._keys import key_fingerprint
from inferguard.lct._stats import analyze_trace
from tests import lct_writer as w

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")
FIX = Path(__file__).parent / "fixtures"
REAL = FIX / "lmcache_live" / "mp_live_l2" / "packet" / "inputs" / "trace" / "events.lct"
HEAD = w.header("schema1", level="events", level_meta={"instance_id": "a",
                                                       "cache_event_schema_version": 1})


def frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, length, body) of every frame after the header (test-side framing)."""
    out, pos = [], 4 + struct.unpack_from(">I", data, 0)[0]
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append((pos, n, data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return out


def c_rows(data: bytes, cap: int = 1 << 20) -> list[tuple[list[int], list[int]]]:
    """Each events.batch frame through the C decoder: (row, its fingerprints)."""
    from inferguard._native._lct import NativeEventsDecoder

    fr = [f for f in frames(data) if b"\xacevents.batch" in f[2][:80]]
    off = np.array([f[0] for f in fr], np.int64)
    ln = np.array([f[1] for f in fr], np.uint32)
    out = []
    for rows, fps in NativeEventsDecoder(cap).decode(data, 0, off, ln):
        fl = fps.tolist()
        out += [(r, fl[r[17]:r[17] + r[15]]) for r in rows.tolist()]
    return out


def events(data: bytes | Path, backend: str, **kw: Any) -> Any:
    return msgspec.to_builtins(analyze_trace(data, backend=backend, **kw).stats.events)


def same(data: bytes | Path, **kw: Any) -> Any:
    got = events(data, "native", **kw)
    assert got == events(data, "python", **kw)
    return got


# -- real and generated traces ------------------------------------------------------------------


def test_real_trace_taken_by_c_with_documented_fingerprints() -> None:
    data = REAL.read_bytes()
    rows = c_rows(data)
    assert rows and all(r[0] == 1 for r, _ in rows)  # every real batch is decoded in C
    for (r, fps), (_, _, body) in zip(rows, [f for f in frames(data) if b"events.batch"
                                             in f[2][:80]], strict=True):
        args = msgspec.msgpack.decode(body)["args"]
        want = [key_fingerprint(bytes.fromhex(e["key"]["chunk_hash_hex"]),
                                e["key"]["model_name"], e["key"]["kv_rank"],
                                e["key"]["object_group_id"], e["key"]["cache_salt"])
                for e in args["entries"]]
        assert fps == want and r[15] == len(want)
        assert r[16] == sum(e["size_bytes"] for e in args["entries"])
    e = same(REAL)
    assert e["batches"] == len(rows) and e["undecodable_records"] == 0


def test_small_fingerprint_capacity_gives_the_same_rows() -> None:
    data = REAL.read_bytes()
    big = c_rows(data)
    small = c_rows(data, cap=40)  # stops between rows; a row bigger than that falls back
    assert [r[:17] for r, _ in big if len(_) <= 40] == [r[:17] for r, _ in small if r[0]]
    assert [f for _, f in big if len(f) <= 40] == [f for r, f in small if r[0]]


@pytest.mark.parametrize("kw", [{}, {"token_ids": 64, "entries_per_batch": 8},
                                {"reuse": 0.9, "entries_per_batch": 3}])
def test_generated_traces_identical(tmp_path: Path, kw: dict[str, Any]) -> None:
    p = tmp_path / "ev.lct"
    write_events_trace(p, 400_000, **kw)
    e = same(p)
    assert e["batches"] > 20 and e["entries"] > 0 and e["undecodable_records"] == 0
    assert same(p, max_exact_keys=16)["sample_rate"] < 1  # sampling: same on both roads
    with TraceFile(p.read_bytes(), window_size=1 << 14) as t:  # frames across windows
        a = analyze_trace(t, backend="native").stats.events
    assert msgspec.to_builtins(a) == e


def damaged_agree(tmp_path: Path, seed: int, read: Callable[[bytes, str], Any]) -> int:
    """120 damaged copies of the real capture and a generated trace (every third cut
    short, each with 1-4 flipped bits): `read` gives the same on both backends wherever
    the native one reads it. Returns how many were compared."""
    p = tmp_path / "ev.lct"
    write_events_trace(p, 60_000, entries_per_batch=4)
    seeds = [REAL.read_bytes(), p.read_bytes()]
    rng = random.Random(seed)
    compared = 0
    for round_ in range(120):
        data = bytearray(seeds[round_ % 2])
        if round_ % 3 == 0:
            data = data[:rng.randrange(len(data))]
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        try:
            native = read(bytes(data), "native")
        except ValueError:
            continue
        assert native == read(bytes(data), "python"), f"round {round_}"
        compared += 1
    return compared


def test_damaged_traces_identical(tmp_path: Path) -> None:
    assert damaged_agree(tmp_path, 5, events) > 80


# -- hand-made shapes: which road, and the same answer ------------------------------------------

P = w.pack


def m(*pairs: tuple[bytes, bytes]) -> bytes:
    """A map of already-packed keys and values (duplicates and odd encodings allowed)."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def key(hexs: bytes = P("ab" * 32), **over: bytes) -> bytes:
    f = {"chunk_hash_hex": hexs, "model_name": P("m"), "kv_rank": P(0),
         "object_group_id": P(0), "cache_salt": P(None)}
    f.update(over)
    return m(*[(P(k), v) for k, v in f.items() if v != b"-"])


def entry(k: bytes | None = None, size: bytes = P(100), extra: bytes = P([1, 2])) -> bytes:
    return m((P("key"), key() if k is None else k), (P("size_bytes"), size),
             (P("token_ids"), extra), (P("token_offset"), P(-1)))


def batch(*entries: bytes, **over: bytes) -> bytes:
    f = {"instance_id": P("srv"), "incarnation": P(3), "seq": P(1), "event_type": P("store"),
         "tier": P("l1"), "backend": P("dram"),
         "entries": bytes([0x90 | len(entries)]) + b"".join(entries), "shared": P(False)}
    f.update(over)
    return m(*[(P(k), v) for k, v in f.items() if v != b"-"])


def trace_of(args: bytes) -> bytes:
    rec = m((P("type"), P("record")), (P("t_mono"), P(1.0)), (P("t_wall"), P(2.0)),
            (P("qualname"), P("events.batch")), (P("args"), args))
    store = w.record("events.batch", msgspec.msgpack.decode(batch(entry())), 0.5, 1.5)
    delete = w.record("events.batch", msgspec.msgpack.decode(
        batch(entry(), event_type=P("delete"))), 3.0, 4.0)
    return w.trace(store, rec, delete, head=HEAD)


BAD_UTF8 = b"\xa2\xff\xfe"
CASES: dict[str, tuple[bytes, bool]] = {  # name: (args, decoded in C)
    "canonical": (batch(entry(), entry(key(P("cd" * 32)))), True),
    "uppercase_hex": (batch(entry(key(P("AB" * 32)))), True),
    "odd_hex": (batch(entry(key(P("abc")))), True),
    "empty_hex": (batch(entry(key(P("")))), True),
    "hex_with_space": (batch(entry(key(P("ab " * 32)))), False),
    "hex_not_str": (batch(entry(key(P(5)))), True),
    "no_hash": (batch(entry(key(chunk_hash_hex=b"-"))), True),
    "no_model": (batch(entry(key(model_name=b"-"))), True),
    "model_int": (batch(entry(key(model_name=P(3)))), True),
    "rank_bool": (batch(entry(key(kv_rank=P(True)))), True),
    "rank_u64": (batch(entry(key(kv_rank=P(1 << 63)))), True),
    "rank_neg": (batch(entry(key(kv_rank=P(-5), object_group_id=P(-(1 << 63))))), True),
    "rank_absent": (batch(entry(key(kv_rank=b"-", object_group_id=b"-"))), True),
    "rank_float": (batch(entry(key(kv_rank=P(1.0)))), True),
    "salt_str": (batch(entry(key(cache_salt=P("s")))), True),
    "salt_int": (batch(entry(key(cache_salt=P(7)))), True),
    "key_str": (batch(entry(P("k"))), True),
    "key_nil": (batch(entry(P(None))), True),
    "key_list": (batch(entry(P([1]))), False),
    "key_dup_unknown": (batch(entry(bytes([0x87]) + key()[1:] + P("x") + P(None) + P("x")
                                    + P(1))), True),
    "key_dup_known": (batch(entry(bytes([0x86]) + key()[1:] + P("model_name") + P("n"))),
                      False),
    "key_nonstr_key": (batch(entry(bytes([0x86]) + key()[1:] + P(1) + P(2))), False),
    "size_float": (batch(entry(size=P(1.5))), True),
    "size_bool": (batch(entry(size=P(True))), True),
    "size_u64": (batch(entry(size=P((1 << 64) - 1))), False),
    "size_neg": (batch(entry(size=P(-7))), True),
    "sizes_overflow": (batch(entry(size=P((1 << 63) - 1)), entry(size=P(5))), False),
    "tokens_nested": (batch(entry(extra=P([[1]]))), False),
    "tokens_str": (batch(entry(extra=P(["x"]))), True),
    "entry_not_map": (batch(P(1)), False),
    "entries_nil": (batch(entries=P(None)), False),
    "entries_absent": (batch(entries=b"-"), True),
    "no_fields": (m(), True),
    "inc_bool": (batch(entry(), incarnation=P(True)), True),
    "inc_float": (batch(entry(), incarnation=P(2.0)), True),
    "inc_u64": (batch(entry(), incarnation=P(1 << 63)), False),
    "inc_neg": (batch(entry(), incarnation=P(-2)), True),
    "backend_nil": (batch(entry(), backend=P(None)), True),
    "backend_int": (batch(entry(), backend=P(1)), True),
    "tier_l2": (batch(entry(), tier=P("l2"), backend=P("fs")), True),
    "tier_list": (batch(entry(), tier=P(["l1"])), False),
    "etype_bin": (batch(entry(), event_type=P(b"store")), True),
    "bad_utf8_instance": (batch(entry(), instance_id=BAD_UTF8), False),
    "bad_utf8_model": (batch(entry(key(model_name=BAD_UTF8))), False),
    "bad_utf8_unknown": (batch(entry(), seq=BAD_UTF8), False),
    "utf8_instance": (batch(entry(), instance_id=P("sérvé-✓")), True),
    "dup_tier": (batch(entry(), seq=b"-")[:1] and bytes([0x88]) + batch(
        entry(), seq=b"-")[1:] + P("tier") + P("l2"), False),
    "shared_map": (batch(entry(), shared=P({"a": 1})), False),
    "ext_unknown": (batch(entry(), seq=b"\xd4\x01\x00"), False),
    "args_not_map_fields": (m((P(1), P(2))), False),
}


# Hex digits are read eight at a time: a non-digit at each place of a word, the bytes just
# outside each digit range, every length around a word, mixed case.
for _at in (0, 3, 7, 8, 15, 31, 56, 63):
    for _c in ":@G`g/ ~":
        _h = list("ab" * 32)
        _h[_at] = _c
        CASES[f"hex_{ord(_c):02x}_at_{_at}"] = (batch(entry(key(P("".join(_h))))), False)
for _n in (2, 6, 8, 9, 15, 16, 17, 24, 400):
    CASES[f"hex_len_{_n}"] = (batch(entry(key(P(("0123456789abcdefABCDEF" * 20)[:_n])))), True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_edge_case(name: str) -> None:
    args, in_c = CASES[name]
    data = trace_of(args)
    rows = c_rows(data)
    assert len(rows) == 3 and rows[0][0][0] == 1 and rows[2][0][0] == 1
    assert rows[1][0][0] == int(in_c), name
    e = same(data)
    assert e["batches"] + e["undecodable_records"] == 3


def test_edge_cases_mean_what_python_says() -> None:
    """A few outcomes pinned independently of either decoder."""
    def ev(name: str) -> Any:
        return events(trace_of(CASES[name][0]), "native")
    assert ev("canonical")["malformed_keys"] == 0
    assert ev("odd_hex")["malformed_keys"] == 1 and ev("rank_bool")["malformed_keys"] == 1
    assert ev("rank_u64")["malformed_keys"] == 1 and ev("key_str")["malformed_keys"] == 1
    assert ev("rank_absent")["malformed_keys"] == 0 and ev("salt_int")["malformed_keys"] == 0
    assert ev("entries_nil")["undecodable_records"] == 1
    # uppercase hex is the same key as lowercase: the delete finds the store
    up = ev("uppercase_hex")
    assert up["deletes_of_unstored"]["value"] == 0
    kinds = {(k["event_type"], k["backend"]): k["bytes"] for k in ev("size_float")["kinds"]}
    assert kinds[("store", "dram")] == 100  # the first store's 100 + the float's 0
    inst = ev("utf8_instance")["instances"]
    assert [i["instance_id"] for i in inst] == ["srv", "sérvé-✓"]
