"""`mono-shards show DIR INDEX`: one sample, its augmentation parameters, and where on its source image it was
taken: the turned crop drawn on the source, beside the sample. What a tile of `mono-shards preview` is made of."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import manifest as manifest_mod
from .dataset_dir import sample_key
from .errors import UserError
from .geometry import crop_corners
from .imageio import DEFAULT_MAX_PIXELS
from .manifest import WEBDATASET, formats_of
from .tar_format import group_samples, iter_members

SOURCE_SIDE = 512  # the source image is shrunk to fit this (its longest side)
SAMPLE_SIDE = 256  # a smaller sample is enlarged by a whole factor towards this (nearest-neighbour)
PAD = 8
CROP_COLOUR = (255, 0, 255)  # magenta: rarely a colour of photographs
CORNER_COLOUR = (255, 255, 0)  # the corner that is the sample's top-left pixel


def read_sample(root: Path, index: int) -> tuple[dict, bytes, dict]:
    """(manifest, JPEG bytes, parameters) of sample `index` of a finished dataset, read from its shard."""
    root = Path(root)
    if not (root / manifest_mod.MANIFEST).is_file():
        raise UserError(f"{root}: no manifest.json; show reads finished datasets (finish it by running its command)")
    manifest = manifest_mod.load(root)
    total = manifest["config"]["output"]["samples"]
    if not 0 <= index < total:
        raise UserError(f"{root}: no sample {index}; the dataset holds samples 0 to {total - 1}")
    if WEBDATASET not in formats_of(manifest):
        raise UserError(f"{root}: holds no shards ({', '.join(formats_of(manifest))}); the parameters are in shards")
    record = next(r for r in manifest["shards"] if r["first"] <= index < r["first"] + r["count"])
    path = root / record["name"]
    key = sample_key(index)
    try:
        with open(path, "rb") as stream:
            for found, files in group_samples(iter_members(stream)):
                if found == key:
                    if "json" not in files or "jpg" not in files:
                        break
                    return manifest, files["jpg"], json.loads(files["json"])
    except FileNotFoundError:
        raise UserError(f"{path}: shard missing") from None
    except ValueError as exc:
        raise UserError(f"{path}: damaged shard ({exc}); check it with mono-shards verify") from None
    raise UserError(f"{path}: no sample {key} with its .jpg and .json; check it with mono-shards verify")


def find_source(manifest: dict, label: int, image_dir: str | None, source: str | None) -> Path:
    """The sample's source image, found by its SHA-256 as `mono-gen --from-manifest` finds it; UserError if not."""
    from .regenerate import find_sources

    one = {"config": {"sources": [manifest["config"]["sources"][label]]}, "sources": [manifest["sources"][label]]}
    return Path(find_sources(one, image_dir, source, DEFAULT_MAX_PIXELS)[0].path)


def enlarged(sample: Image.Image, tile: int | None) -> Image.Image:
    """The sample at `tile` px, or a small one enlarged by the whole factor that brings it near SAMPLE_SIDE."""
    side = tile or sample.width * max(1, SAMPLE_SIDE // sample.width)
    return sample if side == sample.width else sample.resize((side, side), Image.Resampling.NEAREST)


def source_scale(width: int, height: int) -> float:
    return min(1.0, SOURCE_SIDE / max(width, height))


def picture(sample: Image.Image, params: dict, source: Image.Image | None, tile: int | None = None) -> Image.Image:
    """The sample (enlarged) at the left; at its right the source image, shrunk to fit SOURCE_SIDE, with the region
    the sample was taken from: the crop turned by its angle, the corner of the sample's top-left pixel marked."""
    sample = enlarged(sample.convert("RGB"), tile)
    if source is None:
        canvas = Image.new("RGB", (sample.width + 2 * PAD, sample.height + 2 * PAD), "white")
        canvas.paste(sample, (PAD, PAD))
        return canvas
    scale = source_scale(*source.size)
    shown = source.convert("RGB")
    if scale < 1:
        shown = shown.resize((round(source.width * scale), round(source.height * scale)), Image.Resampling.LANCZOS)
    width = sample.width + shown.width + 3 * PAD
    canvas = Image.new("RGB", (width, max(sample.height, shown.height) + 2 * PAD), "white")
    canvas.paste(sample, (PAD, PAD))
    left = sample.width + 2 * PAD
    canvas.paste(shown, (left, PAD))
    corners = quadrilateral(params, scale, (left, PAD))
    draw = ImageDraw.Draw(canvas)
    draw.line([*map(tuple, corners), tuple(corners[0])], fill=CROP_COLOUR, width=3)
    x, y = corners[1 if params["flip"] else 0]  # a flipped sample reads its columns from right to left
    draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=CORNER_COLOUR, outline=CROP_COLOUR)
    return canvas


def quadrilateral(params: dict, scale: float, offset: tuple[int, int]) -> np.ndarray:
    """The crop's four corners (top-left, top-right, bottom-right, bottom-left of the unflipped sample) in the
    picture's pixels: source coordinates scaled by `scale` and moved by `offset`."""
    crop = params["crop"]
    corners = crop_corners(crop["cx"], crop["cy"], crop["w"], crop["h"], np.deg2rad(params["angle"]))
    return corners * scale + np.asarray(offset, np.float64)


def load_image(path: Path) -> Image.Image:
    from .imageio import decode_rgb

    return Image.fromarray(decode_rgb(Path(path).read_bytes(), str(path), DEFAULT_MAX_PIXELS))


def sample_image(jpeg: bytes) -> Image.Image:
    return Image.open(io.BytesIO(jpeg)).convert("RGB")
