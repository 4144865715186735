"""The 64-bit word hash of the key contract, vectorised (`_keys` holds the contract): the
fold step and MurmurHash3's fmix64 finaliser over uint64 arrays. Apart from `_keys` so the
frame scanner can hash word rows without importing the key extraction (numpy on first use)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
K_W1 = 0x87C37B91114253D5
K_W2 = 0x4CF5AD432745937F
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_W1 = np.uint64(K_W1)
_W2 = np.uint64(K_W2)
_S33 = np.uint64(33)
_S31 = np.uint64(31)


def fmix64(k: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """MurmurHash3's 64-bit finaliser, element-wise (returns a new array)."""
    k = k ^ (k >> _S33)
    k *= _C1
    k ^= k >> _S33
    k *= _C2
    k ^= k >> _S33
    return k


def fold(h: npt.NDArray[np.uint64], w: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """One word into the running hash: rotl(h ^ (w * K_W1), 31) * K_W2."""
    h = h ^ (w * _W1)
    h = (h << _S31) | (h >> _S33)
    h *= _W2
    return h
