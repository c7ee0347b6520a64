"""Seeds derived from a run's one seed: the one scheme the trainers, the probes and the data readers use.

Every random stream of a run (one epoch's data order, one rank's augmentation, a probe's initialisation) gets a
seed of its own, a pure function of the run's seed and what the stream is for, the same on every machine.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "seeded_generator"]


def derive_seed(*parts: int | str) -> int:
    """A 60-bit seed for one purpose, e.g. ``derive_seed(seed, "order", epoch)``: the first 15 hex digits of the
    SHA-256 of the parts joined by colons (valid for torch, numpy and faiss alike)."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def seeded_generator(*parts: int | str) -> torch.Generator:
    """A CPU torch.Generator seeded with ``derive_seed(*parts)``: draws that do not depend on the device."""
    return torch.Generator().manual_seed(derive_seed(*parts))
