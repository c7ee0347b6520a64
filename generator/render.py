"""Render samples: one affine warp from an image pyramid, one colour matrix, one JPEG encode.

Rotation, crop, flip and resize compose into a single affine map, sampled once with bilinear
interpolation from the pyramid level whose scale leaves a residual shrink between 1 and about 2
(levels are half an octave apart and made with area averaging, so large crops do not alias).
The colour jitter is a single 3×4 matrix. JPEG encoding then dominates the cost, as it should.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .colour import LUMA, jitter_matrices
from .geometry import output_to_source
from .params import Params

LEVEL_STEP = 2**0.5  # pyramid levels are half an octave apart
SMALLEST_LEVEL = 2  # stop when a side would fall below this many pixels

# RGB <-> BGR: the pyramid is RGBA, OpenCV encodes BGR; the colour matrix is permuted to match.
_REVERSE = np.eye(3)[::-1]
_LUMA_BGR = LUMA[::-1].copy()


def level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of each pyramid level; level k is the source shrunk by LEVEL_STEP**k."""
    sizes = [(width, height)]
    k = 1
    while True:
        w, h = round(width / LEVEL_STEP**k), round(height / LEVEL_STEP**k)
        if min(w, h) < SMALLEST_LEVEL:
            return sizes
        sizes.append((w, h))
        k += 1


def build_pyramid(rgb: np.ndarray) -> list[np.ndarray]:
    """RGBA levels (OpenCV's 4-channel warp is much faster than 3-channel), each area-averaged from level 0."""
    height, width = rgb.shape[:2]
    base = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    levels = [base]
    for w, h in level_sizes(width, height)[1:]:
        levels.append(cv2.resize(base, (w, h), interpolation=cv2.INTER_AREA))
    return levels


def choose_levels(params: Params, sizes: np.ndarray, size: int) -> np.ndarray:
    """The coarsest level whose pixels are no larger than an output pixel, along both crop axes.

    Sampling there only ever shrinks (by at most LEVEL_STEP times the crop's aspect ratio), which
    keeps every bilinear tap inside the crop's footprint and the result free of aliasing.
    """
    levels = np.zeros(len(params), np.int64)
    footprint = np.minimum(params.w, params.h) / size  # source pixels per output pixel
    for src in np.unique(params.source):
        w, h = sizes[src]
        table = level_sizes(int(w), int(h))
        scale = np.array([max(w / lw, h / lh) for lw, lh in table])
        pick = params.source == src
        levels[pick] = np.maximum(np.searchsorted(scale, footprint[pick], side="right") - 1, 0)
    return levels


@dataclass
class RenderPlan:
    """Everything per-sample that can be computed vectorised before touching pixels."""

    params: Params
    level: np.ndarray  # (n,)
    warp: np.ndarray  # (n, 2, 3) output pixel -> level pixel
    colour: np.ndarray | None  # (n, 3, 3) in BGR order, or None without jitter
    offset: np.ndarray | None  # (n,) multiplies the mean luma


def plan(params: Params, sizes: np.ndarray, size: int, jitter: bool) -> RenderPlan:
    level = choose_levels(params, sizes, size)
    to_source = output_to_source(params.cx, params.cy, params.w, params.h, np.deg2rad(params.angle), params.flip, size)
    warp = np.empty_like(to_source)
    for src in np.unique(params.source):
        w, h = sizes[src]
        table = np.array(level_sizes(int(w), int(h)), np.float64)
        pick = np.flatnonzero(params.source == src)
        kx = table[level[pick], 0] / w
        ky = table[level[pick], 1] / h
        warp[pick, 0] = to_source[pick, 0] * kx[:, None]
        warp[pick, 1] = to_source[pick, 1] * ky[:, None]
    warp[:, :, 2] -= 0.5  # continuous coordinates -> OpenCV's pixel-centre coordinates
    if not jitter:
        return RenderPlan(params, level, warp, None, None)
    m, k = jitter_matrices(params.brightness, params.contrast, params.saturation, params.hue)
    return RenderPlan(params, level, warp, _REVERSE @ m @ _REVERSE, k)


class Renderer:
    """Turns a RenderPlan row plus the source pyramid into JPEG bytes."""

    def __init__(self, size: int, quality: int):
        self.size = size
        self.encode_params = [
            cv2.IMWRITE_JPEG_QUALITY, quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
            cv2.IMWRITE_JPEG_OPTIMIZE, 0,
            cv2.IMWRITE_JPEG_PROGRESSIVE, 0,
        ]  # fmt: skip
        self._affine = np.empty((3, 4), np.float32)

    def pixels(self, level_image: np.ndarray, warp: np.ndarray, colour: np.ndarray | None, offset: float,
               border=cv2.BORDER_REPLICATE, border_value=0) -> np.ndarray:
        """The sample as a BGR uint8 array (S, S, 3)."""
        s = self.size
        patch = cv2.warpAffine(
            level_image, warp, (s, s),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=border_value,
        )  # fmt: skip
        bgr = cv2.cvtColor(patch, cv2.COLOR_RGBA2BGR)
        if colour is None:
            return bgr
        b, g, r, _ = cv2.mean(bgr)
        affine = self._affine
        affine[:, :3] = colour
        affine[:, 3] = offset * (_LUMA_BGR[0] * b + _LUMA_BGR[1] * g + _LUMA_BGR[2] * r)
        return cv2.transform(bgr, affine)

    def encode(self, bgr: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", bgr, self.encode_params)
        if not ok:  # pragma: no cover - OpenCV only fails here on impossible input
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def render_plan(self, pyramids, plan: RenderPlan):
        """Yield (k, BGR pixels) for every sample of a plan; `pyramids(j)` gives source j's pyramid."""
        for k, level, warp, colour, offset, source in self._rows(plan):
            yield k, self.pixels(pyramids(source)[level], warp, colour, offset)

    @staticmethod
    def _rows(plan: RenderPlan):
        n = len(plan.params)
        colours = list(plan.colour) if plan.colour is not None else [None] * n
        offsets = plan.offset.tolist() if plan.offset is not None else [0.0] * n
        return zip(range(n), plan.level.tolist(), list(plan.warp), colours, offsets, plan.params.source.tolist())
