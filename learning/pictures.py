"""Labels on pictures: a tile's number in its corner and a title above a grid, so that a picture says what it
shows and a tile leads back to what made it. (mono.generator keeps its own copy: generator/preview.py.)"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["MIN_NUMBERED_TILE", "number_tiles", "titled"]

# Tiles smaller than this stay unnumbered: the number would hide most of the picture.
MIN_NUMBERED_TILE = 40


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: one fixed size
        return ImageFont.load_default()


def number_tiles(image: Image.Image, corners: Sequence[tuple[int, int]], numbers: Sequence[int], tile: int) -> None:
    """Write each number, white on a dark box, into the top-left corner of its tile (in place)."""
    if tile < MIN_NUMBERED_TILE:
        return
    draw = ImageDraw.Draw(image)
    font = _font(max(9, min(14, tile // 5)))
    for (x, y), number in zip(corners, numbers):
        left, top, right, bottom = draw.textbbox((x + 2, y + 1), str(number), font=font)
        draw.rectangle((x, y, right + 2, bottom + 2), fill=(0, 0, 0))
        draw.text((x + 2, y + 1), str(number), fill=(255, 255, 255), font=font)


def titled(image: Image.Image, lines: Sequence[str], size: int = 14) -> Image.Image:
    """``image`` under a white band holding ``lines`` of text, widened (centred) if a line is wider."""
    font = _font(size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [probe.textbbox((0, 0), line, font=font) for line in lines]
    text_w = max((b[2] for b in boxes), default=0) + 12
    line_h = max((b[3] - b[1] for b in boxes), default=size) + 6
    band = line_h * len(lines) + 6
    width = max(image.width, text_w)
    out = Image.new("RGB", (width, image.height + band), "white")
    out.paste(image.convert("RGB"), ((width - image.width) // 2, band))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((6, 4 + i * line_h), line, fill=(0, 0, 0), font=font)
    return out
