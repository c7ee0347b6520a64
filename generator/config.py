"""The complete description of a dataset: augmentation, output spec and sources. It fixes every byte."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from . import geometry
from .augmentation import Augmentation
from .dataset_dir import KEY_DIGITS
from .errors import UserError
from .sources import SourceImage

# Bumped whenever a change to the code changes the bytes produced for the same configuration, so
# that resuming never mixes samples of two algorithms.
ALGORITHM = "mono-gen/2"  # 2: colour jitter with torchvision's semantics (random order, clamps, HSV hue)

MAX_SAMPLES = 10**KEY_DIGITS - 1  # sample keys are KEY_DIGITS-digit numbers
MAX_SHARDS = 100_000  # names have 6 digits; a manifest listing more would be hundreds of MB

PRESETS = {
    # ImageNet-like: as many samples as ImageNet-1k's training set, at the usual 256 px.
    "imagenet": {"samples": 1_281_167, "size": 256, "shard_size": 5_000},
    # CIFAR-like: as many samples as CIFAR-10's training set, at 32 px.
    "cifar": {"samples": 50_000, "size": 32, "shard_size": 1_000},
}


@dataclass(frozen=True)
class OutputSpec:
    """What the dataset looks like on disk; with the augmentation and the sources it fixes every byte."""

    samples: int
    size: int
    seed: int = 0
    quality: int = 90
    shard_size: int = 1_000

    def __post_init__(self):
        if self.samples <= 0:
            raise ValueError(f"the number of samples must be positive, got {self.samples}")
        if self.size <= 0:
            raise ValueError(f"the image size must be positive, got {self.size}")
        if self.size > 8192:
            raise ValueError(f"the image size must be at most 8192, got {self.size}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"the seed must be in [0, 2^63), got {self.seed}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {self.quality}")
        if self.shard_size <= 0:
            raise ValueError(f"the shard size must be positive, got {self.shard_size}")
        # Checked before anything is written: a size beyond these would spend hours listing shards that
        # cannot be named, and leave run state behind.
        if self.samples > MAX_SAMPLES:
            raise ValueError(
                f"--samples must be at most {MAX_SAMPLES:,} (sample keys have {KEY_DIGITS} digits), "
                f"got {self.samples:,}"
            )
        if self.num_shards > MAX_SHARDS:
            raise ValueError(
                f"{self.samples:,} samples in shards of {self.shard_size:,} make {self.num_shards:,} "
                f"shards; a manifest holds at most {MAX_SHARDS:,}: raise --shard-size"
            )

    @property
    def num_shards(self) -> int:
        return -(-self.samples // self.shard_size)

    def shard_range(self, shard: int) -> range:
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.samples))


@dataclass(frozen=True)
class DatasetConfig:
    augmentation: Augmentation
    output: OutputSpec
    sources: tuple[SourceImage, ...]

    def to_dict(self) -> dict:
        """What determines the bytes, and nothing else: no paths, worker counts or shard ranges."""
        return {
            "algorithm": ALGORITHM,
            "protocol": self.augmentation.to_dict(),  # the manifest's name for it
            "output": {
                "samples": self.output.samples,
                "size": self.output.size,
                "seed": self.output.seed,
                "quality": self.output.quality,
                "shard_size": self.output.shard_size,
            },
            "sources": [
                {"name": s.name, "sha256": s.sha256, "width": s.width, "height": s.height} for s in self.sources
            ],
        }

    def sha256(self) -> str:
        return config_sha256(self.to_dict())

    @property
    def sizes(self) -> np.ndarray:
        return np.array([[s.width, s.height] for s in self.sources], np.float64)

    def samples_of_source(self, j: int) -> int:
        n, d = len(self.sources), self.output.samples
        return d // n + (1 if j < d % n else 0)


def config_sha256(config: dict) -> str:
    """The digest of a configuration as `to_dict` gives it (and the manifest stores it): canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_sources_fit(augmentation: Augmentation, sources: tuple[SourceImage, ...]) -> None:
    """Refuse images so small that the smallest crop would be under one source pixel across."""
    for s in sources:
        width = s.width - 2 * geometry.BORDER_MARGIN
        height = s.height - 2 * geometry.BORDER_MARGIN
        if min(s.width, s.height) < 4 or width <= 0 or height <= 0:
            raise UserError(f"{s.name}: image is {s.width}×{s.height} px, too small to crop from (needs at least 4×4)")
        if augmentation.uses("scale"):
            smallest = math.sqrt(augmentation.beta * width * height * augmentation.aspect)
        else:
            angle = math.radians(augmentation.max_angle if augmentation.uses("rotation") else 0.0)
            smallest = float(min(geometry.inscribed_rectangle(width, height, angle)))
        if smallest < 1.0:
            raise UserError(
                f"{s.name}: image is {s.width}×{s.height} px, too small to crop from: the smallest crop "
                f"(beta={augmentation.beta}) would be {smallest:.2f} px across; use a larger image or a larger --beta"
            )
