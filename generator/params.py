"""Draw the augmentation parameters of a block of samples, vectorised and counter-based.

Sample i's parameters depend only on (protocol, seed, i, source size): see `rng.uniform`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import geometry
from .colour import OPERATIONS
from .protocol import Protocol
from .rng import uniform

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


def sample_params(protocol: Protocol, seed: int, index: np.ndarray, sizes: np.ndarray) -> Params:
    """Parameters for samples `index`; `sizes` is (num_sources, 2) of source (width, height).

    Samples are spread evenly over the sources: sample i comes from source i mod N.
    """
    index = np.asarray(index, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.float64)
    source = index % len(sizes)
    margin = geometry.BORDER_MARGIN
    width = sizes[source, 0] - 2 * margin
    height = sizes[source, 1] - 2 * margin

    angle = _symmetric(seed, index, _ANGLE, protocol.max_angle, protocol.uses("rotation"))
    theta = np.deg2rad(angle)

    if protocol.uses("scale"):
        w, h = _random_crop_size(protocol, seed, index, width, height, theta)
    else:
        w, h = geometry.inscribed_rectangle(width, height, theta)

    # Uniform over the valid placements: the turned crop's bounding box must lie inside the image.
    ex, ey = geometry.bounding_half_extents(w, h, theta)
    if protocol.uses("scale"):
        ux, uy = uniform(seed, index, _POS_X), uniform(seed, index, _POS_Y)
    else:
        ux = uy = np.full(index.shape, 0.5)
    cx = margin + ex + ux * np.maximum(width - 2 * ex, 0.0)
    cy = margin + ey + uy * np.maximum(height - 2 * ey, 0.0)

    if protocol.uses("flip"):
        flip = uniform(seed, index, _FLIP) < protocol.flip_prob
    else:
        flip = np.zeros(index.shape, bool)

    jitter = protocol.uses("jitter")
    return Params(
        order=_colour_order(protocol, seed, index, jitter),
        index=index,
        source=source,
        angle=angle,
        cx=cx,
        cy=cy,
        w=w,
        h=h,
        area=w * h / (width * height),
        flip=flip,
        brightness=_symmetric(seed, index, _BRIGHTNESS, protocol.brightness, jitter, 1.0),
        contrast=_symmetric(seed, index, _CONTRAST, protocol.contrast, jitter, 1.0),
        saturation=_symmetric(seed, index, _SATURATION, protocol.saturation, jitter, 1.0),
        hue=_symmetric(seed, index, _HUE, protocol.hue, jitter),
    )


def _colour_order(protocol: Protocol, seed: int, index: np.ndarray, jitter: bool) -> np.ndarray:
    """A uniformly random permutation of the four colour operations per sample, as torchvision's ColorJitter
    draws one (ranking four uniform draws); the fixed order b, c, s, h for the linear semantics."""
    if not jitter or protocol.colour == "linear":
        return np.full(index.shape, OPERATIONS)
    keys = np.stack([uniform(seed, index, _ORDER0 + k) for k in range(len(OPERATIONS))], axis=1)
    letters = np.array(list(OPERATIONS))[np.argsort(keys, axis=1, kind="stable")]
    return np.array(["".join(row) for row in letters])


def _random_crop_size(protocol, seed, index, width, height, theta):
    """Area fraction ~ U(beta, 1), log-uniform aspect in [gamma, 1/gamma], redrawn until the turned crop fits.

    The angle is kept (it is drawn first, as the image is rotated before cropping), so the largest
    areas are only reachable at small angles. After CROP_ATTEMPTS misses, which needs a source far
    from square and a large angle, the largest crop that fits with the aspect clamped is taken.
    """
    n = len(index)
    w_pick = np.full(n, np.nan)
    h_pick = np.full(n, np.nan)
    s, c = np.abs(np.sin(theta)), np.abs(np.cos(theta))
    lo = np.log(protocol.aspect)
    pending = np.arange(n)
    for k in range(CROP_ATTEMPTS):  # most samples fit at the first or second attempt
        idx = index[pending]
        area = (protocol.beta + (1 - protocol.beta) * uniform(seed, idx, _AREA0 + k)) * width[pending] * height[pending]
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
        lo_r, hi_r = protocol.aspect, 1 / protocol.aspect
        fw = np.where(fw / fh > hi_r, fh * hi_r, fw)
        fh = np.where(fw / fh < lo_r, fw / lo_r, fh)
        w_pick[missed], h_pick[missed] = fw, fh
    return w_pick, h_pick
