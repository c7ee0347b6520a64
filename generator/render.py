"""Render samples: one affine warp from an image pyramid, one colour matrix, one JPEG encode.

Rotation, crop, flip and resize compose into a single affine map, sampled once with bilinear
interpolation from the pyramid level whose scale leaves a residual shrink between 1 and 2 (levels
are half an octave apart and made with area averaging, so large crops do not alias).
Colour jitter follows torchvision's ColorJitter step by step, or is a single 3×4 matrix with the fast
linear semantics (colour.py). JPEG encoding then dominates the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .augmentation import Params
from .colour import LUMA, jitter_matrices, jitter_torchvision
from .geometry import output_to_source

LEVEL_STEP = 2**0.5  # pyramid levels are half an octave apart
SMALLEST_LEVEL = 2  # stop when a side would fall below this many pixels

# RGB <-> BGR: the pyramid is RGBA, OpenCV encodes BGR; the colour matrix is permuted to match.
_REVERSE = np.eye(3)[::-1]
_LUMA_BGR = LUMA[::-1].copy()


def axis_sizes(n: int) -> list[int]:
    """Lengths of one image axis at each pyramid level: n shrunk by LEVEL_STEP**k, rounded."""
    sizes = [n]
    while (m := round(n / LEVEL_STEP ** len(sizes))) >= SMALLEST_LEVEL:
        sizes.append(m)
    return sizes


class Pyramid:
    """Area-averaged versions of one source image, made on first use.

    Level (kx, ky) is the source shrunk by LEVEL_STEP**kx across and LEVEL_STEP**ky down. Nearly all
    samples use square levels (kx == ky); strongly anisotropic ones (a wide image squeezed into a
    square without the scale augmentation) get a level of their own so that they do not alias either.
    Levels are RGBA: OpenCV's 4-channel warp is much faster than its 3-channel one.
    """

    def __init__(self, rgb: np.ndarray):
        self.base = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
        self.widths = axis_sizes(rgb.shape[1])
        self.heights = axis_sizes(rgb.shape[0])
        self._levels = {(0, 0): self.base}

    def level(self, kx: int, ky: int) -> np.ndarray:
        image = self._levels.get((kx, ky))
        if image is None:
            size = (self.widths[kx], self.heights[ky])
            image = self._levels[kx, ky] = cv2.resize(self.base, size, interpolation=cv2.INTER_AREA)
        return image

    @property
    def nbytes(self) -> int:
        """Memory once all square levels exist (about 2× the base)."""
        return 2 * self.base.nbytes


def choose_levels(to_source: np.ndarray, source: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the coarsest level whose pixels are no larger than an output pixel's footprint.

    The footprint along each source axis is the length of the output-to-source Jacobian's row.
    Sampling at that level only ever shrinks (by less than 2 along either axis), which keeps every
    bilinear tap inside the crop and the result free of aliasing.
    """
    foot_x = np.hypot(to_source[:, 0, 0], to_source[:, 0, 1])  # source pixels per output pixel
    foot_y = np.hypot(to_source[:, 1, 0], to_source[:, 1, 1])
    kx = np.zeros(len(source), np.int64)
    ky = np.zeros(len(source), np.int64)
    for src in np.unique(source):
        w, h = sizes[src]
        pick = source == src
        scale_x = w / np.array(axis_sizes(int(w)), np.float64)
        scale_y = h / np.array(axis_sizes(int(h)), np.float64)
        kx[pick] = np.maximum(np.searchsorted(scale_x, foot_x[pick], side="right") - 1, 0)
        ky[pick] = np.maximum(np.searchsorted(scale_y, foot_y[pick], side="right") - 1, 0)
    square = np.abs(kx - ky) <= 1  # close enough to isotropic: share the square level
    kx[square] = ky[square] = np.minimum(kx, ky)[square]
    return kx, ky


@dataclass
class RenderPlan:
    """Everything per-sample that can be computed vectorised before touching pixels."""

    params: Params
    level_x: np.ndarray  # (n,) pyramid level across
    level_y: np.ndarray  # (n,) pyramid level down
    warp: np.ndarray  # (n, 2, 3) output pixel -> level pixel
    colour: np.ndarray | None  # linear semantics: (n, 3, 3) in BGR order; None otherwise
    offset: np.ndarray | None  # linear semantics: (n,) multiplies the mean luma
    torchvision: bool = False  # jitter step by step from params (brightness ... hue, order)


def plan(params: Params, sizes: np.ndarray, size: int, jitter: bool, colour: str = "torchvision") -> RenderPlan:
    to_source = output_to_source(params.cx, params.cy, params.w, params.h, np.deg2rad(params.angle), params.flip, size)
    kx, ky = choose_levels(to_source, params.source, sizes)
    warp = np.empty_like(to_source)
    for src in np.unique(params.source):
        w, h = sizes[src]
        pick = np.flatnonzero(params.source == src)
        widths = np.array(axis_sizes(int(w)), np.float64)
        heights = np.array(axis_sizes(int(h)), np.float64)
        warp[pick, 0] = to_source[pick, 0] * (widths[kx[pick]] / w)[:, None]
        warp[pick, 1] = to_source[pick, 1] * (heights[ky[pick]] / h)[:, None]
    warp[:, :, 2] -= 0.5  # continuous coordinates -> OpenCV's pixel-centre coordinates
    if not jitter:
        return RenderPlan(params, kx, ky, warp, None, None)
    if colour == "torchvision":
        return RenderPlan(params, kx, ky, warp, None, None, torchvision=True)
    m, k = jitter_matrices(params.brightness, params.contrast, params.saturation, params.hue)
    return RenderPlan(params, kx, ky, warp, _REVERSE @ m @ _REVERSE, k)


class Renderer:
    """Turns a RenderPlan row plus the source pyramid into JPEG bytes."""

    def __init__(self, size: int, quality: int):
        self.size = size
        self.encode_params = [
            cv2.IMWRITE_JPEG_QUALITY,
            quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
            cv2.IMWRITE_JPEG_OPTIMIZE,
            0,
            cv2.IMWRITE_JPEG_PROGRESSIVE,
            0,
        ]
        self._affine = np.empty((3, 4), np.float32)

    def pixels(
        self,
        level_image: np.ndarray,
        warp: np.ndarray,
        colour: np.ndarray | None,
        offset: float,
        border=cv2.BORDER_REPLICATE,
        border_value=0,
    ) -> np.ndarray:
        """The sample as a BGR uint8 array (S, S, 3)."""
        s = self.size
        patch = cv2.warpAffine(
            level_image,
            warp,
            (s, s),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=border,
            borderValue=border_value,
        )
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

    def render_plan(self, pyramids, plan: RenderPlan, border=cv2.BORDER_REPLICATE, border_value=0):
        """Yield (k, BGR pixels) for every sample of a plan; `pyramids(j)` gives source j's Pyramid."""
        p = plan.params
        for k, kx, ky, warp, colour, offset, source in self._rows(plan):
            bgr = self.pixels(pyramids(source).level(kx, ky), warp, colour, offset, border, border_value)
            if plan.torchvision:
                bgr = jitter_torchvision(
                    bgr,
                    float(p.brightness[k]),
                    float(p.contrast[k]),
                    float(p.saturation[k]),
                    float(p.hue[k]),
                    str(p.order[k]),
                )
            yield k, bgr

    @staticmethod
    def _rows(plan: RenderPlan):
        n = len(plan.params)
        colours = list(plan.colour) if plan.colour is not None else [None] * n
        offsets = plan.offset.tolist() if plan.offset is not None else [0.0] * n
        return zip(
            range(n),
            plan.level_x.tolist(),
            plan.level_y.tolist(),
            list(plan.warp),
            colours,
            offsets,
            plan.params.source.tolist(),
        )
