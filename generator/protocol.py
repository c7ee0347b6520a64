"""The paper's augmentation protocol (Asano et al. 2020, section 3.1) as plain configuration.

Every number here is a default taken from the paper; `docs/protocol.md` gives the sources and the
choices the paper leaves open.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .layout import KEY_DIGITS

AUGMENTATIONS = ("scale", "rotation", "jitter", "flip")
MAX_SAMPLES = 10**KEY_DIGITS - 1  # sample keys are KEY_DIGITS-digit numbers
MAX_SHARDS = 100_000  # names have 6 digits; a manifest listing more would be hundreds of MB

PRESETS = {
    # ImageNet-like: as many samples as ImageNet-1k's training set, at the usual 256 px.
    "imagenet": {"samples": 1_281_167, "size": 256, "shard_size": 5_000},
    # CIFAR-like: as many samples as CIFAR-10's training set, at 32 px.
    "cifar": {"samples": 50_000, "size": 32, "shard_size": 1_000},
}


@dataclass(frozen=True)
class Protocol:
    """Ranges of the random augmentation; `augment` switches each family on or off (Table 1)."""

    augment: tuple[str, ...] = AUGMENTATIONS
    beta: float = 1e-3  # smallest crop area, as a fraction of the valid region
    aspect: float = 3 / 4  # crop aspect ratio w/h in [aspect, 1/aspect], log-uniform
    max_angle: float = 35.0  # rotation angle ~ U(-max_angle, max_angle) degrees
    brightness: float = 0.4  # factor ~ U(1 - brightness, 1 + brightness)
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1  # shift ~ U(-hue, hue) of the hue circle
    flip_prob: float = 0.5
    colour: str = "torchvision"  # jitter semantics: torchvision's ColorJitter, or the fast linear map (colour.py)

    def __post_init__(self):
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentation {sorted(unknown)}; choose from {', '.join(AUGMENTATIONS)}")
        if self.colour not in ("torchvision", "linear"):
            raise ValueError(f"colour must be torchvision or linear, got {self.colour!r}")
        # Canonical order, so that equal protocols compare and hash equal.
        object.__setattr__(self, "augment", tuple(a for a in AUGMENTATIONS if a in self.augment))
        # Each range is checked for its own value and named as the option that sets it (NaN fails every
        # comparison, so a NaN or infinite value is reported against its own range, not another's).
        ranges = {
            "beta": (0 < self.beta <= 1, "(0, 1]"),
            "aspect": (0 < self.aspect <= 1, "(0, 1]"),
            "max_angle": (0 <= self.max_angle <= 90, "[0, 90] degrees"),
            "brightness": (0 <= self.brightness < 1, "[0, 1)"),
            "contrast": (0 <= self.contrast < 1, "[0, 1)"),
            "saturation": (0 <= self.saturation < 1, "[0, 1)"),
            "hue": (0 <= self.hue <= 0.5, "[0, 0.5]"),
            "flip_prob": (0 <= self.flip_prob <= 1, "[0, 1]"),
        }
        for name, (ok, allowed) in ranges.items():
            value = getattr(self, name)
            if not (ok and math.isfinite(value)):
                raise ValueError(f"--{name.replace('_', '-')} must be in {allowed}, got {value}")

    def uses(self, name: str) -> bool:
        return name in self.augment

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = list(self.augment)
        return d


def parse_augment(text: str) -> tuple[str, ...]:
    """`all`, `none`, or a comma-separated subset such as `scale,flip`."""
    text = text.strip().lower()
    if text == "all":
        return AUGMENTATIONS
    if text == "none":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown or not names:
        raise ValueError(
            f"--augment takes all, none, or a comma-separated subset of {', '.join(AUGMENTATIONS)}; got {text!r}"
        )
    return names


@dataclass(frozen=True)
class OutputSpec:
    """What the dataset looks like on disk; together with Protocol and the sources it fixes every byte."""

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
