"""Achievable hit rate from lookup hashes: InferGuard's replay against a naive reference,
in the same run, on a generated million-line lookup-hash set (`tests/lookup_gen.py`: Zipf
prompts sharing family prefixes, 2-8 chunks each).

Two pairs: (1) the whole read — `read_lookup_hashes(dir, lru_capacities=...)` (JSON lines,
salted digests, aggregates, the vectorised replay at 3 capacities + unbounded) against a
naive script doing what upstream's simulator does (json.loads per line, sort by timestamp,
one OrderedDict LRU pass per capacity); (2) the kernel alone — `replay_lru` on the id
arrays against the same OrderedDict passes over the same ids. Ratios are printed at the
end; figures go to docs/performance.md. Size: INFERGUARD_BENCH_SCALE=smoke (CI: 5,000
lines, no claims), full (default: 1,000,000 lines), or a number of lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferguard.evidence._lookup_hashes import read_lookup_hashes
from inferguard.evidence._lru import replay_lru
from tests.lookup_gen import generate_lookups
from tests.test_lru import reference

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
LINES = 5_000 if SCALE == "smoke" else 1_000_000 if SCALE == "full" else int(SCALE)
CAPS = [max(1, LINES // 100), max(1, LINES // 20), max(1, LINES // 5)]
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def lookup_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lh")
    generate_lookups(d, LINES, prompts=max(100, LINES // 20), models=("a", "b"))
    return d


def _lru_passes(lookups: list[tuple[list[Any], int]], caps: list[int]) -> list[int]:
    """The reference: one straightforward OrderedDict LRU pass per capacity, then unbounded
    (the same reference the tests check `replay_lru` against)."""
    return [reference(lookups, cap) for cap in [*caps, None]]


def _naive_read(d: Path) -> list[int]:
    events = [json.loads(line) for f in sorted(d.glob("lookup_hashes_*.jsonl"))
              for line in f.open() if line.strip()]
    events.sort(key=lambda e: e["timestamp"])
    return _lru_passes([([(e["model_name"], h) for h in e["chunk_hashes"]], e["chunk_size"])
                        for e in events], CAPS)


def _record(name: str, benchmark: Any) -> None:
    if benchmark.stats is not None and benchmark.enabled:
        RESULTS[name] = benchmark.stats.stats.mean


def test_read_naive(benchmark: Any, lookup_dir: Path) -> None:
    got = benchmark.pedantic(_naive_read, args=(lookup_dir,), rounds=1, iterations=1)
    assert got == [a.hit_tokens for a in read_lookup_hashes(
        lookup_dir, lru_capacities=CAPS).facts.achievable]
    _record("read_naive", benchmark)


def test_read_inferguard(benchmark: Any, lookup_dir: Path) -> None:
    ev = benchmark.pedantic(read_lookup_hashes, args=(lookup_dir,),
                            kwargs={"lru_capacities": CAPS}, rounds=1, iterations=1)
    assert ev.status == "ok" and len(ev.facts.achievable) == len(CAPS) + 1
    _record("read_inferguard", benchmark)


@pytest.fixture(scope="module")
def id_arrays(lookup_dir: Path) -> tuple[Any, ...]:
    events = [json.loads(line) for line in
              next(lookup_dir.glob("*.jsonl")).open() if line.strip()]
    dense: dict[tuple[str, str], int] = {}
    keys = [[dense.setdefault((e["model_name"], h), len(dense)) for h in e["chunk_hashes"]]
            for e in events]
    ids = np.array([k for ks in keys for k in ks], np.int64)
    offsets = np.cumsum([0] + [len(ks) for ks in keys]).astype(np.int64)
    chunk = np.full(len(keys), 16, np.int64)
    seq = np.array([e["seq_len"] for e in events], np.int64)
    return ids, offsets, chunk, seq, [(ks, 16) for ks in keys]


def test_kernel_naive(benchmark: Any, id_arrays: tuple[Any, ...]) -> None:
    ids, offsets, chunk, seq, lookups = id_arrays
    got = benchmark.pedantic(_lru_passes, args=(lookups, CAPS), rounds=1, iterations=1)
    assert got == [a.hit_tokens for a in replay_lru(ids, offsets, chunk, seq, CAPS)]
    _record("kernel_naive", benchmark)


def test_kernel_inferguard(benchmark: Any, id_arrays: tuple[Any, ...]) -> None:
    ids, offsets, chunk, seq, _ = id_arrays
    got = benchmark.pedantic(replay_lru, args=(ids, offsets, chunk, seq, CAPS), rounds=3,
                             iterations=1)
    assert len(got) == len(CAPS) + 1
    _record("kernel_inferguard", benchmark)


def teardown_module() -> None:
    for what in ("read", "kernel"):
        a, b = RESULTS.get(f"{what}_naive"), RESULTS.get(f"{what}_inferguard")
        if a and b:
            print(f"\n{what}: naive {a:.2f} s, InferGuard {b:.2f} s, ratio {a / b:.2f}x "
                  f"({LINES} lines, capacities {CAPS} + unbounded)")
