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
    # ImageNet-like: as many samples as ImageNet-1k's training set, at the usual 256 px; shards of about 5,000
    # samples (default_shard_size: 256 shards of 5,005).
    "imagenet": {"samples": 1_281_167, "size": 256, "shard_size": 5_000},
    # CIFAR-like: as many samples as CIFAR-10's training set, at 32 px; shards of about 1,000 (64 of 782).
    "cifar": {"samples": 50_000, "size": 32, "shard_size": 1_000},
}
SHARD_MULTIPLE = 64  # default shard counts are multiples of it: up to 64 ranks × workers split them evenly


def default_shard_size(samples: int, target: int) -> int:
    """Samples per shard when --shard-size is not given: near `target`, such that the dataset has a multiple of
    64 shards, which 1, 2, 4, … 64 readers (DDP ranks × DataLoader workers, each reading whole shards) split
    evenly. The count is the multiple of 64 nearest d/target that shards of ⌈d/count⌉ samples make exactly (any
    count k is possible once d ≥ k(k − 1)); when none is (a few thousand samples or fewer), `target`."""
    if samples > MAX_SAMPLES:
        return target  # OutputSpec refuses it in one line; a search over its counts would exhaust memory
    best = max(1, round(samples / (SHARD_MULTIPLE * target)))
    for m in sorted(range(1, 2 * best + 1), key=lambda m: (abs(m - best), m)):
        size = -(-samples // (m * SHARD_MULTIPLE))
        if -(-samples // size) == m * SHARD_MULTIPLE:
            return size
    return target


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

    @classmethod
    def from_dict(cls, config: dict, sources: tuple[SourceImage, ...] | None = None) -> DatasetConfig:
        """The configuration a manifest's `config` describes (the inverse of `to_dict`). `sources` are the images
        found for it; without them, stand-ins that know only their names and sizes (enough to draw the
        parameters, not to render pixels). ValueError if this version of mono-gen makes other bytes for it."""
        if config["algorithm"] != ALGORITHM:
            raise ValueError(f"it was made by the algorithm {config['algorithm']}; this mono-gen makes {ALGORITHM}")
        protocol = dict(config["protocol"])
        protocol["augment"] = tuple(protocol["augment"])
        if sources is None:
            sources = tuple(
                SourceImage(s["name"], "", s["sha256"], s["width"], s["height"], "manifest") for s in config["sources"]
            )
        try:
            result = cls(Augmentation(**protocol), OutputSpec(**config["output"]), tuple(sources))
        except TypeError as exc:  # a field this version does not know
            raise ValueError(f"its configuration is not one this mono-gen knows ({exc})") from None
        if result.sha256() != config_sha256(config):
            raise ValueError("its configuration does not round-trip through this mono-gen")
        return result

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
