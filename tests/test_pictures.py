"""Pictures a person can read: enlarged tiles, each numbered so that it leads back to what made it, and titles."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from helpers import mono_gen
from mono.generator.preview import contact_sheet
from mono.trainers.sample import image_grid, write_image_grid


def test_sample_grids_enlarge_with_nearest_neighbour():
    images = torch.stack([torch.full((3, 4, 4), v) for v in (-1.0, 1.0)])
    images[0, :, 0, 0] = 1.0  # one white pixel in a black image
    grid = image_grid(images, columns=2, padding=2, tile=12)
    assert grid.shape == (2 + 14, 2 + 2 * 14, 3)
    assert (grid[2:5, 2:5] == 255).all() and (grid[5:14, 5:14] == 0).all()  # the pixel became a 3×3 block


def test_enlarged_sample_grids_are_numbered_and_titled(tmp_path):
    images = torch.full((4, 3, 8, 8), -1.0)  # black: only the numbers and the title are light
    path = write_image_grid(images, tmp_path / "g.png", columns=2, tile=48, title=["monogan, seed 0"])
    picture = np.asarray(Image.open(path))
    bare = image_grid(images, columns=2, tile=48)
    band = picture.shape[0] - bare.shape[0]
    assert band > 10 and (picture[:band] == 255).any() and (picture[:band] < 100).any()  # white band, dark text
    grid = picture[band:, : bare.shape[1]]
    for i in range(4):
        r, c = divmod(i, 2)
        top, left = 2 + r * 50, 2 + c * 50
        assert (grid[top : top + 14, left : left + 14] > 200).any(), f"tile {i} has no number"
        assert (grid[top + 20 : top + 48, left + 20 : left + 48] == 0).all()  # the rest of the tile untouched
    small = np.asarray(Image.open(write_image_grid(images, tmp_path / "s.png", columns=2)))
    assert np.array_equal(small, image_grid(images, columns=2))  # native 8 px tiles: too small to number


def test_previews_enlarge_and_number_each_sample_by_its_index(source_image, tmp_path):
    out = tmp_path / "d"
    mono_gen("--image", source_image, "--samples", 20, "--size", 32, "--shard-size", 10, "--out", out)
    numbered = np.asarray(contact_sheet(out, count=4, columns=2, tile=96, start=10))
    plain = np.asarray(contact_sheet(out, count=4, columns=2, tile=96, start=10, numbers=False))
    assert numbered.shape == plain.shape == (2 * 98 + 2, 2 * 98 + 2, 3)
    changed = np.argwhere((numbered != plain).any(axis=2))
    for r, c in ((0, 0), (0, 1), (1, 0), (1, 1)):
        top, left = 2 + r * 98, 2 + c * 98
        inside = changed[(changed[:, 0] >= top) & (changed[:, 0] < top + 96)]
        inside = inside[(inside[:, 1] >= left) & (inside[:, 1] < left + 96)]
        assert len(inside) and inside[:, 0].max() < top + 24 and inside[:, 1].max() < left + 30  # a corner label
    # nearest neighbour: every enlarged pixel is a 3×3 block of one colour
    tile = plain[2:98, 2:98].astype(int)
    assert (tile[0::3, 0::3] == tile[1::3, 1::3]).all() and (tile[0::3, 0::3] == tile[2::3, 2::3]).all()
    default = np.asarray(contact_sheet(out, count=4, columns=2, start=10))  # 32 px samples: drawn at 96 px
    assert np.array_equal(default, numbered)
