"""The ObjectKey contract: C and Python agree on every edge case, on real files, under damage."""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Any

import numpy as np
import pytest

from inferguard import TraceFile, native_available
from inferguard.lct import _keys as tk
from inferguard.lct._codec import ObjectKey

from . import lct_writer as w
from .conftest import UPSTREAM
from .test_trace_parity import _mutate

needs_native = pytest.mark.skipif(not native_available(), reason="native backend not built")
S = w.pack
WRAP = tk.WRAPPER
H32 = hashlib.sha256(b"k").digest()


def key_rows(data: bytes, backend: str, keys: bool = True
             ) -> tuple[list[tuple[Any, ...]], tuple[list[str], list[str]]]:
    """(record offset, fp, model, salt, kv_rank, group, status) per key row, and the names.
    `keys`: scan as the analytics do (pure Python: batch scan, key rows from its args blob);
    without, frame by frame (pure Python: key rows from each record's own bytes)."""
    with TraceFile(data) as t:
        chunks, _ = t._chunks(backend, [], keys=keys)  # type: ignore[arg-type]
        ex = tk.make_extractor(backend)  # type: ignore[arg-type]
        out = []
        for c in chunks:
            for k in ex.extract(c):
                for j in range(len(k)):
                    out.append((int(c.offset[k.row[j]]), int(k.fp[j]), int(k.model[j]),
                                int(k.salt[j]), int(k.kv_rank[j]), int(k.group[j]),
                                int(k.status[j])))
        return out, ex.names()


def args_record(args: bytes, t: float = 1.0) -> bytes:
    """A record whose args value is these raw bytes."""
    return (b"\x85" + S("type") + S("record") + S("t_mono") + S(t) + S("t_wall") + S(t)
            + S("qualname") + S("q.op") + S("args") + args)


def payload(**fields: Any) -> bytes:
    return S(fields)


def one_key(p: bytes) -> bytes:
    """args = {"keys": [<wrapper><payload bytes>]}."""
    return b"\x81" + S("keys") + b"\x91" + WRAP + p


CANON = {"chunk_hash": H32, "model_name": "m", "kv_rank": 0x01000100, "object_group_id": 0}
NESTED = {"__t__": "ObjectKey", "v": CANON}


def canon(**over: Any) -> bytes:
    return payload(**(CANON | over))


# name -> (args bytes, expected list of (status, model name or None, kv_rank, group, salt))
OK, BAD = tk.KEY_OK, tk.KEY_MALFORMED
CASES: dict[str, tuple[bytes, list[tuple[int, str | None, int, int, str | None]]]] = {
    "canonical": (one_key(canon()), [(OK, "m", 0x01000100, 0, None)]),
    "no group": (one_key(payload(chunk_hash=H32, model_name="m", kv_rank=3)),
                 [(OK, "m", 3, 0, None)]),
    "reordered": (one_key(payload(kv_rank=3, model_name="m", chunk_hash=H32)),
                  [(OK, "m", 3, 0, None)]),
    "salt str": (one_key(canon(cache_salt="s1")), [(OK, "m", 0x01000100, 0, "s1")]),
    "salt nil": (one_key(canon(cache_salt=None)), [(OK, "m", 0x01000100, 0, None)]),
    "salt int": (one_key(canon(cache_salt=5)), [(OK, "m", 0x01000100, 0, None)]),
    "salt bad utf8": (one_key(b"\x85" + canon()[1:] + S("cache_salt") + b"\xa2\xff\xfe"),
                      [(BAD, None, 0, 0, None)]),
    "model bad utf8": (one_key(b"\x84" + S("chunk_hash") + S(H32) + S("model_name")
                               + b"\xa1\xff" + S("kv_rank") + b"\x01" + S("object_group_id")
                               + b"\x00"), [(BAD, None, 0, 0, None)]),
    "model empty": (one_key(canon(model_name="")), [(OK, "", 0x01000100, 0, None)]),
    "hash 8 bytes": (one_key(canon(chunk_hash=H32[:8])), [(OK, "m", 0x01000100, 0, None)]),
    "hash empty": (one_key(canon(chunk_hash=b"")), [(OK, "m", 0x01000100, 0, None)]),
    "hash bin16": (one_key(b"\x84" + S("chunk_hash") + b"\xc5\x00\x20" + H32 + canon()[46:]),
                   [(OK, "m", 0x01000100, 0, None)]),
    "hash str": (one_key(canon(chunk_hash="abc")), [(BAD, None, 0, 0, None)]),
    "hash missing": (one_key(payload(model_name="m", kv_rank=1)), [(BAD, None, 0, 0, None)]),
    "rank negative": (one_key(canon(kv_rank=-5)), [(OK, "m", -5, 0, None)]),
    "rank int64 min": (one_key(canon(kv_rank=-(1 << 63))), [(OK, "m", -(1 << 63), 0, None)]),
    "rank int64 max": (one_key(canon(kv_rank=(1 << 63) - 1)),
                       [(OK, "m", (1 << 63) - 1, 0, None)]),
    "rank uint64 above": (one_key(canon(kv_rank=1 << 63)), [(BAD, None, 0, 0, None)]),
    "rank bool": (one_key(canon(kv_rank=True)), [(BAD, None, 0, 0, None)]),
    "rank float": (one_key(canon(kv_rank=1.0)), [(BAD, None, 0, 0, None)]),
    "group str": (one_key(canon(object_group_id="0")), [(BAD, None, 0, 0, None)]),
    "group negative": (one_key(canon(object_group_id=-1)), [(OK, "m", 0x01000100, -1, None)]),
    "extra field": (one_key(canon(extra=[1, {"a": b"x"}])), [(OK, "m", 0x01000100, 0, None)]),
    # (only a wrapper inside a bin can be followed by bytes that are not msgpack)
    "extra ill-formed": (b"\x81" + S("b") + S(WRAP + b"\x85" + canon()[1:] + S("zz") + b"\xc1"),
                         [(BAD, None, 0, 0, None)]),
    "dup last wins": (one_key(b"\x85" + S("chunk_hash") + S("bad") + canon()[1:]),
                      [(OK, "m", 0x01000100, 0, None)]),
    "dup last bad": (one_key(b"\x85" + canon()[1:] + S("chunk_hash") + S(5)),
                     [(BAD, None, 0, 0, None)]),
    "non-str key skipped": (one_key(b"\x85" + b"\x07" + S([1, 2]) + canon()[1:]),
                            [(OK, "m", 0x01000100, 0, None)]),
    "map16": (one_key(b"\xde\x00\x04" + canon()[1:]), [(OK, "m", 0x01000100, 0, None)]),
    "map32 huge count": (b"\x81" + S("b") + S(WRAP + b"\xdf\xff\xff\xff\xff" + canon()[1:]),
                         [(BAD, None, 0, 0, None)]),
    "payload array": (one_key(S([1, 2])), [(BAD, None, 0, 0, None)]),
    "payload nil": (one_key(b"\xc0"), [(BAD, None, 0, 0, None)]),
    "two keys": (b"\x81" + S("keys") + b"\x92" + WRAP + canon() + WRAP
                 + canon(model_name="n", kv_rank=7),
                 [(OK, "m", 0x01000100, 0, None), (OK, "n", 7, 0, None)]),
    "wrapper inside bin": (b"\x81" + S("b") + S(WRAP + canon()), [(OK, "m", 0x01000100, 0,
                                                                    None)]),
    "wrapper at args end": (b"\x81" + S("b") + S(b"xx" + WRAP), [(BAD, None, 0, 0, None)]),
    "payload runs past args": (b"\x81" + S("b") + S(WRAP + canon()[:20]),
                               [(BAD, None, 0, 0, None)]),
    "nested wrapper": (one_key(canon(extra=NESTED)),
                       [(OK, "m", 0x01000100, 0, None), (OK, "m", 0x01000100, 0, None)]),
    "wrapper as chunk_hash": (one_key(payload(chunk_hash=NESTED, model_name="m",
                                              kv_rank=1)),
                              [(BAD, None, 0, 0, None), (OK, "m", 0x01000100, 0, None)]),
    # msgspec gives up on depth; both kernels read on (the record is valid at any depth).
    "args nested 3000 deep": (b"\x82" + S("deep") + b"\x91" * 3000 + b"\x00" + S("keys")
                              + b"\x91" + WRAP + canon(), [(OK, "m", 0x01000100, 0, None)]),
    "str8 wrapper not a key": (b"\x81" + S("k") + b"\x82\xa5__t__\xd9\x09ObjectKey\xa1v"
                               + canon(), []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_key_contract_cases(backend: str, name: str) -> None:
    args, expected = CASES[name]
    data = w.trace(args_record(args))
    rows, (models, salts) = key_rows(data, backend)
    assert [r[6] for r in rows] == [e[0] for e in expected], name
    for r, (st, model, rank, group, salt) in zip(rows, expected, strict=True):
        if st == BAD:
            assert r[1] == 0 and r[2] == -1
            continue
        assert models[r[2]] == model and r[4] == rank and r[5] == group
        assert (salts[r[3]] if r[3] >= 0 else None) == salt
    # nkeys from the scan counts the same occurrences
    with TraceFile(data) as t:
        assert int(t.scan(backend=backend).nkeys.sum()) == len(rows)  # type: ignore[arg-type]


@needs_native
@pytest.mark.parametrize("name", sorted(CASES))
def test_key_contract_backends_identical(name: str) -> None:
    data = w.trace(args_record(CASES[name][0]))
    assert key_rows(data, "native") == key_rows(data, "python"), name


PINNED_FP = 0x7A0BEB7C8FFD4487  # key_fingerprint(bytes(range(32)), "test-model", 0x01000100)


def test_fingerprint_is_pinned_and_covers_the_identity() -> None:
    # Changing the fingerprint breaks comparisons across versions: pin it.
    assert tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000100) == PINNED_FP
    assert tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000100, 0, None) == PINNED_FP
    variants = {tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000100),
                tk.key_fingerprint(bytes(range(31)) + b"\x20", "test-model", 0x01000100),
                tk.key_fingerprint(bytes(range(32)), "test-modem", 0x01000100),
                tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000101),
                tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000100, 1),
                tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000100, 0, ""),
                tk.key_fingerprint(bytes(range(32)), "test-model", 0x01000100, 0, "s")}
    assert len(variants) == 7


def _pinned_from_doc() -> int:
    """The fingerprint recomputed from the documented formula with plain Python ints."""
    m = (1 << 64) - 1

    def fmix(k: int) -> int:
        k ^= k >> 33
        k = k * 0xFF51AFD7ED558CCD & m
        k ^= k >> 33
        k = k * 0xC4CEB9FE1A85EC53 & m
        return k ^ (k >> 33)

    def h(b: bytes, seed: int) -> int:
        x = (seed ^ len(b) * 0x9E3779B97F4A7C15) & m
        for i in range(0, len(b), 8):
            word = int.from_bytes(b[i:i + 8].ljust(8, b"\0"), "little")
            x ^= word * 0x87C37B91114253D5 & m
            x = ((x << 31) | (x >> 33)) & m
            x = x * 0x4CF5AD432745937F & m
        return fmix(x)

    words = [h(b"test-model", 0x13198A2E03707344), 0x01000100, 0, 0x082EFA98EC4E6C89]
    ctx = h(b"".join(v.to_bytes(8, "little") for v in words), 0x452821E638D01377)
    return h(bytes(range(32)), ctx) or 1


def test_fingerprint_matches_independent_formula() -> None:
    assert _pinned_from_doc() == PINNED_FP


@needs_native
def test_fingerprint_c_equals_python() -> None:
    from inferguard import _core

    rng = random.Random(5)
    for _ in range(300):
        h = rng.randbytes(rng.choice([0, 1, 7, 8, 9, 16, 32, 33, 64]))
        model = "".join(rng.choice("abcé/-") for _ in range(rng.randint(0, 40)))
        rank = rng.randint(-(1 << 63), (1 << 63) - 1)
        group = rng.choice([0, 1, -1, rng.randint(-(1 << 63), (1 << 63) - 1)])
        salt = rng.choice([None, "", "salt", "ñ" * rng.randint(1, 20)])
        mb, sb = model.encode(), (salt or "").encode()
        c = _core.lib.lct_key_fingerprint(h, len(h), mb, len(mb), rank, group, sb, len(sb),
                                          salt is not None)
        assert c == tk.key_fingerprint(h, model, rank, group, salt)


def _codec_keys(path: Any) -> list[tuple[int, ObjectKey]]:
    def walk(v: Any, out: list[ObjectKey]) -> None:
        if isinstance(v, ObjectKey):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, out)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x, out)
        elif hasattr(v, "__struct_fields__"):
            for f in v.__struct_fields__:
                walk(getattr(v, f), out)

    res = []
    with TraceFile(path) as t:
        for r in t.records():
            keys: list[ObjectKey] = []
            walk(r.args, keys)
            res += [(r.offset, k) for k in keys]
    return res


@pytest.mark.parametrize("name", ["storage.lct", "lookup-replay-storage.lct"])
def test_upstream_keys_match_the_codec(backend: str, name: str) -> None:
    path = UPSTREAM / name
    rows, (models, _) = key_rows(path.read_bytes(), backend)
    codec = _codec_keys(path)
    assert len(rows) == len(codec)
    for (off, fp, model, salt, rank, group, st), (off2, k) in zip(rows, codec, strict=True):
        assert off == off2 and st == tk.KEY_OK and salt == tk.NAME_NONE
        assert (models[model], rank, group) == (k.model_name, k.kv_rank, k.object_group_id)
        assert fp == tk.key_fingerprint(k.chunk_hash, k.model_name, k.kv_rank,
                                        k.object_group_id, k.cache_salt)
    assert len({r[1] for r in rows}) == {"storage.lct": 32,
                                         "lookup-replay-storage.lct": 44}[name]


@needs_native
def test_random_damage_same_key_rows() -> None:
    rng = random.Random(8128)
    salted = w.header("schema2")
    bodies = [w.record(w.STORAGE_PREFIX + "finish_write",
                       {"keys": [w.wrap("ObjectKey", {"chunk_hash": H32[:k % 33],
                                                      "model_name": f"m{k % 3}",
                                                      "kv_rank": k, "object_group_id": k % 2,
                                                      **({"cache_salt": f"s{k % 4}"}
                                                         if k % 5 else {})})
                                 for k in range(i % 6)]}, i * 0.1, i * 0.1)
              for i in range(40)]
    seeds = [(UPSTREAM / "storage.lct").read_bytes(),
             (UPSTREAM / "lookup-replay-storage.lct").read_bytes(),
             w.trace(*bodies, head=salted)]
    compared = 0
    for round_ in range(300):
        data = _mutate(rng, seeds[round_ % 3])
        try:
            native = key_rows(data, "native")
        except ValueError:
            continue
        assert native == key_rows(data, "python"), f"round {round_}"
        compared += 1
    assert compared > 200


def test_name_tables_are_capped(backend: str) -> None:
    long_name = "x" * 1025
    bodies = [w.record("q.op", {"keys": [w.wrap("ObjectKey", canon_dict(model_name=f"m{i}"))
                                         for i in range(i0, i0 + 100)]}, 1.0, 1.0)
              for i0 in range(0, 4200, 100)]
    bodies.append(w.record("q.op", {"keys": [w.wrap("ObjectKey",
                                                    canon_dict(model_name=long_name))]},
                           1.0, 1.0))
    rows, (models, _) = key_rows(w.trace(*bodies), backend)
    assert len(models) == 4096 and models[:2] == ["m0", "m1"]
    assert [r[2] for r in rows[4096:]] == [tk.NAME_UNINTERNED] * (len(rows) - 4096)
    assert rows[-1][1] == tk.key_fingerprint(H32, long_name, 1, 0, None)
    assert rows[4100][1] == tk.key_fingerprint(H32, "m4100", 1, 0, None)


def canon_dict(**over: Any) -> dict[str, Any]:
    return {"chunk_hash": H32, "model_name": "m", "kv_rank": 1, "object_group_id": 0} | over


def test_bad_salt_interns_nothing(backend: str) -> None:
    bad = b"\x85" + canon(model_name="only-here")[1:] + S("cache_salt") + b"\xa2\xff\xfe"
    rows, (models, salts) = key_rows(w.trace(args_record(one_key(bad)),
                                             args_record(one_key(canon()))), backend)
    assert [r[6] for r in rows] == [BAD, OK]
    assert models == ["m"] and salts == []


def test_key_rows_resume_across_capacity(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tk, "KEY_ROWS", 7)
    data = w.trace(*[w.storage_record("finish_write", 5, i * 0.1, i) for i in range(9)])
    rows, _ = key_rows(data, backend)
    monkeypatch.setattr(tk, "KEY_ROWS", 1 << 18)
    assert rows == key_rows(data, backend)[0] and len(rows) == 45


@needs_native
def test_key_tables_agree() -> None:
    rng = np.random.default_rng(3)
    py, nat = tk.PythonKeyTable(50), tk.NativeKeyTable(50)
    for _ in range(20):
        fp = rng.integers(1, 80, 200).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        use = rng.random(200) < 0.9
        a, b = py.intern(fp, use), nat.intern(fp, use)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]
        assert np.array_equal(py.fingerprints(), nat.fingerprints())
    keep = py.fingerprints()[::3]
    py.rebuild(keep, 60)
    nat.rebuild(keep, 60)
    fp = rng.integers(1, 200, 500).astype(np.uint64)
    a, b = py.intern(fp, np.ones(500, bool)), nat.intern(fp, np.ones(500, bool))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] > 0


def test_python_fast_path_equals_slow_path() -> None:
    """The slice fast path gives exactly parse_key's answers on real and odd records."""
    data = (UPSTREAM / "lookup-replay-storage.lct").read_bytes()
    rows_fast, _ = key_rows(data, "python", keys=False)
    orig = tk.PythonKeyExtractor._fast
    try:
        tk.PythonKeyExtractor._fast = lambda self, args, nk: None  # type: ignore[method-assign]
        rows_slow, _ = key_rows(data, "python", keys=False)
    finally:
        tk.PythonKeyExtractor._fast = orig  # type: ignore[method-assign]
    assert rows_fast == rows_slow
    assert key_rows(data, "python") == key_rows(data, "python", keys=False)


def _odd_keys_trace(n: int) -> bytes:
    """Records mixing canonical keys with every way a payload can leave the fast path."""
    odd = [canon(), canon(model_name="m2"), canon(kv_rank=-3), canon(kv_rank=2**40),
           canon(object_group_id=7), canon(chunk_hash=H32[:5]), payload(**canon_dict(
               cache_salt="s")), b"\x84" + canon()[1:-1], canon(model_name="x" * 40),
           canon(kv_rank=2**63), b"\xc0",
           canon(model_name="mm").replace(b"\xa2mm", b"\xa2\xff\xfe")]  # not UTF-8
    bodies = []
    for i in range(n):
        ks = [odd[(i * 7 + j) % len(odd)] if (i + j) % 3 == 0 else canon() for j in range(i % 9)]
        bodies.append(args_record(b"\x81" + S("keys") + bytes([0x90 | len(ks)])
                                  + b"".join(WRAP + k for k in ks), i * 0.01))
    return w.trace(*bodies)


def test_python_blob_path_equals_per_record_path_under_damage() -> None:
    """Key rows from a batch scan's args blob (vectorised canonical path, runs of equal
    tails parsed once) equal those read record by record, on real files, odd payloads and
    random damage (which also sends damaged chunks down the frame-by-frame scan)."""
    rng = random.Random(1217)
    seeds = [(UPSTREAM / "storage.lct").read_bytes(),
             (UPSTREAM / "lookup-replay-storage.lct").read_bytes(), _odd_keys_trace(80),
             w.trace(*[w.storage_record("finish_write", k % 7, k * 0.1, k) for k in range(50)])]
    compared = 0
    for round_ in range(240):
        data = seeds[round_] if round_ < len(seeds) else _mutate(rng, seeds[round_ % 4])
        try:
            slow = key_rows(data, "python", keys=False)
        except ValueError:
            continue
        assert key_rows(data, "python") == slow, f"round {round_}"
        compared += 1
    assert compared > 150


def test_struct_layout_of_payload_is_what_upstream_writes() -> None:
    # The fast paths assume msgspec's layout: this is it (from the real file).
    body = (UPSTREAM / "storage.lct").read_bytes()
    i = body.index(WRAP) + len(WRAP)
    assert body[i:i + 14] == b"\x84\xaachunk_hash\xc4\x20"
    assert struct.unpack(">B", body[i + 13:i + 14])[0] == 32


def test_python_args_blob_is_read_once() -> None:
    """A chunk's args copy is dropped after its keys are read; extracting again (another
    extractor, same chunk) reads the records themselves and gives the same rows."""
    data = _odd_keys_trace(40)
    with TraceFile(data) as t:
        chunks, _ = t._chunks("python", [], keys=True)
        for c in chunks:
            assert c.args is not None and not c.args.released
            first = list(tk.make_extractor("python").extract(c))
            assert c.args.released and not c.args.data
            again = list(tk.make_extractor("python").extract(c))
            assert len(first) == len(again) > 0
            for a, b in zip(first, again, strict=True):
                for field in ("row", "fp", "model", "salt", "kv_rank", "group", "status"):
                    assert np.array_equal(getattr(a, field), getattr(b, field)), field
