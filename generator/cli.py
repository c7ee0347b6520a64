"""mono-gen: expand source images into an augmented dataset of WebDataset shards and/or an FFCV file."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from . import __version__
from .augmentation import AUGMENTATIONS, Augmentation, parse_augment
from .cli_errors import run_cli
from .cli_options import alias, canonical
from .config import PRESETS, DatasetConfig, OutputSpec, check_sources_fit, default_shard_size
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
  mono-gen --source ~/imagenet/train -N 10 --seed 1 --out shards/in10
  mono-gen --image A --out /shared/a --shards 0:64        # one machine's part of a split run
  srun mono-gen --image A --out /shared/a --shards auto   # each SLURM task its share; the last finishes
  mono-gen --image A --format both --out shards/ameyoko   # shards and train.beton (FFCV); adds the .beton
                                                          # to a dataset made before
  mono-gen --from-manifest https://host/demo/ --image-dir ~/images --out shards/demo   # the same bytes again
  mono-gen --image A --out shards/ameyoko --dry-run      # bytes, time and free space; writes nothing

The paper's images A, B, C are looked up in --image-dir, $MONO_IMAGE_DIR, then the user cache
(~/.cache/mono/images), and downloaded there when missing and the network is reachable.
"""


def _shard_range(value: str | None) -> tuple[int, int] | str | None:
    if value is None or value == "auto":
        return value
    try:
        a, b = value.split(":")
        return int(a), int(b)
    except ValueError:
        raise click.BadParameter(f"expected a:b (shard indices, b exclusive) or auto, got {value!r}") from None


def auto_range(total: int, env=os.environ) -> tuple[range, int, int, str]:
    """This process's contiguous share of `total` shards under a scheduler: (range, rank, ranks, whose variables).
    torchrun's RANK/WORLD_SIZE first, then a SLURM array (one mono-gen per array task), then SLURM tasks (srun)."""
    for rank_name, size_name in (
        ("RANK", "WORLD_SIZE"),
        ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
        ("SLURM_PROCID", "SLURM_NTASKS"),
    ):
        if rank_name in env and size_name in env:
            break
    else:
        raise UserError(
            "--shards auto needs RANK and WORLD_SIZE (torchrun), SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT "
            "(a SLURM array) or SLURM_PROCID and SLURM_NTASKS (srun); none is set: give --shards a:b"
        )
    try:
        rank, ranks = int(env[rank_name]), int(env[size_name])
        if rank_name == "SLURM_ARRAY_TASK_ID":  # task ids run from --array's first, by its step
            rank = (rank - int(env.get("SLURM_ARRAY_TASK_MIN", 0))) // int(env.get("SLURM_ARRAY_TASK_STEP", 1))
    except (ValueError, ZeroDivisionError):
        values = f"{rank_name}={env[rank_name]!r}, {size_name}={env[size_name]!r}"
        raise UserError(f"--shards auto: {values} are not numbers") from None
    if not 0 <= rank < ranks:
        raise UserError(
            f"--shards auto: rank {rank} from {rank_name} is outside 0..{ranks - 1} ({size_name}={ranks}); "
            "a SLURM array must be contiguous (--array=0-N or with a step)"
        )
    return range(rank * total // ranks, (rank + 1) * total // ranks), rank, ranks, f"{rank_name}/{size_name}"


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
@canonical(
    "-N",
    "--num-sources",
    "num_sources",
    type=int,
    metavar="N",
    help="Number of source images to choose from --source with the seed [default: all].",
)
@alias("--n", to="num_sources", type=int)
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
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds the choice of sources and every augmentation."
)
@click.option("--quality", type=int, default=90, show_default=True, help="JPEG quality.")
@click.option(
    "--shard-size",
    type=int,
    help="Samples per shard (default: about 5,000 for imagenet, 1,000 for cifar, making a multiple of 64 shards).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(OUTPUT_FORMATS)),
    default="webdataset",
    show_default=True,
    help="webdataset: tar shards; ffcv: train.beton (the shards are deleted once it is "
    "complete); both. Formats a directory already holds are kept.",
)
@click.option(
    "--shards",
    "shard_range",
    metavar="a:b|auto",
    help="Generate only shards a..b-1 (split a run over machines); auto: this process's share under torchrun "
    "(RANK/WORLD_SIZE) or SLURM (array or srun tasks), all writing one --out; the last to finish writes the manifest.",
)
@click.option(
    "-j",
    "--workers",
    type=int,
    default=_default_workers,
    show_default="auto",
    metavar="N",
    help="Worker processes. auto: all the CPU cores this process may use.",
)
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
@click.option(
    "--brightness",
    type=float,
    default=Augmentation.brightness,
    show_default=True,
    help="Colour jitter: brightness factor range 1 ± this.",
)
@click.option(
    "--contrast",
    type=float,
    default=Augmentation.contrast,
    show_default=True,
    help="Colour jitter: contrast factor range 1 ± this.",
)
@click.option(
    "--saturation",
    type=float,
    default=Augmentation.saturation,
    show_default=True,
    help="Colour jitter: saturation factor range 1 ± this.",
)
@click.option(
    "--hue",
    type=float,
    default=Augmentation.hue,
    show_default=True,
    help="Colour jitter: hue shift range ± this (of a full turn).",
)
@click.option(
    "--flip-prob",
    type=float,
    default=Augmentation.flip_prob,
    show_default=True,
    help="Probability of a horizontal flip.",
)
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
@click.option(
    "--from-manifest",
    "from_manifest",
    metavar="PATH|URL",
    help="Regenerate the dataset a manifest describes (a dataset directory, its manifest.json, or their URL): "
    "its configuration, with the source images found by SHA-256 in --image-dir or --source; reports whether the "
    "bytes match the recorded SHA-256 (exit 1 if not).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what the run would write (samples, shards, bytes and time measured on this machine, free disk "
    "space) and write nothing.",
)
@click.option("--force", is_flag=True, help="Start even when the estimate says the disk cannot hold the dataset.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or start line (errors and the summary stay).")
@click.option("-o", "--out", required=True, type=click.Path(), metavar="DIR", help="Output directory (created).")
@click.version_option(__version__, prog_name="mono-gen")
def mono_gen(**opts):
    """Expand N source images into d augmented samples, written as WebDataset shards (and/or FFCV's
    .beton) with a manifest.

    Implements the augmentation protocol of Asano, Rupprecht & Vedaldi (ICLR 2020, section 3.1):
    rotation before cropping, random crops, flips and colour jitter. The same command and seed give
    the same bytes whatever --workers is; an interrupted run resumes when run again.
    """
    from .sources import resolve

    if opts["from_manifest"] is not None:
        _regenerate(opts)
        return
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
        samples = opts["samples"] if opts["samples"] is not None else preset["samples"]
        default_size = default_shard_size(samples, preset["shard_size"]) if samples > 0 else preset["shard_size"]
        output = OutputSpec(
            samples=samples,
            size=opts["size"] if opts["size"] is not None else preset["size"],
            seed=opts["seed"],
            quality=opts["quality"],
            shard_size=opts["shard_size"] if opts["shard_size"] is not None else default_size,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if opts["workers"] < 1:
        raise UserError(f"--workers must be at least 1, got {opts['workers']}")
    if opts["max_pixels"] < 1 or opts["cache_mb"] < 1:
        raise UserError("--max-pixels and --cache-mb must be positive")
    _shard_range(opts["shard_range"])  # a mistake in it is reported before the sources are read

    sources = resolve(
        opts["image"], opts["image_dir"], opts["num_sources"], opts["source"], opts["seed"], opts["max_pixels"]
    )
    if len(sources) > output.samples:
        raise UserError(
            f"{len(sources)} source images but only {output.samples} samples: every source needs at least one"
        )
    check_sources_fit(augmentation, tuple(sources))
    config = DatasetConfig(augmentation, output, tuple(sources))

    _generate(config, opts, canonical_command(opts, output), OUTPUT_FORMATS[opts["output_format"]])


# Options that fix the bytes, which --from-manifest takes from the manifest instead.
CONFIG_OPTIONS = (
    "image", "num_sources", "preset", "samples", "size", "augment", "seed", "quality", "shard_size", "output_format",
    "beta", "aspect", "max_angle", "brightness", "contrast", "saturation", "hue", "flip_prob", "colour",
)  # fmt: skip


def _regenerate(opts: dict) -> None:
    """--from-manifest: the recorded configuration, the sources found by hash, then the bytes compared."""
    from . import manifest as manifest_mod
    from . import regenerate

    context = click.get_current_context()
    given = [n for n in CONFIG_OPTIONS if context.get_parameter_source(n) != click.core.ParameterSource.DEFAULT]
    if given:
        flag = "--format" if given[0] == "output_format" else f"--{given[0].replace('_', '-')}"
        raise UserError(f"{flag} comes from the manifest with --from-manifest; leave it out")
    if opts["workers"] < 1:
        raise UserError(f"--workers must be at least 1, got {opts['workers']}")
    if opts["max_pixels"] < 1 or opts["cache_mb"] < 1:
        raise UserError("--max-pixels and --cache-mb must be positive")
    _shard_range(opts["shard_range"])
    recorded, where = regenerate.load(opts["from_manifest"])
    sources = regenerate.find_sources(recorded, opts["image_dir"], opts["source"], opts["max_pixels"])
    config = regenerate.config_of(recorded, sources, where)
    formats = manifest_mod.formats_of(recorded)
    outcome = _generate(config, opts, regenerate.command_for(recorded, opts["out"]), formats)
    if outcome is None or not outcome.complete:
        return
    root = Path(opts["out"]).expanduser()
    differing = regenerate.differences(recorded, manifest_mod.load(root))
    total = len(manifest_mod.data_files(recorded))
    if differing:
        click.echo(
            f"mono-gen: {root}: {len(differing)} of {total} files differ from the SHA-256 {where} records "
            f"(first: {differing[0]}); library versions that changed: {regenerate.version_changes(recorded)}",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"mono-gen: {root}: all {total} files have the SHA-256 {where} records", err=True)


def _generate(config: DatasetConfig, opts: dict, command: str, formats: tuple[str, ...]):
    from .generate import generate

    output = config.output
    shard_range = _shard_range(opts["shard_range"])
    shared = shard_range == "auto"
    if shared:
        shards, rank, ranks, names = auto_range(output.num_shards)
    else:
        shards = range(*shard_range) if shard_range else None
    root = Path(opts["out"]).expanduser()
    quiet = opts["quiet"]
    if not _preflight(config, root, formats, shards, opts):
        return None
    outcome = generate(
        config,
        root,
        command=command,
        formats=formats,
        shards=shards,
        workers=opts["workers"],
        progress=not quiet,
        cache_bytes=opts["cache_mb"] << 20,
        shared=shared,
    )
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
    elif shared:
        click.echo(
            f"mono-gen: rank {rank} of {ranks} ({names}) made shards {shards.start}:{shards.stop}; "
            f"{outcome.present} of {outcome.total} shards present in {root}; the last rank to finish writes the "
            f"manifest (or, once all have: mono-shards finish {root})",
            err=True,
        )
    else:
        click.echo(
            f"mono-gen: {outcome.present} of {outcome.total} shards present in {root}; generate the remaining "
            "ranges (or run the same command without --shards) to finish the dataset",
            err=True,
        )
    return outcome


def _preflight(config: DatasetConfig, root: Path, formats: tuple[str, ...], shards: range | None, opts: dict) -> bool:
    """One line on stdout of what the run will take (always with --dry-run, unless --quiet otherwise); refuse a run
    the disk cannot hold. Returns whether to go on."""
    from .estimate import estimate, human_bytes

    output, sources = config.output, config.sources
    total = output.num_shards
    shards = range(total) if shards is None else shards
    empty = shards.start >= shards.stop and opts["shard_range"] != "auto"  # more ranks than shards may leave none
    if shards.start < 0 or shards.stop > total or empty:  # as generate() says it, before anything is measured
        raise UserError(f"--shards {shards.start}:{shards.stop} is outside the dataset's {total} shards (0:{total})")
    found = estimate(config, root, formats, shards, opts["workers"])
    workers = max(1, min(opts["workers"], found.shards))
    if opts["dry_run"] or not opts["quiet"]:
        names = sources[0].name if len(sources) == 1 else f"{len(sources)} images"
        click.echo(
            f"mono-gen: {output.samples:,} samples of {output.size}×{output.size} px from {names} -> {root}: "
            f"{found.line(workers)}"
        )
    if not found.fits and not opts["force"]:
        raise UserError(
            f"{root}: the dataset needs about {human_bytes(found.bytes)} but {found.where} has "
            f"{human_bytes(found.free)} free; free some space, choose another --out, or give --force"
        )
    return not opts["dry_run"]


def canonical_command(opts: dict, output: OutputSpec) -> str:
    """The command that reproduces the dataset: every option that matters, none that does not. The shard size is
    always given: its default may change between versions, and it is part of the configuration."""
    words = ["mono-gen"]
    for name in ("image", "source", "num_sources"):
        if opts[name] is not None:
            words += [f"--{name.replace('_', '-')}", str(opts[name])]
    words += ["--preset", opts["preset"]]
    for name in ("samples", "size"):
        if opts[name] is not None:
            words += [f"--{name.replace('_', '-')}", str(opts[name])]
    words += ["--shard-size", str(output.shard_size)]
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
