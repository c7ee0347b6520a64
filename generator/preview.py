"""Contact sheets of samples, like the paper's Figures 7-10."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .samples import iter_images

# Tiles smaller than this stay unnumbered: the number would hide most of the sample. (mono.learning.pictures
# has the same rule; the generator keeps its own copy, as it imports nothing from the learning side.)
MIN_NUMBERED_TILE = 40
READABLE = 96  # docs/cli.md: 32 px samples are drawn at 96 px


def readable_tile(side: int) -> int:
    """The default tile for samples of `side` px: a whole multiple that makes small ones about READABLE px;
    larger ones stay as they are."""
    return side * max(1, READABLE // side)


def _number_tile(draw: ImageDraw.ImageDraw, x: int, y: int, number: int, side: int) -> None:
    """The sample's index, white on a dark box, in the tile's top-left corner."""
    try:
        font = ImageFont.load_default(size=max(9, min(14, side // 5)))
    except TypeError:  # Pillow without FreeType
        font = ImageFont.load_default()
    right, bottom = draw.textbbox((x + 2, y + 1), str(number), font=font)[2:]
    draw.rectangle((x, y, right + 2, bottom + 2), fill=(0, 0, 0))
    draw.text((x + 2, y + 1), str(number), fill=(255, 255, 255), font=font)


def contact_sheet(
    root: Path,
    count: int = 64,
    columns: int = 8,
    tile: int | None = None,
    start: int = 0,
    padding: int = 2,
    numbers: bool = True,
) -> Image.Image:
    """A grid of the samples start..start+count-1 on a white background; tiles resized to `tile` px (by default
    readable_tile; nearest-neighbour when enlarged, so that pixels stay visible). Tiles of 40 px and more carry
    their sample's index, which leads to its parameters (`mono-shards show DIR INDEX`)."""
    tiles = []
    for index, _, jpeg in itertools.islice(iter_images(root, checked=False), start, start + count):
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        side = tile or readable_tile(image.size[0])
        if image.size != (side, side):
            enlarged = side >= max(image.size)
            image = image.resize((side, side), Image.Resampling.NEAREST if enlarged else Image.Resampling.LANCZOS)
        tiles.append((index, image))
    if not tiles:
        raise ValueError("no samples to show")
    side = tiles[0][1].size[0]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (side + padding) + padding, rows * (side + padding) + padding), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (index, image) in enumerate(tiles):
        r, c = divmod(k, columns)
        x, y = padding + c * (side + padding), padding + r * (side + padding)
        sheet.paste(image, (x, y))
        if numbers and side >= MIN_NUMBERED_TILE:
            _number_tile(draw, x, y, index, side)
    return sheet
