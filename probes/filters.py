"""Pictures of a trunk's first-layer filters, normalised per filter (the paper's Figure 2)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from mono.probes.features import freeze_for_probing

__all__ = ["describe_filters", "filter_grid", "first_layer_filters", "labelled_filter_grid"]


def first_layer_filters(trunk: nn.Module) -> torch.Tensor:
    """conv1's weights (out, in, k, k) with BatchNorm absorbed, so each filter is what the layer computes."""
    frozen = freeze_for_probing(trunk)
    return frozen.blocks[frozen.block_names[0]].conv.weight.detach().float().cpu()


def filter_grid(
    weights: torch.Tensor, columns: int | None = None, scale: int | None = None, padding: int = 1
) -> np.ndarray:
    """An RGB uint8 image of the filters on a white background, each stretched to [0, 255] on its own.

    Three input channels are drawn in colour; any other number (2 after DeepCluster's Sobel layer) as one
    grey tile per channel, side by side. Tiles are enlarged `scale` times (nearest neighbour).
    """
    count, channels, k, _ = weights.shape
    w = weights.numpy().astype(np.float64)
    low = w.reshape(count, -1).min(1)[:, None, None, None]
    high = w.reshape(count, -1).max(1)[:, None, None, None]
    w = (w - low) / np.maximum(high - low, 1e-12)
    if channels == 3:
        tiles = w.transpose(0, 2, 3, 1)  # (count, k, k, 3)
    else:  # one grey tile per channel, side by side
        tiles = np.concatenate([np.repeat(w[:, c, :, :, None], 3, axis=3) for c in range(channels)], axis=2)
    scale = scale or max(1, 48 // k)
    tiles = np.kron(tiles, np.ones((1, scale, scale, 1)))
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    th, tw = tiles.shape[1:3]
    sheet = np.ones((rows * (th + padding) + padding, columns * (tw + padding) + padding, 3))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[padding + r * (th + padding) :][:th, padding + c * (tw + padding) :][:, :tw] = tile
    return (sheet * 255).round().astype(np.uint8)


def describe_filters(trunk: nn.Module, weights: torch.Tensor, method: str) -> list[str]:
    """The title of a filter picture: whose filters, which layer, and what each tile's parts are."""
    count, channels, k, _ = weights.shape
    first = freeze_for_probing(trunk).block_names[0]
    lines = [f"{method}: {count} {first} filters of {k}x{k}, each stretched to its own range, numbered from 0"]
    if channels == 2:
        lines.append("Sobel input: left half = horizontal gradient (d/dx), right half = vertical gradient (d/dy)")
    elif channels != 3:
        lines.append(f"{channels} input channels, one grey tile each, side by side")
    return lines


def labelled_filter_grid(
    weights: torch.Tensor, title: list[str], columns: int | None = None, scale: int | None = None, padding: int = 1
):
    """`filter_grid` as a PIL image, each tile numbered (the filter's output channel) and ``title`` above it."""
    from PIL import Image

    from mono.learning.pictures import number_tiles, titled

    count, channels, k, _ = weights.shape
    scale = scale or max(1, 48 // k)
    columns = columns or int(np.ceil(np.sqrt(count)))
    image = Image.fromarray(filter_grid(weights, columns=columns, scale=scale, padding=padding))
    th, tw = k * scale, k * scale * (1 if channels == 3 else channels)
    corners = [
        (padding + (i % columns) * (tw + padding), padding + (i // columns) * (th + padding)) for i in range(count)
    ]
    number_tiles(image, corners, range(count), th)
    return titled(image, title, size=12)
