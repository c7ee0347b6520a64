"""Colour jitter as one affine map in RGB space.

Brightness, contrast, saturation and hue are each linear in RGB, so applied in that order (as
torchvision's ColorJitter defines each of them) they compose into y = M·x + t, applied in a single
pass with no clipping in between. Contrast pulls towards the mean grey of the image, which makes t
depend on the sample's mean luma: t = (1 - contrast)·brightness·mean_luma·(1, 1, 1).
"""
from __future__ import annotations

import numpy as np

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
LUMA = np.array([0.299, 0.587, 0.114])


def hue_rotation(hue):
    """Rotation about the grey axis (1, 1, 1) by hue·360 degrees: (n, 3, 3). Greys stay unchanged."""
    theta = 2 * np.pi * np.asarray(hue, np.float64)
    k = np.full(3, 1 / np.sqrt(3))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    outer = np.outer(k, k)
    c, s = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    return c * np.eye(3) + s * cross + (1 - c) * outer


def saturation_matrix(saturation):
    """Blend with the luma grey: s·x + (1 - s)·luma(x)·(1, 1, 1): (n, 3, 3)."""
    s = np.asarray(saturation, np.float64)[..., None, None]
    grey = np.outer(np.ones(3), LUMA)
    return s * np.eye(3) + (1 - s) * grey


def jitter_matrices(brightness, contrast, saturation, hue):
    """M (n, 3, 3) and the offset coefficient k (n,) such that y = M·x + k·mean_luma(x)."""
    b = np.asarray(brightness, np.float64)
    c = np.asarray(contrast, np.float64)
    scale = (b * c)[..., None, None] * np.eye(3)
    m = hue_rotation(hue) @ saturation_matrix(saturation) @ scale
    return m, (1 - c) * b
