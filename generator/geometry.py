"""Geometry of rotate-then-crop, vectorised over samples.

Coordinates are continuous pixel coordinates: a W×H image covers [0, W]×[0, H], y points down, and
pixel (i, j) has its centre at (i + 0.5, j + 0.5). A positive angle turns the image content
counter-clockwise on screen, as PIL's and torchvision's `rotate` do.
"""

from __future__ import annotations

import numpy as np

# Crops keep this far (source pixels) from the image border so that bilinear taps at level 0 never
# reach outside the image, even when a crop smaller than the output is enlarged.
BORDER_MARGIN = 0.5 + 1e-3


def inscribed_rectangle(width, height, angle_rad):
    """Largest axis-aligned rectangle (in the rotated frame) inside a width×height rectangle turned by angle.

    A w×h rectangle, rotated back by the angle, fits in the source when its projections do:
    w·|cos| + h·|sin| <= W and w·|sin| + h·|cos| <= H. The area w·h is maximised on that polygon
    either where both constraints bind or at the midpoint of a single binding constraint.
    Returns arrays (w, h), centred on the source centre.
    """
    width, height, angle_rad = np.broadcast_arrays(
        np.asarray(width, np.float64), np.asarray(height, np.float64), np.asarray(angle_rad, np.float64)
    )
    s = np.abs(np.sin(angle_rad))
    c = np.abs(np.cos(angle_rad))
    tiny = 1e-12
    candidates = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Both constraints bind.
        det = c * c - s * s
        w = (width * c - height * s) / det
        h = (height * c - width * s) / det
        candidates.append((w, h, np.abs(det) > tiny))
        # Only the first (width) constraint binds: midpoint of w·c + h·s = W.
        w = width / (2 * c)
        h = width / (2 * s)
        candidates.append((w, h, s > tiny))
        # Only the second (height) constraint binds: midpoint of w·s + h·c = H.
        w = height / (2 * s)
        h = height / (2 * c)
        candidates.append((w, h, s > tiny))
    best_w = np.zeros_like(width)
    best_h = np.zeros_like(width)
    best_area = np.full_like(width, -1.0)
    slack = 1e-9 * (width + height)
    for w, h, usable in candidates:
        ok = usable & np.isfinite(w) & np.isfinite(h) & (w >= 0) & (h >= 0)
        w, h = np.where(ok, w, 0.0), np.where(ok, h, 0.0)
        ok &= (w * c + h * s <= width + slack) & (w * s + h * c <= height + slack)
        area = np.where(ok, w * h, -1.0)
        better = area > best_area
        best_w = np.where(better, w, best_w)
        best_h = np.where(better, h, best_h)
        best_area = np.where(better, area, best_area)
    # Shave the rounding slack so the rectangle is never larger than what fits.
    return best_w * (1 - 1e-9), best_h * (1 - 1e-9)


def bounding_half_extents(w, h, angle_rad):
    """Half-width and half-height of the axis-aligned box around a w×h rectangle turned by angle.

    The source image is axis-aligned, so a turned crop lies inside it exactly when this box does.
    """
    s, c = np.abs(np.sin(angle_rad)), np.abs(np.cos(angle_rad))
    return (w * c + h * s) / 2, (w * s + h * c) / 2


def rotate_offsets(dx, dy, angle_rad):
    """Offsets in the rotated frame -> offsets in source coordinates."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return c * dx - s * dy, s * dx + c * dy


def crop_corners(cx, cy, w, h, angle_rad):
    """The four corners (..., 4, 2) in source coordinates of a w×h crop centred at (cx, cy), turned by angle."""
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    dx = signs[:, 0] * np.asarray(w)[..., None] / 2
    dy = signs[:, 1] * np.asarray(h)[..., None] / 2
    ox, oy = rotate_offsets(dx, dy, np.asarray(angle_rad)[..., None])
    return np.stack([np.asarray(cx)[..., None] + ox, np.asarray(cy)[..., None] + oy], axis=-1)


def output_to_source(cx, cy, w, h, angle_rad, flip, size):
    """Affine maps (n, 2, 3) from output pixel indices (u, v) to continuous source coordinates.

    Output pixel centre (u + 0.5, v + 0.5) of an S×S image lands at the matching point of the crop;
    a flipped sample reads its columns from right to left.
    """
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    sign = np.where(flip, -1.0, 1.0)
    su = sign * np.asarray(w) / size  # source step per output column, along the crop's x axis
    sv = np.asarray(h) / size  # ... per output row, along the crop's y axis
    a11, a12 = c * su, -s * sv
    a21, a22 = s * su, c * sv
    centre = 0.5 - size / 2  # output pixel centres relative to the output centre
    m = np.empty(np.shape(cx) + (2, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = a11, a12, cx + (a11 + a12) * centre
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = a21, a22, cy + (a21 + a22) * centre
    return m
