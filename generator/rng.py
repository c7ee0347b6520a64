"""Counter-based random numbers: every draw is a pure function of (seed, sample index, stream).

Sample i must not depend on which worker or shard range produces it, nor on numpy's generator
implementation (whose streams may change between releases). A SplitMix64-style hash of the counter
gives that: vectorised, stateless and reproducible on any machine.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection on uint64 with full avalanche."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MUL1
    x = x ^ (x >> np.uint64(27))
    x = x * _MUL2
    return x ^ (x >> np.uint64(31))


def uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in [0, 1) for each sample index, independent across seeds and streams."""
    index = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _mix(np.full(index.shape, seed, dtype=np.uint64) * _GOLDEN + np.uint64(stream) * _STREAM)
        bits = _mix(key ^ _mix(index * _GOLDEN + np.uint64(1)))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
