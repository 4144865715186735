"""The analytics' example offsets (`lct._engine.Examples`): the first n distinct offsets
of each survival class, whatever order and repeats the pieces bring them in."""

from __future__ import annotations

import numpy as np
import pytest

from inferguard.lct._engine import Examples, _first_distinct


@pytest.mark.parametrize("seed", range(40))
def test_first_distinct_is_the_head_of_unique(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    size = int(rng.integers(0, 400))
    spread = int(rng.integers(1, 60))  # small spreads: many repeats, fewer distinct than n
    a = rng.integers(0, spread, size).astype(np.int64)
    assert _first_distinct(a, n).tolist() == np.unique(a)[:n].tolist()


def test_repeats_of_the_smallest_do_not_hide_later_values() -> None:
    # The n smallest with repeats are all one value: the other distinct ones still count.
    a = np.array([7] * 50 + [9, 3, 3, 11, 5] + [100] * 30, np.int64)
    assert _first_distinct(a, 4).tolist() == [3, 5, 7, 9]


def test_examples_keep_the_first_distinct_offsets_across_pieces() -> None:
    ex = Examples(n=3)
    ex.add(np.array([50, 40, 40, 90] * 10, np.int64))
    ex.add(np.array([45, 10, 10] * 10, np.int64))
    assert ex.offsets.tolist() == [10, 40, 45]
