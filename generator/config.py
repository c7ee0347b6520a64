"""The complete description of a dataset: protocol, output spec and sources. It fixes every byte."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from . import geometry
from .errors import UserError
from .protocol import OutputSpec, Protocol
from .sources import SourceImage

# Bumped whenever a change to the code changes the bytes produced for the same configuration, so
# that resuming never mixes samples of two algorithms.
ALGORITHM = "mono-gen/2"  # 2: colour jitter with torchvision's semantics (random order, clamps, HSV hue)


@dataclass(frozen=True)
class DatasetConfig:
    protocol: Protocol
    output: OutputSpec
    sources: tuple[SourceImage, ...]

    def to_dict(self) -> dict:
        """What determines the bytes, and nothing else: no paths, worker counts or shard ranges."""
        return {
            "algorithm": ALGORITHM,
            "protocol": self.protocol.to_dict(),
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


def check_sources_fit(protocol: Protocol, sources: tuple[SourceImage, ...]) -> None:
    """Refuse images so small that the smallest crop would be under one source pixel across."""
    for s in sources:
        width = s.width - 2 * geometry.BORDER_MARGIN
        height = s.height - 2 * geometry.BORDER_MARGIN
        if min(s.width, s.height) < 4 or width <= 0 or height <= 0:
            raise UserError(f"{s.name}: image is {s.width}×{s.height} px, too small to crop from (needs at least 4×4)")
        if protocol.uses("scale"):
            smallest = math.sqrt(protocol.beta * width * height * protocol.aspect)
        else:
            angle = math.radians(protocol.max_angle if protocol.uses("rotation") else 0.0)
            smallest = float(min(geometry.inscribed_rectangle(width, height, angle)))
        if smallest < 1.0:
            raise UserError(
                f"{s.name}: image is {s.width}×{s.height} px, too small to crop from: the smallest crop "
                f"(beta={protocol.beta}) would be {smallest:.2f} px across; use a larger image or a larger --beta"
            )
