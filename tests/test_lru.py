"""The achievable hit rate (evidence/_lru.py, via the lookup-hash reader) against a
straightforward LRU written here: an OrderedDict replaying the lookups in timestamp order
with upstream's cache-simulator rule (lmcache 0.5.6 tools/cache_simulator/simulator.py,
`simulate`: the hit is the held prefix at arrival; then every chunk is touched)."""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from pathlib import Path

import msgspec
import numpy as np
import pytest

import inferguard as ig
from inferguard.evidence._lookup_hashes import read_lookup_hashes
from inferguard.evidence._lru import replay_lru
from inferguard.judge._rates import packet_rates

from .conftest import UPSTREAM
from .lookup_gen import generate_lookups


def reference(lookups: list[tuple[list[object], int]], capacity: int | None) -> int:
    """Hit tokens of an LRU of `capacity` entries (None: unbounded) over the lookups."""
    cache: OrderedDict[object, None] = OrderedDict()
    hit = 0
    for keys, chunk in lookups:
        prefix = 0
        for k in keys:
            if k not in cache:
                break
            prefix += 1
        hit += prefix * chunk
        for k in keys:
            if k in cache:
                cache.move_to_end(k)
            else:
                if capacity is not None and len(cache) >= capacity:
                    cache.popitem(last=False)
                cache[k] = None
    return hit


def jsonl_lookups(directory: Path) -> tuple[list[tuple[list[object], int]], int]:
    """The lookups of a directory, read here: (model, hash) keys, timestamp order."""
    events = [json.loads(line) for f in sorted(directory.glob("lookup_hashes_*.jsonl"))
              for line in f.read_text().splitlines() if line.strip()]
    events.sort(key=lambda e: e["timestamp"])
    return ([([(e["model_name"], h) for h in e["chunk_hashes"]], e["chunk_size"])
             for e in events], sum(e["seq_len"] for e in events))


@pytest.mark.parametrize("source", ["upstream", "generated"])
def test_reader_replay_matches_reference(source: str, tmp_path: Path) -> None:
    d = UPSTREAM / "lookup_hashes" if source == "upstream" else tmp_path / "lh"
    if source == "generated":
        generate_lookups(d, 3000, prompts=400, models=("a", "b"))
    lookups, tokens = jsonl_lookups(d)
    caps = [1, 3, 8, 40, 200]
    ev = read_lookup_hashes(d, lru_capacities=caps)
    got = ev.facts.achievable
    assert [a.capacity for a in got] == [*caps, None]
    for a in got:
        assert a.tokens == tokens
        assert a.hit_tokens == reference(lookups, a.capacity), a
    # The replay found something to hit in both sets, and a bigger cache never serves less.
    assert got[-1].hit_tokens > 0
    assert all(x.hit_tokens <= y.hit_tokens for x, y in itertools.pairwise(got))


def test_random_sequences_with_repeats_inside_a_lookup() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        lookups: list[tuple[list[object], int]] = []
        for _ in range(int(rng.integers(0, 25))):
            k = int(rng.integers(0, 7))
            keys = ([int(x) for x in rng.integers(0, 10, size=k)] if rng.random() < 0.4
                    else [int(rng.integers(0, 4)) * 10 + i for i in range(k)])
            lookups.append((keys, 16))
        ids = np.array([k for keys, _ in lookups for k in keys], np.int64)
        offsets = np.cumsum([0] + [len(k) for k, _ in lookups]).astype(np.int64)
        got = replay_lru(ids, offsets, np.full(len(lookups), 16, np.int64),
                         np.array([16 * len(k) for k, _ in lookups], np.int64), [1, 2, 4, 7])
        assert [a.hit_tokens for a in got] == [reference(lookups, c) for c in (1, 2, 4, 7, None)]


def test_default_capacities_and_the_rates_on_the_report(tmp_path: Path) -> None:
    ev = read_lookup_hashes(UPSTREAM / "lookup_hashes")
    assert ev.facts.achievable and ev.facts.achievable[-1].capacity is None
    rates = packet_rates(ig.Packet(settings=ig.PacketSettings(), evidence=[ev]))
    unbounded = next(r for r in rates if r.name == "achievable_hit_rate_unbounded")
    assert unbounded.level == "simulated" and unbounded.window.kind == "lookup_hash_replay"
    lookups, tokens = jsonl_lookups(UPSTREAM / "lookup_hashes")
    assert unbounded.value == pytest.approx(reference(lookups, None) / tokens)


def test_no_raw_hash_in_the_facts(tmp_path: Path) -> None:
    ev = read_lookup_hashes(UPSTREAM / "lookup_hashes")
    text = msgspec.json.encode(ev).decode()
    assert ev.facts.achievable and "f38bb63ae9f7179b" not in text


@pytest.mark.parametrize("limit,over", [(10_000, False), (40, True)])
def test_past_the_distinct_bound_the_replay_stops_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, over: bool) -> None:
    """More distinct chunks than MAX_DISTINCT: no achievable hit rate (its sequence is
    dropped) and no distinct count, each said as a problem; under the bound (near miss)
    both are reported."""
    import inferguard.evidence._lookup_hashes as lh

    monkeypatch.setattr(lh, "MAX_DISTINCT", limit)
    d = tmp_path / "lh"
    generate_lookups(d, 400, prompts=200)
    ev = read_lookup_hashes(d)
    facts = ev.facts
    said = " ".join(p.message for p in ev.problems)
    assert (facts.achievable == []) is over
    assert (facts.chunks_distinct is None) is over
    assert ("no achievable" in said) is over and ("distinct and" in said) is over
    assert facts.lookups == 400  # every line still counted
