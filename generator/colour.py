"""Colour jitter, in two semantics (``--colour``).

``torchvision`` (the default, what the paper used): torchvision's ``ColorJitter``. Brightness, contrast,
saturation and hue are applied one after the other **in a random order** drawn per sample, each result
clamped to the valid range before the next; hue is a shift of the H channel in HSV. Here brightness and
contrast are scalings (contrast blends with the mean grey of the image as it is at that step), saturation one
3×3 matrix, hue a float HSV round trip; all in float32, rounded to 8 bits once, which agrees with
torchvision's float pipeline to within 1/255 (tests/test_gen_colour.py).

``linear`` (fast): the four operations in the fixed order brightness, contrast, saturation, hue, composed
into one affine map y = M·x + t with no clamping in between, hue as a rotation about the grey axis of RGB
space. It differs from torchvision's hue by about as much as the hue effect itself.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOUR_MODES = ("torchvision", "linear")
OPERATIONS = "bcsh"
"""Brightness, contrast, saturation, hue: a sample's ``order`` is a permutation of these letters."""

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale (0.2989 in its tensor code, 0.299 in PIL's).
LUMA = np.array([0.299, 0.587, 0.114])
TORCHVISION_LUMA_BGR = np.array([0.114, 0.587, 0.2989], np.float32)


def hue_rotation(hue):
    """Rotation about the grey axis (1, 1, 1) by hue·360 degrees: (n, 3, 3). Greys stay unchanged."""
    theta = 2 * np.pi * np.asarray(hue, np.float64)
    k = np.full(3, 1 / np.sqrt(3))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    outer = np.outer(k, k)
    c, s = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    return c * np.eye(3) + s * cross + (1 - c) * outer


def saturation_matrix(saturation, luma=LUMA):
    """Blend with the luma grey: s·x + (1 - s)·luma(x)·(1, 1, 1): (n, 3, 3)."""
    s = np.asarray(saturation, np.float64)[..., None, None]
    grey = np.outer(np.ones(3), luma)
    return s * np.eye(3) + (1 - s) * grey


def jitter_matrices(brightness, contrast, saturation, hue):
    """The linear semantics: M (n, 3, 3) and the offset coefficient k (n,) such that y = M·x + k·mean_luma(x)."""
    b = np.asarray(brightness, np.float64)
    c = np.asarray(contrast, np.float64)
    scale = (b * c)[..., None, None] * np.eye(3)
    m = hue_rotation(hue) @ saturation_matrix(saturation) @ scale
    return m, (1 - c) * b


def jitter_torchvision(
    bgr: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float, order: str
) -> np.ndarray:
    """torchvision's ColorJitter on an 8-bit BGR image, the operations in ``order`` (letters of OPERATIONS).

    Computed in float32 and rounded to 8 bits once at the end: rounding between steps would let later steps
    (contrast or saturation above 1, hue on weakly coloured pixels) amplify it to 5/255. Brightness, contrast
    and saturation are affine maps; a factor of at most 1 keeps an image inside [0, 255] (a convex blend), so
    its clamp is a no-op and the map waits to be fused with the next one. Only a factor above 1 or the hue
    step makes the pending map run, so most samples need a few passes over the pixels, not one per step.
    """
    x, pending = bgr, _Affine()  # the image is `pending` applied to x
    for op in order:
        if op == "h":
            if hue != 0.0:
                x, pending = _shift_hue(pending.to_float(x), hue), _Affine()
            continue
        if op == "b":
            factor = brightness
            pending.scale(brightness, 0.0)
        elif op == "c":
            factor = contrast
            pending.scale(contrast, (1.0 - contrast) * pending.mean_grey(x))
        else:
            factor = saturation
            pending.saturate(saturation)
        if factor > 1.0:  # the result can leave [0, 255]: apply now and clamp, as torchvision does
            x, pending = pending.to_float(x), _Affine()
            cv2.threshold(x, 255.0, 255.0, cv2.THRESH_TRUNC, dst=x)
            if op != "b":  # brightness cannot go below 0
                cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO, dst=x)
    return pending.to_uint8(x)


_EYE = np.eye(3, 4)
_GREY = np.outer(np.ones(3), TORCHVISION_LUMA_BGR)


class _Affine:
    """A colour map still to be applied: k·x + t while it is a scaling (Python floats, cheap to compose), a
    3x4 matrix once saturation mixes the channels."""

    def __init__(self) -> None:
        self.k, self.t, self.matrix = 1.0, 0.0, None
        self.identity = True

    def scale(self, k: float, t: float) -> None:
        """Follow the pending map by y -> k·y + t."""
        self.identity = False
        if self.matrix is None:
            self.k, self.t = k * self.k, k * self.t + t
        else:
            self.matrix = k * self.matrix
            self.matrix[:, 3] += t

    def saturate(self, s: float) -> None:
        """Follow the pending map by y -> s·y + (1 - s)·grey(y)."""
        if self.matrix is None:
            inner = self.k * _EYE
            inner[:, 3] = self.t
        else:
            inner = self.matrix
        mix = s * _EYE[:, :3] + (1.0 - s) * _GREY
        self.matrix = mix @ inner
        self.identity = False

    def mean_grey(self, x: np.ndarray) -> float:
        """Mean luma of the image as it is now: the map applied to the channel means (exact, since nothing
        is clamped while a map is pending)."""
        b, g, r, _ = cv2.mean(x)
        if self.matrix is None:
            return float(
                self.k * (TORCHVISION_LUMA_BGR[0] * b + TORCHVISION_LUMA_BGR[1] * g + TORCHVISION_LUMA_BGR[2] * r)
                + self.t * TORCHVISION_LUMA_BGR.sum()
            )
        return float(TORCHVISION_LUMA_BGR @ (self.matrix[:, :3] @ (b, g, r) + self.matrix[:, 3]))

    def to_float(self, x: np.ndarray) -> np.ndarray:
        """The map applied, as float32 (one pass for a scaling of 8 bits, else at most two)."""
        if self.identity:
            return x if x.dtype == np.float32 else x.astype(np.float32)
        if self.matrix is None:
            return cv2.addWeighted(x, self.k, x, 0.0, self.t, dtype=cv2.CV_32F)
        return cv2.transform(x if x.dtype == np.float32 else x.astype(np.float32), self.matrix.astype(np.float32))

    def to_uint8(self, x: np.ndarray) -> np.ndarray:
        """The map applied, rounded to nearest and saturated to 8 bits."""
        if self.identity:
            return x if x.dtype == np.uint8 else cv2.convertScaleAbs(x)  # x >= 0: abs does nothing
        if self.matrix is None:
            return cv2.addWeighted(x, self.k, x, 0.0, self.t, dtype=cv2.CV_8U)
        if x.dtype == np.uint8:  # no float step happened: one rounding, in one pass
            return cv2.transform(x, self.matrix.astype(np.float32))
        return cv2.convertScaleAbs(cv2.transform(x, self.matrix.astype(np.float32)))


def _shift_hue(x: np.ndarray, hue: float) -> np.ndarray:
    """Shift H by ``hue`` of the circle in float HSV. OpenCV's float HSV -> BGR wraps hues in [0, 720) but
    not negative ones (its vector path returns garbage for them), so the shift is taken modulo 360 first."""
    hsv = cv2.cvtColor(x, cv2.COLOR_BGR2HSV)
    hsv = cv2.add(hsv, ((hue * 360.0) % 360.0, 0.0, 0.0, 0.0))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
