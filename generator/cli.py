"""mono-gen: expand source images into an augmented dataset of WebDataset shards and/or an FFCV file."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from . import __version__
from .augmentation import AUGMENTATIONS, Augmentation, parse_augment
from .cli_errors import run_cli
from .config import PRESETS, DatasetConfig, OutputSpec, check_sources_fit
from .dataset_dir import BETON
from .errors import UserError
from .imageio import DEFAULT_MAX_PIXELS
from .manifest import OUTPUT_FORMATS

EXAMPLES = """
\b
Examples:
  mono-gen --out shards/demo --preset cifar              # embedded default image, 50,000 × 32 px
  mono-gen --image A --out shards/ameyoko                 # the paper's Image A, 1,281,167 × 256 px
  mono-gen --image B --preset cifar --augment scale,flip --out shards/b-scale-flip
  mono-gen --image photo.jpg --samples 10000 --size 128 --out shards/photo
  mono-gen --source ~/imagenet/train --n 10 --seed 1 --out shards/in10
  mono-gen --image A --out /shared/a --shards 0:64        # one machine's part of a split run
  mono-gen --image A --format both --out shards/ameyoko   # shards and train.beton (FFCV); adds the .beton
                                                          # to a dataset made before

The paper's images A, B, C are looked up in --image-dir, $MONO_IMAGE_DIR, then the user cache
(~/.cache/mono/images), and downloaded there when missing and the network is reachable.
"""


def _shard_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        a, b = value.split(":")
        return int(a), int(b)
    except ValueError:
        raise click.BadParameter(f"expected a:b (shard indices, b exclusive), got {value!r}") from None


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--image",
    metavar="A|B|C|PATH",
    help="Source image: the paper's A, B or C, or any image file. Default: an embedded photograph.",
)
@click.option(
    "--image-dir",
    type=click.Path(file_okay=False),
    help="Folder holding the paper's images (ameyoko.jpg, animals.png, sf.png).",
)
@click.option(
    "--source",
    metavar="DIR|LIST",
    help="Choose several source images from a folder (recursive) or a text file of paths.",
)
@click.option(
    "--n", "n", type=int, help="Number of source images to choose from --source with the seed (default: all)."
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="imagenet",
    show_default=True,
    help="imagenet: 1,281,167 samples of 256 px; cifar: 50,000 samples of 32 px.",
)
@click.option("--samples", "-d", type=int, help="Number of samples d (overrides the preset).")
@click.option("--size", "-S", type=int, help="Output side S in pixels (overrides the preset).")
@click.option(
    "--augment",
    default="all",
    show_default=True,
    metavar="LIST",
    help=f"all, none, or a comma-separated subset of {', '.join(AUGMENTATIONS)} (the paper's Table 1).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quality", type=int, default=90, show_default=True, help="JPEG quality.")
@click.option("--shard-size", type=int, help="Samples per shard (default: 5,000 for imagenet, 1,000 for cifar).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(OUTPUT_FORMATS)),
    default="webdataset",
    show_default=True,
    help="webdataset: tar shards; ffcv: train.beton (the shards are deleted once it is "
    "complete); both. Formats a directory already holds are kept.",
)
@click.option("--shards", "shard_range", metavar="a:b", help="Generate only shards a..b-1 (split a run over machines).")
@click.option("--workers", "-j", type=int, default=_default_workers, show_default="all cores", help="Worker processes.")
@click.option("--beta", type=float, default=Augmentation.beta, show_default=True, help="Smallest crop area fraction.")
@click.option(
    "--aspect",
    type=float,
    default=Augmentation.aspect,
    show_default="3/4",
    help="Crop aspect ratio range [aspect, 1/aspect].",
)
@click.option(
    "--max-angle", type=float, default=Augmentation.max_angle, show_default=True, help="Rotation range in degrees."
)
@click.option("--brightness", type=float, default=Augmentation.brightness, show_default=True)
@click.option("--contrast", type=float, default=Augmentation.contrast, show_default=True)
@click.option("--saturation", type=float, default=Augmentation.saturation, show_default=True)
@click.option("--hue", type=float, default=Augmentation.hue, show_default=True)
@click.option("--flip-prob", type=float, default=Augmentation.flip_prob, show_default=True)
@click.option(
    "--colour",
    type=click.Choice(["torchvision", "linear"]),
    default=Augmentation.colour,
    show_default=True,
    help="Colour jitter semantics: torchvision's ColorJitter (random order, clamped steps, HSV hue), "
    "or one fast linear map in a fixed order (docs/protocol.md).",
)
@click.option(
    "--max-pixels",
    type=int,
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse larger source images (decompression bomb guard).",
)
@click.option(
    "--cache-mb", type=int, default=2048, show_default=True, help="Memory per worker for decoded source images."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
@click.option("--out", "-o", required=True, type=click.Path(), help="Output directory (created).")
@click.version_option(__version__, prog_name="mono-gen")
def mono_gen(**opts):
    """Expand N source images into d augmented samples, written as WebDataset shards (and/or FFCV's
    .beton) with a manifest.

    Implements the augmentation protocol of Asano, Rupprecht & Vedaldi (ICLR 2020, section 3.1):
    rotation before cropping, random crops, flips and colour jitter. The same command and seed give
    the same bytes whatever --workers is; an interrupted run resumes when run again.
    """
    from .generate import generate
    from .sources import resolve

    preset = PRESETS[opts["preset"]]
    try:
        augmentation = Augmentation(
            augment=parse_augment(opts["augment"]),
            beta=opts["beta"],
            aspect=opts["aspect"],
            max_angle=opts["max_angle"],
            brightness=opts["brightness"],
            contrast=opts["contrast"],
            saturation=opts["saturation"],
            hue=opts["hue"],
            flip_prob=opts["flip_prob"],
            colour=opts["colour"],
        )
        output = OutputSpec(
            samples=opts["samples"] if opts["samples"] is not None else preset["samples"],
            size=opts["size"] if opts["size"] is not None else preset["size"],
            seed=opts["seed"],
            quality=opts["quality"],
            shard_size=opts["shard_size"] if opts["shard_size"] is not None else preset["shard_size"],
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if opts["workers"] < 1:
        raise UserError(f"--workers must be at least 1, got {opts['workers']}")
    if opts["max_pixels"] < 1 or opts["cache_mb"] < 1:
        raise UserError("--max-pixels and --cache-mb must be positive")
    shard_range = _shard_range(opts["shard_range"])

    sources = resolve(opts["image"], opts["image_dir"], opts["n"], opts["source"], opts["seed"], opts["max_pixels"])
    if len(sources) > output.samples:
        raise UserError(
            f"{len(sources)} source images but only {output.samples} samples: every source needs at least one"
        )
    check_sources_fit(augmentation, tuple(sources))
    config = DatasetConfig(augmentation, output, tuple(sources))

    root = Path(opts["out"]).expanduser()
    quiet = opts["quiet"]

    def announce(pending: int) -> None:
        if not quiet and pending:
            names = sources[0].name if len(sources) == 1 else f"{len(sources)} images"
            click.echo(
                f"mono-gen: {output.samples:,} samples of {output.size}×{output.size} px from {names}, "
                f"{pending} of {output.num_shards} shards to write -> {root}",
                err=True,
            )

    outcome = generate(
        config,
        root,
        command=canonical_command(opts),
        formats=OUTPUT_FORMATS[opts["output_format"]],
        shards=range(*shard_range) if shard_range else None,
        workers=opts["workers"],
        progress=not quiet,
        cache_bytes=opts["cache_mb"] << 20,
        on_start=announce,
    )
    if quiet:
        return
    if outcome.complete:
        rate = ""
        if outcome.generated == outcome.total and outcome.seconds > 0:
            rate = f", {output.samples / outcome.seconds:,.0f} samples/s"
        verb = "wrote" if outcome.changed else "already complete:"
        held = [f"{outcome.total} shards"] if "webdataset" in outcome.formats else []
        held += [BETON] if "ffcv" in outcome.formats else []
        click.echo(
            f"mono-gen: {verb} {output.samples:,} samples in {' and '.join(held)} in {root} "
            f"({outcome.seconds:.1f} s{rate})",
            err=True,
        )
    else:
        click.echo(
            f"mono-gen: {outcome.present} of {outcome.total} shards present in {root}; generate the remaining "
            "ranges (or run the same command without --shards) to finish the dataset",
            err=True,
        )


def canonical_command(opts: dict) -> str:
    """The command that reproduces the dataset: every option that matters, none that does not."""
    words = ["mono-gen"]
    for name in ("image", "source", "n"):
        if opts[name] is not None:
            words += [f"--{name}", str(opts[name])]
    words += ["--preset", opts["preset"]]
    for name in ("samples", "size", "shard_size"):
        if opts[name] is not None:
            words += [f"--{name.replace('_', '-')}", str(opts[name])]
    if opts["augment"] != "all":
        words += ["--augment", opts["augment"]]
    words += ["--seed", str(opts["seed"])]
    defaults = Augmentation()
    for name in ("beta", "aspect", "max_angle", "brightness", "contrast", "saturation", "hue", "flip_prob", "colour"):
        value = opts[name]
        if value != getattr(defaults, name):
            words += [f"--{name.replace('_', '-')}", value if isinstance(value, str) else repr(value)]
    if opts["quality"] != 90:
        words += ["--quality", str(opts["quality"])]
    words += ["--out", str(opts["out"])]
    return shlex.join(words)


def main(args=None) -> None:
    run_cli(mono_gen, "mono-gen", args)


if __name__ == "__main__":
    main()
