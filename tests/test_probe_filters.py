"""First-layer filter pictures: each filter normalised on its own, laid out in a grid, written by the CLI."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from helpers import assert_one_line_error, run_tool
from mono.probes.filters import describe_filters, filter_grid, labelled_filter_grid


def test_each_filter_is_stretched_to_the_full_range():
    weights = torch.zeros(4, 3, 5, 5)
    for i in range(4):
        weights[i] = torch.linspace(-(i + 1), 3 * (i + 1), 75).view(3, 5, 5)  # different scales and offsets
    grid = filter_grid(weights, columns=2, scale=1, padding=1)
    assert grid.shape == (2 * 6 + 1, 2 * 6 + 1, 3)
    tiles = [grid[1 + r * 6 : 1 + r * 6 + 5, 1 + c * 6 : 1 + c * 6 + 5] for r in range(2) for c in range(2)]
    for tile in tiles:
        assert tile.min() == 0 and tile.max() == 255
    assert np.array_equal(tiles[0], tiles[3])  # same shape of filter, any scale: same picture
    assert (grid[0] == 255).all()  # white padding


def test_two_channel_filters_are_drawn_as_grey_pairs():
    weights = torch.randn(6, 2, 3, 3)
    grid = filter_grid(weights, columns=3, scale=2, padding=0)
    assert grid.shape == (2 * 6, 3 * 12, 3)
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()


def test_cli_draws_a_checkpoint_or_a_random_trunk(tmp_path):
    out = tmp_path / "conv1.png"
    result = run_tool("mono.probes.cli", "filters", "--arch", "monogan", "--random-init", "-o", out)
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    grid_side = 8 * (6 * 7 + 1) + 1  # 64 filters of 7×7, 8 per row, 6× enlarged
    assert image.width >= grid_side and image.height > grid_side  # a title band above the grid
    result = run_tool("mono.probes.cli", "filters", "-o", out)
    assert_one_line_error(result, "mono-probe", "give a checkpoint")
    result = run_tool("mono.probes.cli", "filters", tmp_path / "missing.pt", "-o", out)
    assert_one_line_error(result, "mono-probe", "not found")


def test_filter_pictures_are_titled_and_numbered():
    from mono.learning.models import build_trunk

    trunk = build_trunk("alexnet", sobel=True)
    weights = torch.zeros(4, 2, 5, 5)  # flat filters draw as black tiles: only the numbers are white
    title = describe_filters(trunk, weights, "deepcluster-trained alexnet (epoch 3)")
    assert title[0].startswith("deepcluster-trained alexnet (epoch 3): 4 conv1 filters of 5x5")
    assert "horizontal gradient" in title[1] and "vertical gradient" in title[1]
    picture = np.asarray(labelled_filter_grid(weights, title, columns=2, scale=9, padding=1))
    bare = filter_grid(weights, columns=2, scale=9, padding=1)
    band = picture.shape[0] - bare.shape[0]
    assert band > 20 and (picture[:band] < 128).any()  # the title's text
    grid = picture[band:, (picture.shape[1] - bare.shape[1]) // 2 :][:, : bare.shape[1]]
    tile = 5 * 9
    for i in range(4):
        r, c = divmod(i, 2)
        corner = grid[1 + r * (tile + 1) :][:12, 1 + c * (2 * tile + 1) :][:, :12]
        assert (corner > 200).any(), f"tile {i} has no number"
    assert (bare[1:13, 1:13] == 0).all()  # the same tile without numbers: black


def test_rgb_filters_need_no_channel_note():
    from mono.learning.models import build_trunk

    title = describe_filters(build_trunk("monogan"), torch.zeros(64, 3, 7, 7), "random-init monogan (seed 0)")
    assert len(title) == 1 and "numbered" in title[0]
