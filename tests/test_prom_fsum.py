"""Exact per-family totals: fsum.c gives math.fsum's result bit for bit, and a total past
the float range is +-inf instead of an OverflowError that aborted the whole summary."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

from inferguard import native_available
from inferguard.prom import parse_text
from inferguard.prom._model import exact_sum

needs_native = pytest.mark.skipif(not native_available(), reason="native backend not built")


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _cases() -> list[list[float]]:
    rng = random.Random(17)
    cases: list[list[float]] = [
        [], [0.0], [-0.0], [-0.0, -0.0], [1.0, 2.0 ** -53], [1.0, 2.0 ** -53, 2.0 ** -106],
        [1.0, -(2.0 ** -53), -(2.0 ** -106)], [2.0 ** 53, 1.0, 2.0 ** -80],
        [1e16, 1.0, 1e-16], [1e308, -1e308, 1e-308], [5e-324, 5e-324, -5e-324],
        [0.1] * 10, [1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50],
        [2.0 ** 1023, -(2.0 ** 1023), 2.0 ** -1074],
    ]
    for _ in range(300):
        n = rng.randrange(1, 60)
        kind = rng.randrange(4)
        if kind == 0:  # any magnitude, either sign
            v = [rng.choice((-1, 1)) * 10.0 ** rng.uniform(-300, 300) for _ in range(n)]
        elif kind == 1:  # heavy cancellation
            half = [rng.uniform(-1e20, 1e20) for _ in range(n)]
            v = half + [-x * (1 + rng.choice((0.0, 2.0 ** -52))) for x in half]
            rng.shuffle(v)
        elif kind == 2:  # counters: integers as floats
            v = [float(rng.randrange(0, 1 << 60)) for _ in range(n)]
        else:  # random bit patterns that are finite
            v = []
            while len(v) < n:
                (x,) = struct.unpack("<d", rng.randbytes(8))
                if math.isfinite(x):
                    v.append(x)
        cases.append(v)
    return cases


@needs_native
def test_native_fsum_is_math_fsum_bit_for_bit() -> None:
    from inferguard._native._prom import FsumOverflow, fsum

    compared = 0
    for v in _cases():
        try:
            want = math.fsum(v)
        except OverflowError:
            with pytest.raises(FsumOverflow):  # raises where math.fsum raises
                fsum(np.array(v))
            continue
        got = fsum(np.array(v, np.float64))
        assert got is not None and bits(got) == bits(want), v
        compared += 1
    assert compared > 250


@needs_native
def test_native_fsum_refuses_non_finite_values() -> None:
    from inferguard._native._prom import fsum

    for bad in ([1.0, math.inf], [math.nan], [-math.inf, 1.0]):
        assert fsum(np.array(bad)) is None


@pytest.mark.parametrize("backend", ["python", pytest.param("native", marks=needs_native)])
def test_exact_sum_past_the_float_range(backend: str) -> None:
    big = np.array([1e308, 1e308])
    assert exact_sum(big, backend) == math.inf
    assert exact_sum(-big, backend) == -math.inf
    assert exact_sum(np.array([1e308, 1e308, -1e308]), backend) == 1e308
    assert exact_sum(np.array([1.5, 2.25]), backend) == 3.75


@pytest.mark.parametrize("backend", ["python", pytest.param("native", marks=needs_native)])
def test_family_totals_past_the_float_range_do_not_abort(backend: str) -> None:
    text = (b'# TYPE g gauge\ng{a="1"} 1e308\ng{a="2"} 1e308\ng{a="3"} -1e308\n'
            b'# TYPE h counter\nh{x="1"} 1.7e308\nh{x="2"} 1.7e308\n'
            b'# TYPE k gauge\nk 0.5\nk{x="1"} 0.25\n')
    facts = {f.name: f for f in parse_text(text, backend=backend).family_facts()}  # type: ignore[arg-type]
    assert facts["g"].total == 1e308
    assert facts["h"].total == math.inf
    assert facts["k"].total == 0.75
