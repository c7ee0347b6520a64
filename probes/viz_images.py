"""What the picture tools (``mono-viz``) share: the frozen trunk they look into, checks of layer and channel
names, reading images, and labelled PNG sheets written atomically."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from mono.learning import atomic
from mono.learning.errors import UserError
from mono.probes.features import freeze_for_probing
from mono.probes.sources import TrunkSource
from mono.probes.transforms import Normalizer

__all__ = [
    "check_channels",
    "check_layer",
    "frozen_trunk",
    "labelled_sheet",
    "load_image",
    "parse_channels",
    "save_json",
    "save_png",
    "to_uint8",
]

LABEL_HEIGHT = 18


def frozen_trunk(source: TrunkSource, device: torch.device) -> tuple[nn.Module, Normalizer]:
    """The source's trunk in eval mode, BatchNorm absorbed, no parameter requiring gradients, and the
    normalisation it was trained with (inputs are images in [0, 1])."""
    trunk = freeze_for_probing(source.trunk).to(device)
    return trunk, Normalizer(**source.normalization, device=device)


def check_layer(trunk: nn.Module, layer: str) -> str:
    if layer not in trunk.block_names:
        raise UserError(
            f"--layer {layer}: {trunk.arch} has no block {layer!r}; its blocks: {', '.join(trunk.block_names)}"
        )
    return layer


def parse_channels(text: str) -> list[int]:
    """``"0,5,9"`` -> ``[0, 5, 9]``: distinct non-negative integers."""
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--channels must be integers separated by commas, like 0,5,9, not {text!r}") from None
    if not channels or min(channels) < 0 or len(set(channels)) != len(channels):
        raise UserError(f"--channels must be distinct non-negative integers, not {text!r}")
    return channels


def check_channels(trunk: nn.Module, layer: str, channels: Sequence[int]) -> None:
    count = trunk.feature_shapes()[layer][0]
    bad = [c for c in channels if c >= count]
    if bad:
        raise UserError(
            f"--channels {','.join(map(str, bad))}: {layer} of {trunk.arch} has {count} channels (0-{count - 1})"
        )


def load_image(path: Path, role: str) -> Image.Image:
    """An RGB image, or a UserError naming the file."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"{role} image not found: {path}") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"cannot read {role} image {path}: {exc}") from None


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` floats in [0, 1] -> ``(N, H, W, 3)`` uint8."""
    return (images.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """``text``, shortened with an ellipsis until it fits in ``width`` pixels."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 1 else ""
    return text


def labelled_sheet(
    rows: Sequence[tuple[str | None, Sequence[tuple[str, np.ndarray]]]], tile: int, gap: int = 6
) -> Image.Image:
    """A white sheet of rows of ``tile``-px tiles (nearest-neighbour enlarged, centre-cropped to a square):
    each row titled above (unless its title is None), each tile captioned above."""
    columns = max(len(tiles) for _, tiles in rows)
    width = gap + columns * (tile + gap)
    heights = [(LABEL_HEIGHT if title is not None else 0) + LABEL_HEIGHT + tile + gap for title, _ in rows]
    sheet = Image.new("RGB", (width, gap + sum(heights)), "white")
    draw, font = ImageDraw.Draw(sheet), _font()
    top = gap
    for (title, tiles), height in zip(rows, heights):
        if title is not None:
            draw.text((gap, top), _fit(draw, title, width - 2 * gap, font), fill="black", font=font)
            top += LABEL_HEIGHT
        for c, (caption, image) in enumerate(tiles):
            left = gap + c * (tile + gap)
            draw.text((left, top), _fit(draw, caption, tile, font), fill="black", font=font)
            img = Image.fromarray(image)
            side = min(img.size)
            img = img.crop(
                ((img.width - side) // 2, (img.height - side) // 2, (img.width + side) // 2, (img.height + side) // 2)
            )
            resample = Image.NEAREST if side <= tile else Image.LANCZOS
            sheet.paste(img.resize((tile, tile), resample), (left, top + LABEL_HEIGHT))
        top += height - (LABEL_HEIGHT if title is not None else 0)
    return sheet


def _check_parent(path: Path) -> None:
    if not path.parent.is_dir():
        raise UserError(f"-o {path}: no such directory {path.parent}")


def save_png(path: Path, image: Image.Image) -> None:
    """Write ``image`` as a PNG atomically (readers never see half a file)."""
    _check_parent(path)
    with atomic.replacing(path) as f:
        image.save(f, format="PNG")


def save_json(path: Path, data: dict[str, Any]) -> None:
    _check_parent(path)
    atomic.write_text(path, json.dumps(data, indent=2) + "\n")
