"""The paper's augmentation (Asano, Rupprecht & Vedaldi, ICLR 2020, section 3.1): its ranges and the draws.

`Augmentation` holds the ranges, each default taken from the paper (docs/protocol.md gives the sources and the
choices the paper leaves open), and which families are on (`--augment`, the paper's Table 1). `sample_params`
draws every sample's parameters from them: rotation angle, then a crop that fits inside the turned image, a
flip and the colour jitter. The draws are counter-based: sample i's parameters depend only on (ranges, seed, i,
source size), see `rng.uniform`.

Where they are applied: render.py turns a block of parameters into pixels, with one affine warp for rotation,
crop, flip and resize (geometry.py) and the colour jitter of colour.py; shardwriter.py encodes the JPEGs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import geometry
from .colour import OPERATIONS
from .rng import uniform

AUGMENTATIONS = ("scale", "rotation", "jitter", "flip")


@dataclass(frozen=True)
class Augmentation:
    """The ranges of the random augmentation; `augment` switches each family on or off (Table 1)."""

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
        # Canonical order, so that equal augmentations compare and hash equal.
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


# The per-sample draws.

CROP_ATTEMPTS = 64

# Streams of the counter-based generator; each random quantity has its own.
_ANGLE, _FLIP, _BRIGHTNESS, _CONTRAST, _SATURATION, _HUE, _POS_X, _POS_Y = range(8)
_AREA0, _RATIO0 = 100, 100 + CROP_ATTEMPTS
_ORDER0 = 300  # four streams: the colour operations' random order


@dataclass
class Params:
    """Struct of arrays: one entry per sample. Crop geometry is in source pixel coordinates."""

    index: np.ndarray  # global sample index
    source: np.ndarray  # source image index
    angle: np.ndarray  # degrees, positive = counter-clockwise
    cx: np.ndarray  # crop centre
    cy: np.ndarray
    w: np.ndarray  # crop size along the crop's own (turned) axes
    h: np.ndarray
    area: np.ndarray  # w·h over the usable source area
    flip: np.ndarray  # bool, left-right
    brightness: np.ndarray
    contrast: np.ndarray
    saturation: np.ndarray
    hue: np.ndarray  # fraction of the hue circle
    order: np.ndarray  # str, the colour operations in the order applied (letters of colour.OPERATIONS)

    def __len__(self):
        return len(self.index)

    def row(self, k: int) -> dict:
        return {name: getattr(self, name)[k].item() for name in self.__dataclass_fields__}


def _symmetric(seed, index, stream, half_width, enabled, centre=0.0):
    if not enabled or half_width == 0:
        return np.full(index.shape, centre, np.float64)
    return centre + half_width * (2 * uniform(seed, index, stream) - 1)


def sample_params(augmentation: Augmentation, seed: int, index: np.ndarray, sizes: np.ndarray) -> Params:
    """Parameters for samples `index`; `sizes` is (num_sources, 2) of source (width, height).

    Samples are spread evenly over the sources: sample i comes from source i mod N.
    """
    index = np.asarray(index, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.float64)
    source = index % len(sizes)
    margin = geometry.BORDER_MARGIN
    width = sizes[source, 0] - 2 * margin
    height = sizes[source, 1] - 2 * margin

    angle = _symmetric(seed, index, _ANGLE, augmentation.max_angle, augmentation.uses("rotation"))
    theta = np.deg2rad(angle)

    if augmentation.uses("scale"):
        w, h = _random_crop_size(augmentation, seed, index, width, height, theta)
    else:
        w, h = geometry.inscribed_rectangle(width, height, theta)

    # Uniform over the valid placements: the turned crop's bounding box must lie inside the image.
    ex, ey = geometry.bounding_half_extents(w, h, theta)
    if augmentation.uses("scale"):
        ux, uy = uniform(seed, index, _POS_X), uniform(seed, index, _POS_Y)
    else:
        ux = uy = np.full(index.shape, 0.5)
    cx = margin + ex + ux * np.maximum(width - 2 * ex, 0.0)
    cy = margin + ey + uy * np.maximum(height - 2 * ey, 0.0)

    if augmentation.uses("flip"):
        flip = uniform(seed, index, _FLIP) < augmentation.flip_prob
    else:
        flip = np.zeros(index.shape, bool)

    jitter = augmentation.uses("jitter")
    return Params(
        order=_colour_order(augmentation, seed, index, jitter),
        index=index,
        source=source,
        angle=angle,
        cx=cx,
        cy=cy,
        w=w,
        h=h,
        area=w * h / (width * height),
        flip=flip,
        brightness=_symmetric(seed, index, _BRIGHTNESS, augmentation.brightness, jitter, 1.0),
        contrast=_symmetric(seed, index, _CONTRAST, augmentation.contrast, jitter, 1.0),
        saturation=_symmetric(seed, index, _SATURATION, augmentation.saturation, jitter, 1.0),
        hue=_symmetric(seed, index, _HUE, augmentation.hue, jitter),
    )


def _colour_order(augmentation: Augmentation, seed: int, index: np.ndarray, jitter: bool) -> np.ndarray:
    """A uniformly random permutation of the four colour operations per sample, as torchvision's ColorJitter
    draws one (ranking four uniform draws); the fixed order b, c, s, h for the linear semantics."""
    if not jitter or augmentation.colour == "linear":
        return np.full(index.shape, OPERATIONS)
    keys = np.stack([uniform(seed, index, _ORDER0 + k) for k in range(len(OPERATIONS))], axis=1)
    letters = np.array(list(OPERATIONS))[np.argsort(keys, axis=1, kind="stable")]
    return np.array(["".join(row) for row in letters])


def _random_crop_size(augmentation, seed, index, width, height, theta):
    """Area fraction ~ U(beta, 1), log-uniform aspect in [gamma, 1/gamma], redrawn until the turned crop fits.

    The angle is kept (it is drawn first, as the image is rotated before cropping), so the largest
    areas are only reachable at small angles. After CROP_ATTEMPTS misses, which needs a source far
    from square and a large angle, the largest crop that fits with the aspect clamped is taken.
    """
    n = len(index)
    w_pick = np.full(n, np.nan)
    h_pick = np.full(n, np.nan)
    s, c = np.abs(np.sin(theta)), np.abs(np.cos(theta))
    lo = np.log(augmentation.aspect)
    pending = np.arange(n)
    for k in range(CROP_ATTEMPTS):  # most samples fit at the first or second attempt
        idx = index[pending]
        area = (
            (augmentation.beta + (1 - augmentation.beta) * uniform(seed, idx, _AREA0 + k))
            * width[pending]
            * height[pending]
        )
        ratio = np.exp(lo + (-2 * lo) * uniform(seed, idx, _RATIO0 + k))
        w, h = np.sqrt(area * ratio), np.sqrt(area / ratio)
        sp, cp = s[pending], c[pending]
        fits = (w * cp + h * sp <= width[pending]) & (w * sp + h * cp <= height[pending])
        w_pick[pending[fits]] = w[fits]
        h_pick[pending[fits]] = h[fits]
        pending = pending[~fits]
        if not len(pending):
            break

    missed = np.isnan(w_pick)
    if missed.any():
        fw, fh = geometry.inscribed_rectangle(width[missed], height[missed], theta[missed])
        lo_r, hi_r = augmentation.aspect, 1 / augmentation.aspect
        fw = np.where(fw / fh > hi_r, fh * hi_r, fw)
        fh = np.where(fw / fh < lo_r, fw / lo_r, fh)
        w_pick[missed], h_pick[missed] = fw, fh
    return w_pick, h_pick
