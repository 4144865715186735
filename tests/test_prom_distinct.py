"""The distinct-rows kernel (native/distinct.c) behind the native series counts and per-family
facts: against a plain Python set of keys on random tables (ordered and as multisets), its
refusals of bad ranges, and `Exposition.series_counts()` on both backends against a
per-sample oracle on every recorded scrape, generated expositions and edge cases."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from inferguard import native_available
from inferguard.prom._model import Exposition, parse_text
from tests.prom_gen import generate_exposition
from tests.test_metrics_columnar import EDGE, SCRAPES

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ["python"] + (["native"] if native_available() else [])
needs_native = pytest.mark.skipif(not native_available(), reason="C core not built")


def _oracle(head: list[int], first: list[int], count: list[int], items: list[int],
            sort_items: bool) -> list[bool]:
    seen: set[tuple[int, tuple[int, ...]]] = set()
    out = []
    for h, f, c in zip(head, first, count, strict=True):
        seq = items[f:f + c]
        key = (h, tuple(sorted(seq) if sort_items else seq))
        out.append(key not in seen)
        seen.add(key)
    return out


@needs_native
@pytest.mark.parametrize("sort_items", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_distinct_rows_equal_a_set_of_keys(seed: int, sort_items: bool) -> None:
    from inferguard._native._prom import distinct_rows

    rng = random.Random(seed)
    n_items = rng.choice([0, 5, 40, 400])
    items = [rng.randrange(-3, 4) for _ in range(n_items)]
    n = rng.choice([0, 1, 7, 300, 3000])
    head, first, count = [], [], []
    for _ in range(n):
        c = rng.randrange(0, min(n_items, 20 if rng.random() < 0.9 else 40) + 1)
        head.append(rng.randrange(-2, 3) if rng.random() < 0.5 else rng.randrange(1 << 40))
        first.append(rng.randrange(0, n_items - c + 1))
        count.append(c)
    got = distinct_rows(np.array(head, np.int64), np.array(first, np.int64),
                        np.array(count, np.int64), np.array(items, np.int64), sort_items)
    assert got.tolist() == _oracle(head, first, count, items, sort_items)


@needs_native
def test_distinct_rows_order_and_multiset() -> None:
    from inferguard._native._prom import distinct_rows

    items = np.array([3, 4, 4, 3, 3, 3, 3], np.int64)
    head = np.array([1, 1, 1, 2], np.int64)
    first = np.array([0, 2, 4, 0], np.int64)
    count = np.array([2, 2, 2, 2], np.int64)
    # [3,4] [4,3] [3,3] under head 1, then [3,4] under head 2
    assert distinct_rows(head, first, count, items, True).tolist() == [True, False, True, True]
    assert distinct_rows(head, first, count, items, False).tolist() == [True, True, True, True]


@needs_native
@pytest.mark.parametrize("first,count", [([0, 5], [2, 3]), ([-1], [1]), ([0], [-1]),
                                         ([8], [0]), ([1 << 62], [1 << 62])])
def test_distinct_rows_refuses_a_range_outside_the_items(first: list[int],
                                                         count: list[int]) -> None:
    from inferguard._native._prom import distinct_rows

    with pytest.raises(ValueError, match="outside"):
        distinct_rows(np.zeros(len(first), np.int64), np.array(first, np.int64),
                      np.array(count, np.int64), np.arange(7, dtype=np.int64), True)


def _series_oracle(exp: Exposition) -> list[int]:
    per: Counter[str] = Counter()
    seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    for fam in exp.families:
        for s in fam.samples:
            key = (fam.name, s.name, tuple(sorted(s.labels)))
            if key not in seen:
                seen.add(key)
                per[fam.name] += 1
    return [per[f.name] for f in exp.families]


def _inputs() -> list[tuple[str, bytes]]:
    out = [(str(p.relative_to(REPO)), p.read_bytes()) for p in SCRAPES]
    out += [("edge", EDGE), ("gen-prom", generate_exposition(6, seed=3)),
            ("gen-om", generate_exposition(6, seed=4, openmetrics=True))]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,data", _inputs(), ids=[n for n, _ in _inputs()])
def test_series_counts_equal_the_per_sample_oracle(name: str, data: bytes,
                                                   backend: str) -> None:
    exp = parse_text(data, backend=backend)  # type: ignore[arg-type]
    assert exp.series_counts().tolist() == _series_oracle(exp)


def test_the_series_oracle_sees_a_reordered_label_as_one_series() -> None:
    text = b'# TYPE g gauge\ng{a="1",b="2"} 1\ng{b="2",a="1"} 2\ng{a="1",b="3"} 3\n'
    for backend in BACKENDS:
        exp = parse_text(text, backend=backend)  # type: ignore[arg-type]
        assert exp.series_counts().tolist() == [2]
