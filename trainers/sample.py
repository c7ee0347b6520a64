"""mono-train sample: a grid of a GAN run's generated images, to see what its generator learned.

The generator is rebuilt from the checkpoint alone (its architecture arguments are stored beside its
weights) and run in eval mode, so every image depends only on its own latent code.

    mono-train sample runs/monogan-A                    # runs/monogan-A/samples-epochNNNN.png
    mono-train sample runs/bigan-A/checkpoint.pt -o bigan.png -n 100 --seed 3 --tile 64
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mono.learning import atomic
from mono.learning.checkpoint import load_checkpoint
from mono.learning.cli_options import checkpoint_path
from mono.learning.device import choose_device
from mono.learning.models import Generator
from mono.trainers import utils

BATCH = 256
READABLE = 96  # docs/cli.md: 32 px images are drawn at 96 px


def get_args_parser() -> utils.ArgumentParser:
    parser = utils.ArgumentParser(
        prog="mono-train sample",
        description="Write a PNG grid of a GAN run's generated images.",
        epilog="examples:\n" + __doc__.split("\n\n", 2)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run", type=Path, metavar="RUN_DIR", help="a bigan or monogan run directory (or its checkpoint file)"
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="PNG to write (default RUN_DIR/samples-epochNNNN.png)",
    )
    parser.add_argument("-n", "--count", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--n", dest="count", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--columns", type=int, default=None, help="images per row (default: a square grid)")
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="PX",
        help=f"side of one image in the grid, upscaled nearest-neighbour (default auto: images under {READABLE} px "
        f"drawn at about {READABLE} px, larger ones as they are)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent codes (default 0)")
    parser.add_argument(
        "--device", choices=["auto", "cuda", "cpu"], default="auto", help="default auto: CUDA when available"
    )
    return parser


def load_generator(path: Path) -> tuple[Generator, int]:
    """The generator stored in a checkpoint, with its weights, in eval mode; and the checkpoint's epoch."""
    ckpt = load_checkpoint(path)
    stored = ((ckpt.extra or {}).get("architectures") or {}).get("generator")
    weights = ((ckpt.extra or {}).get("modules") or {}).get("generator")
    if stored is None or weights is None:
        raise utils.UserError(
            f"{path} is a {ckpt.method} checkpoint without a generator; sample a bigan or monogan run"
        )
    if stored["arch"] != Generator.arch:
        raise utils.UserError(f"{path}: unknown generator architecture {stored['arch']!r}")
    generator = Generator(**stored["arch_args"])
    generator.load_state_dict(weights)
    return generator.eval(), ckpt.epoch


@torch.no_grad()
def sample(generator: Generator, n: int, seed: int) -> torch.Tensor:
    """n images in [-1, 1] from latent codes drawn with `seed` (the same seed gives the same images)."""
    noise = utils.seeded_generator(seed)
    return torch.cat(
        [generator(generator.sample_latent(min(BATCH, n - start), noise)).cpu() for start in range(0, n, BATCH)]
    )


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) images in [-1, 1] -> (B, H, W, 3) uint8, rounding to the nearest level."""
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()


def tile_side(side: int, tile: int | None) -> int:
    """--tile's side for images of `side` px: as given, or by default a whole multiple of small images that makes
    them about READABLE px (larger images stay as they are)."""
    return tile if tile else side * max(1, READABLE // side)


def image_grid(
    images: torch.Tensor, columns: int | None = None, padding: int = 2, tile: int | None = None
) -> np.ndarray:
    """Images in [-1, 1] tiled row by row on a black background, `padding` pixels around each: (H, W, 3) uint8.
    `tile`: the side of each tile in pixels, upscaled with nearest neighbour so pixels stay visible."""
    pixels = to_pixels(images)
    if tile is not None and tile != pixels.shape[1]:
        pixels = np.stack(
            [np.asarray(Image.fromarray(p).resize((tile, tile), Image.Resampling.NEAREST)) for p in pixels]
        )
    n, h, w, _ = pixels.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((padding + rows * (h + padding), padding + columns * (w + padding), 3), np.uint8)
    for i, image in enumerate(pixels):
        top, left = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def write_image_grid(
    images: torch.Tensor,
    path: Path,
    columns: int | None = None,
    tile: int | None = None,
    title: Sequence[str] = (),
    padding: int = 2,
) -> Path:
    """Write `image_grid(images)` as a PNG, atomically (mono.learning.atomic): a reader never sees half a file.
    Tiles of `tile` px and more are numbered in reading order (image i comes from latent code i of the seed);
    `title` lines go above the grid."""
    from mono.learning.pictures import number_tiles, titled

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image_grid(images, columns, padding=padding, tile=tile))
    side = tile or images.shape[-1]
    columns = columns or math.ceil(math.sqrt(len(images)))
    corners = [
        (padding + (i % columns) * (side + padding), padding + (i // columns) * (side + padding))
        for i in range(len(images))
    ]
    number_tiles(picture, corners, range(len(images)), side)
    if title:
        picture = titled(picture, title, size=12)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic.write_bytes(path, buffer.getvalue(), fsync=False)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if args.count < 1 or (args.columns is not None and args.columns < 1) or (args.tile is not None and args.tile < 1):
        raise utils.UserError("--count, --columns and --tile must be positive")
    if args.seed < 0:
        raise utils.UserError("--seed must not be negative")
    path = checkpoint_path(args.run)
    generator, epoch = load_generator(path)
    generator.to(choose_device(args.device))
    out = args.out or path.parent / f"samples-epoch{epoch:04d}.png"
    images = sample(generator, args.count, args.seed)
    write_image_grid(images, out, args.columns, tile=tile_side(images.shape[-1], args.tile))
    print(out)


if __name__ == "__main__":
    utils.run(main, "mono-train sample")
