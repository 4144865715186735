"""The per-key events fold in C (native/lct_evfold.c) against its Python twin and oracle
(the loops of `EventsEngine._fold`): the same EventStats on random event streams built to
hit every branch: L1 stores and L2 write-through (with and without an earlier L1 store),
evictions and deletes of unstored keys, extra tiers up to the "(other)" bound, restarts
(new incarnations) and lifecycle records, malformed keys, token ids present or absent,
non-finite and decreasing times, damage inside a batch, key sampling (the level rising
several times) and the decimation of kept durations."""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

import msgspec
import pytest

from inferguard import native_available
from inferguard.lct import _events
from inferguard.lct._stats import analyze_trace
from tests import lct_writer as w
from tests.test_trace_events_native import HEAD

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")


def stream(seed: int, n: int = 300, keys: int = 120, tiers: int = 3,
           tokens: bool = True) -> bytes:
    """A random events trace (one instance, restarts, a small key universe)."""
    rng = random.Random(seed)
    recs = []
    t, inc = 0.0, 1
    tier_names = ["l1", "l2"] + [f"t{i}" for i in range(tiers)]
    for _ in range(n):
        t += rng.choice([0.5, 1.0, 2.0, -1.0])
        tt = rng.choice([t] * 12 + [math.nan, math.inf, -math.inf])
        if rng.random() < 0.04:
            inc += 1
            recs.append(w.record("events.lifecycle", {"phase": rng.choice(["start", "stop"]),
                                                      "instance_id": "srv",
                                                      "incarnation": inc}, tt, tt))
            continue
        ents = []
        for _ in range(rng.randint(0, 6)):
            k = rng.randrange(keys)
            key: Any = {"chunk_hash_hex": hashlib.sha256(bytes([k % 256, k // 256])).hexdigest(),
                        "model_name": "m", "kv_rank": k % 2, "object_group_id": 0,
                        "cache_salt": None}
            if rng.random() < 0.05:
                key = rng.choice([None, "x", {"chunk_hash_hex": "zz", "model_name": "m"}])
            e: dict[str, Any] = {"key": key, "size_bytes": rng.randint(1, 999)}
            if tokens and rng.random() < 0.5:
                e["token_ids"] = [1, 2, 3][:rng.randint(0, 3)]
            ents.append(e)
        args = {"instance_id": "srv", "incarnation": inc, "seq": 1,
                "event_type": rng.choice(["store"] * 5 + ["delete"] * 3 + ["access", "x"]),
                "tier": rng.choice(tier_names[:2] * 3 + tier_names),
                "backend": rng.choice(["dram", "fs", None]), "entries": ents,
                "shared": rng.random() < 0.2}
        recs.append(w.record("events.batch", args, tt, tt))
    return w.trace(*recs, head=HEAD)


def both(data: bytes, **kw: Any) -> Any:
    got = [analyze_trace(data, backend=b, **kw).stats.events for b in ("native", "python")]
    assert msgspec.json.encode(got[0]) == msgspec.json.encode(got[1])  # NaN-safe equality
    return msgspec.to_builtins(got[0])


@pytest.mark.parametrize("seed", range(12))
def test_random_streams_identical(seed: int) -> None:
    e = both(stream(seed, tokens=seed % 2 == 0))
    assert e["exact"] and e["flow"]["l1_then_l2_keys"]["value"] > 0
    assert e["deletes_of_unstored"]["value"] > 0 and e["malformed_keys"] > 0
    assert len(e["instances"]) == 1 and e["instances"][0]["restarts"] > 0


@pytest.mark.parametrize("max_keys", [1, 3, 10, 40])
def test_sampling_identical(max_keys: int) -> None:
    e = both(stream(3, n=600, keys=400), max_exact_keys=max_keys)
    assert not e["exact"] and e["sample_rate"] < 1


def test_many_tiers_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_events, "MAX_NAMES", 4)  # "(other)" after l1, l2 and two more
    e = both(stream(5, tiers=6))
    assert "(other)" in {lt["tier"] for lt in e["lifetimes"]}


@pytest.mark.parametrize("cap", [7, 50])
def test_decimation_identical(monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    monkeypatch.setattr(_events, "MAX_LIFETIMES", cap)  # decimates inside a batch's values
    e = both(stream(7, n=800, keys=60))
    assert "decimated" in {lt["lifetime_s"]["count"].get("method") for lt in e["lifetimes"]}
    assert not e["flow"]["l1_to_l2_delay_s"]["exact"]


def test_damage_mid_batch_identical() -> None:
    data = bytearray(stream(11))
    rng = random.Random(2)
    compared = 0
    for _ in range(60):
        d = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(HEAD) + 8, len(d))
            d[i] ^= 1 << rng.randrange(8)
        try:
            both(bytes(d))
        except ValueError:
            continue
        compared += 1
    assert compared > 40


def test_fold_outcomes_pinned() -> None:
    """A stream whose numbers are known by hand: store k on l1 at 1, on l2 at 3, delete it
    on l1 at 6; delete an unstored key; store a second key on l2 only."""
    def ent(k: int) -> dict[str, Any]:
        return {"key": {"chunk_hash_hex": f"{k:064x}", "model_name": "m"}, "size_bytes": 1}

    def b(et: str, tier: str, t: float, *ks: int) -> bytes:
        return w.record("events.batch", {"instance_id": "a", "incarnation": 1,
                                         "event_type": et, "tier": tier,
                                         "entries": [ent(k) for k in ks]}, t, t)
    data = w.trace(b("store", "l1", 1.0, 1), b("store", "l2", 3.0, 1, 2),
                   b("delete", "l1", 6.0, 1, 9), head=HEAD)
    e = both(data)
    f = e["flow"]
    assert (f["l1_keys_stored"]["value"], f["l2_keys_stored"]["value"]) == (1, 2)
    assert (f["l1_then_l2_keys"]["value"], f["l2_without_l1_keys"]["value"]) == (1, 1)
    assert f["l1_to_l2_delay_s"]["max"] == 2.0
    life = {lt["tier"]: lt for lt in e["lifetimes"]}
    assert life["l1"]["lifetime_s"]["max"] == 5.0 and life["l1"]["alive_at_end"]["value"] == 0
    assert life["l2"]["alive_at_end"]["value"] == 2
    assert e["deletes_of_unstored"]["value"] == 1


@pytest.mark.parametrize("seed", range(5))
def test_first_seen_matches_a_dict(seed: int) -> None:
    """`_evrows.first_seen` (the grouping under the runs) against a plain dict pass."""
    import numpy as np

    from inferguard.lct import _evrows

    rng = random.Random(seed)
    rows = [[rng.choice([-4, -2, 0, 1, 7]), rng.choice([0, 3, -(1 << 63), (1 << 63) - 1])]
            for _ in range(rng.randint(0, 60)) for _ in range(rng.randint(1, 4))]
    keys = np.array(rows, np.int64).reshape(-1, 2)
    seen: dict[tuple[int, int], int] = {}
    for i, r in enumerate(rows):
        seen.setdefault((r[0], r[1]), i)
    u, first, inv = _evrows.first_seen(keys)
    assert [tuple(x) for x in u.tolist()] == list(seen)
    assert first.tolist() == list(seen.values())
    assert [tuple(x) for x in u[inv].tolist()] == [tuple(r) for r in rows]


@pytest.mark.parametrize("cols", [1, 2, 4])
@pytest.mark.parametrize("seed", range(4))
def test_first_seen_of_small_codes_matches_a_dict(seed: int, cols: int) -> None:
    """The packed road of `first_seen` (rows of small codes as one int64: name codes,
    shared flags, incarnations) against a plain dict pass; the test above, with values at
    both ends of int64, takes the row-wise road."""
    import numpy as np

    from inferguard.lct import _evrows

    rng = random.Random(seed)
    rows = [[rng.choice([-4, -3, -2, -1, 0, 1, 2, 40, 1 << 20]) for _ in range(cols)]
            for _ in range(rng.randint(1, 80)) for _ in range(rng.randint(1, 3))]
    keys = np.array(rows, np.int64).reshape(-1, cols)
    seen: dict[tuple[int, ...], int] = {}
    for i, r in enumerate(rows):
        seen.setdefault(tuple(r), i)
    u, first, inv = _evrows.first_seen(keys)
    assert [tuple(x) for x in u.tolist()] == list(seen)
    assert first.tolist() == list(seen.values())
    assert [tuple(x) for x in u[inv].tolist()] == [tuple(r) for r in rows]


def test_absent_tier_and_question_mark_share_one_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch without a tier and one with tier "?" are the same tier: their lifetimes go
    to one list in row order (which decimation depends on)."""
    monkeypatch.setattr(_events, "MAX_LIFETIMES", 5)

    def b(et: str, tier: str | None, t: float, *ks: int) -> bytes:
        args: dict[str, Any] = {"instance_id": "a", "event_type": et, "entries": [
            {"key": {"chunk_hash_hex": f"{k:064x}", "model_name": "m"}} for k in ks]}
        if tier is not None:
            args["tier"] = tier
        return w.record("events.batch", args, t, t)
    recs = [b("store", None, 0.0, *range(1, 9)), b("store", "?", 0.5, *range(11, 19))]
    for i in range(8):
        recs.append(b("delete", None if i % 2 else "?", 1.0 + i, 1 + i, 11 + i))
    e = both(w.trace(*recs, head=HEAD))
    (life,) = e["lifetimes"]
    assert life["tier"] == "?" and life["lifetime_s"]["count"]["method"] == "decimated"
