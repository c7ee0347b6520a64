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


def jitter_torchvision(bgr: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float,
                       order: str) -> np.ndarray:
    """torchvision's ColorJitter on an 8-bit BGR image, the operations in ``order`` (letters of OPERATIONS).

    Computed in float32 and rounded to 8 bits once at the end: rounding between steps would let later steps
    (contrast or saturation above 1, hue on weakly coloured pixels) amplify it to 5/255. Brightness, contrast
    and saturation are affine maps; a factor of at most 1 keeps an image inside [0, 255] (a convex blend), so
    its clamp is a no-op and the map waits to be fused with the next one. Only a factor above 1 or the hue
    step makes the pending map run, so most samples need a few passes over the pixels, not one per step.
    """
    x, pending = bgr, None  # the image is x with the affine map `pending` (3x4, BGR) still to apply
    for op in order:
        if op == "h":
            if hue != 0.0:
                x, pending = _shift_hue(_to_float(x, pending), hue), None
            continue
        if op == "b":
            step = _scalar_affine(brightness, 0.0)
        elif op == "c":
            step = _scalar_affine(contrast, (1.0 - contrast) * _mean_grey(x, pending))
        else:
            step = _saturation_affine(saturation)
        pending = step if pending is None else _compose(step, pending)
        factor = {"b": brightness, "c": contrast, "s": saturation}[op]
        if factor > 1.0:  # the result can leave [0, 255]: apply now and clamp, as torchvision does
            x, pending = _to_float(x, pending), None
            cv2.threshold(x, 255.0, 255.0, cv2.THRESH_TRUNC, dst=x)
            if op != "b":  # brightness cannot go below 0
                cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO, dst=x)
    return _to_uint8(x, pending)


def _scalar_affine(scale: float, offset: float) -> np.ndarray:
    return np.array([[scale, 0, 0, offset], [0, scale, 0, offset], [0, 0, scale, offset]], np.float64)


def _saturation_affine(saturation: float) -> np.ndarray:
    """s·x + (1 - s)·grey(x) in BGR, grey with torchvision's luma weights."""
    m = np.zeros((3, 4))
    m[:, :3] = (1.0 - saturation) * TORCHVISION_LUMA_BGR
    m[[0, 1, 2], [0, 1, 2]] += saturation
    return m


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 3x4 affine map x -> outer(inner(x))."""
    out = outer[:, :3] @ inner
    out[:, 3] += outer[:, 3]
    return out


def _is_scalar(affine: np.ndarray) -> bool:
    return affine[0, 0] == affine[1, 1] == affine[2, 2] and not np.any(affine[:, :3] - np.diag(np.diag(affine[:, :3])))


def _mean_grey(x: np.ndarray, pending: np.ndarray | None) -> float:
    """Mean luma of the image as it is at this step: the pending map applied to the channel means (exact,
    since nothing is clamped while a map is pending)."""
    mean = np.array(cv2.mean(x)[:3])
    if pending is not None:
        mean = pending[:, :3] @ mean + pending[:, 3]
    return float(TORCHVISION_LUMA_BGR @ mean)


def _to_float(x: np.ndarray, pending: np.ndarray | None) -> np.ndarray:
    """x with the pending map applied, as float32 (one pass for a scalar map on 8 bits, else at most two)."""
    if pending is None:
        return x if x.dtype == np.float32 else x.astype(np.float32)
    if _is_scalar(pending):
        return cv2.addWeighted(x, pending[0, 0], x, 0.0, pending[0, 3], dtype=cv2.CV_32F)
    return cv2.transform(x if x.dtype == np.float32 else x.astype(np.float32), pending.astype(np.float32))


def _to_uint8(x: np.ndarray, pending: np.ndarray | None) -> np.ndarray:
    """x with the pending map applied, rounded to nearest and saturated to 8 bits."""
    if pending is None:
        return x if x.dtype == np.uint8 else cv2.convertScaleAbs(x)  # x >= 0: abs does nothing
    if x.dtype == np.uint8:  # no float step happened: one rounding, in one pass
        return cv2.transform(x, pending.astype(np.float32))
    if _is_scalar(pending):
        return cv2.addWeighted(x, pending[0, 0], x, 0.0, pending[0, 3], dtype=cv2.CV_8U)
    return cv2.convertScaleAbs(cv2.transform(x, pending.astype(np.float32)))


def _shift_hue(x: np.ndarray, hue: float) -> np.ndarray:
    """Shift H by ``hue`` of the circle in float HSV. OpenCV's float HSV -> BGR wraps hues in [0, 720) but
    not negative ones (its vector path returns garbage for them), so the shift is taken modulo 360 first."""
    hsv = cv2.cvtColor(x, cv2.COLOR_BGR2HSV)
    hsv = cv2.add(hsv, ((hue * 360.0) % 360.0, 0.0, 0.0, 0.0))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
