"""Batched data augmentation on image tensors, so that it runs where the batch is (GPU or CPU).

Every trainer receives uint8 batches (B, 3, S, S) from the reader, whatever the on-disk format, and
applies its method's native augmentation here. Random numbers come from an explicit CPU generator, so a
run is reproducible and does not depend on the device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainers.utils import downscale, normalize, random_crop  # noqa: F401 - the GAN trainers and DeepCluster


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
    attempts: int = 10,
) -> torch.Tensor:
    """(n, 4) boxes (top, left, h, w) drawn as torchvision's RandomResizedCrop draws them.

    Area fraction ~ U(scale), log aspect ~ U(log ratio); the first of `attempts` draws that fits is used,
    else the whole image with its aspect clamped to `ratio`, centred.
    """
    area = height * width
    target = area * _uniform(n * attempts, *scale, generator).view(attempts, n)
    log_r = _uniform(n * attempts, math.log(ratio[0]), math.log(ratio[1]), generator).view(attempts, n)
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.argmax(fits.to(torch.int8), dim=0)
    cols = torch.arange(n)
    w, h = w[first, cols], h[first, cols]
    # Fallback: centre crop of the whole image, aspect clamped (torchvision's rule).
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    missed = ~fits.any(dim=0)
    w = torch.where(missed, torch.full_like(w, fw), w)
    h = torch.where(missed, torch.full_like(h, fh), h)
    top = torch.floor(torch.rand(n, generator=generator, dtype=torch.float64) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=generator, dtype=torch.float64) * (width - w + 1))
    top = torch.where(missed, torch.div(height - h, 2, rounding_mode="floor"), top)
    left = torch.where(missed, torch.div(width - w, 2, rounding_mode="floor"), left)
    return torch.stack([top, left, h, w], dim=1)


def random_resized_crop(
    batch: torch.Tensor,
    size: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> torch.Tensor:
    """torchvision's RandomResizedCrop (+ RandomHorizontalFlip) for a whole batch, bilinear, as float in [0, 255]."""
    b, _, height, width = batch.shape
    boxes = resized_crop_boxes(b, height, width, scale, ratio, generator)
    top, left, h, w = boxes.unbind(1)
    sign = torch.ones(b, dtype=torch.float64)
    if flip:
        sign = torch.where(torch.rand(b, generator=generator) < 0.5, -sign, sign)
    # Output normalised coordinates [-1, 1] -> input normalised coordinates (align_corners=False).
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    source = batch.float()
    grid = F.affine_grid(theta.to(source), [b, 3, size, size], align_corners=False)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
