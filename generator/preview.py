"""Contact sheets of samples, like the paper's Figures 7-10."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from PIL import Image

from .samples import iter_images

READABLE = 96  # docs/cli.md: 32 px samples are drawn at 96 px


def readable_tile(side: int) -> int:
    """The default tile for samples of `side` px: a whole multiple that makes small ones about READABLE px;
    larger ones stay as they are."""
    return side * max(1, READABLE // side)


def contact_sheet(
    root: Path, count: int = 64, columns: int = 8, tile: int | None = None, start: int = 0, padding: int = 2
) -> Image.Image:
    """A grid of the samples start..start+count-1 on a white background; tiles resized to `tile` px
    (nearest-neighbour when enlarged, so that pixels stay visible; by default readable_tile)."""
    tiles = []
    for _, _, jpeg in itertools.islice(iter_images(root, checked=False), start, start + count):
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        side = tile or readable_tile(image.size[0])
        if image.size != (side, side):
            enlarged = side >= max(image.size)
            image = image.resize((side, side), Image.Resampling.NEAREST if enlarged else Image.Resampling.LANCZOS)
        tiles.append(image)
    if not tiles:
        raise ValueError("no samples to show")
    side = tiles[0].size[0]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (side + padding) + padding, rows * (side + padding) + padding), "white")
    for k, image in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet.paste(image, (padding + c * (side + padding), padding + r * (side + padding)))
    return sheet
