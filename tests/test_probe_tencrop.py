"""10-crop evaluation: the right crops, and each image's scores averaged over its own crops."""

import numpy as np
import pytest
import torch
from PIL import Image

from mono.probes.transforms import TenCrops, average_crops


def _position_image(size: int = 256) -> Image.Image:
    """An image whose red channel encodes the column and green channel the row of every pixel."""
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    return Image.fromarray(np.stack([cols, rows, np.zeros_like(rows)], axis=-1).astype(np.uint8))


def test_ten_crops_are_the_corners_the_centre_and_their_flips():
    crops = TenCrops(resize=256, size=224)(_position_image())
    assert crops.shape == (10, 3, 224, 224) and crops.dtype == torch.uint8
    # (column, row) of each crop's top-left pixel; a flipped crop starts at its source crop's right edge
    top_left = sorted((int(c[0, 0, 0]), int(c[1, 0, 0])) for c in crops)
    expected = sorted(
        [(0, 0), (32, 0), (0, 32), (32, 32), (16, 16), (223, 0), (255, 0), (223, 32), (255, 32), (239, 16)]
    )
    assert top_left == expected


def test_scores_are_averaged_over_each_images_own_crops():
    # score of a crop = (column of its top-left pixel, row of it, a per-image constant)
    images = [_position_image(), Image.fromarray(np.full((300, 256, 3), 7, dtype=np.uint8))]
    batch = torch.stack([TenCrops(256, 224)(img) for img in images])  # (2, 10, 3, 224, 224)
    flat = batch.flatten(0, 1).float()
    scores = torch.stack([flat[:, 0, 0, 0], flat[:, 1, 0, 0], flat[:, 0].mean(dim=(1, 2))], dim=1)
    averaged = average_crops(scores, num_crops=10)
    assert averaged.shape == (2, 3)
    cols = [0, 32, 0, 32, 16, 223, 255, 223, 255, 239]
    rows = [0, 0, 32, 32, 16, 0, 0, 32, 32, 16]
    assert averaged[0, 0].item() == pytest.approx(sum(cols) / 10)
    assert averaged[0, 1].item() == pytest.approx(sum(rows) / 10)
    # each crop spans 224 consecutive columns, rightwards from its top-left pixel, or leftwards if flipped
    mean_cols = [c + 111.5 for c in cols[:5]] + [c - 111.5 for c in cols[5:]]
    assert averaged[0, 2].item() == pytest.approx(np.mean(mean_cols), abs=1e-3)
    assert averaged[1].tolist() == pytest.approx([7.0, 7.0, 7.0])


def test_average_crops_rejects_a_ragged_batch():
    with pytest.raises(ValueError):
        average_crops(torch.zeros(15, 4), num_crops=10)
