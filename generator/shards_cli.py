"""mono-shards: check, describe, preview and export generated datasets."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from . import __version__
from .cli_errors import run_cli
from .cli_options import alias, canonical
from .dataset_dir import DatasetDir
from .errors import UserError


def _dataset_dir(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset directory")
    return root


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mono-shards")
def mono_shards():
    """Check, describe, preview and export datasets made by mono-gen.

    \b
    Examples:
      mono-shards verify shards/demo
      mono-shards info shards/demo
      mono-shards preview shards/demo -o grid.png -n 64
      mono-shards show shards/demo 17 -o sample17.png    # its parameters, and its crop on the source image
      mono-shards export shards/demo --to folder ~/data/demo-folder
      mono-shards export shards/demo --to ffcv
      mono-shards pull https://host/datasets/demo/ ~/data/demo
      mono-shards finish /shared/demo       # after mono-gen --shards auto on a cluster
    """


@mono_shards.command()
@click.argument("dataset")
@click.option("--decode", is_flag=True, help="Also decode every JPEG and check its size (slower).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (problems and the summary stay).")
def verify(dataset, decode, quiet):
    """Recompute every file's SHA-256 and size, and each shard's samples; exit 1 on any mismatch.

    \b
    Examples:
      mono-shards verify shards/demo
      mono-shards verify shards/demo --decode -q
    """
    from tqdm import tqdm

    from .manifest import load
    from .verify import verified_bytes
    from .verify import verify as run_verify

    root = _dataset_dir(dataset)
    total = verified_bytes(load(root))
    with tqdm(total=total, unit="B", unit_scale=True, disable=quiet, dynamic_ncols=True, desc="verify") as bar:
        report = run_verify(root, decode=decode, on_bytes=bar.update)
    for problem in report.problems:
        click.echo(f"mono-shards: {root}: {problem}", err=True)
    if not report.ok:
        click.echo(f"mono-shards: {root}: FAILED, {len(report.problems)} problem(s)", err=True)
        raise SystemExit(1)
    files = f"{report.shards} shards, " if report.shards else ""
    click.echo(f"{root}: OK, {files}{report.samples:,} samples, {report.bytes / 1e6:,.1f} MB verified")


@mono_shards.command()
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(dataset, as_json):
    """Summarise a dataset: sources, size, protocol, files, and how it was made.

    \b
    Examples:
      mono-shards info shards/demo
      mono-shards info shards/demo --json
    """
    from .manifest import formats_of, load

    root = _dataset_dir(dataset)
    out = DatasetDir(root)
    if not out.manifest.exists() and out.state_config.exists():
        present = len(list(root.glob("train-*.tar")))
        click.echo(
            f"{root}: incomplete dataset, {present} shards present; rerun its mono-gen command to finish "
            f"(after --shards auto: mono-shards finish {root})"
        )
        return
    manifest = load(root)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    cfg = manifest["config"]
    proto, output = cfg["protocol"], cfg["output"]
    formats = formats_of(manifest)
    total = sum(s["bytes"] for s in manifest["shards"])
    if "webdataset" in formats:
        held = (
            f"{len(manifest['shards'])} shards × {output['shard_size']:,} samples, {manifest['shard_pattern']}, "
            f"{total / 1e6:,.1f} MB"
        )
    else:
        held = "none (regenerate them with mono-gen --format both)" if "ffcv" in formats else "none"
    lines = [
        f"dataset      {root}",
        f"samples      {manifest['num_samples']:,} of {output['size']}×{output['size']} px, "
        f"JPEG quality {output['quality']}",
        f"sources      {len(manifest['sources'])}: "
        + ", ".join(s["name"] for s in manifest["sources"][:5])
        + (" …" if len(manifest["sources"]) > 5 else ""),
        f"augment      {', '.join(proto['augment']) or 'none'} (beta {proto['beta']}, aspect {proto['aspect']:.4g}, "
        f"angle ±{proto['max_angle']}°, jitter b/c/s {proto['brightness']}/{proto['contrast']}/{proto['saturation']}, "
        f"hue ±{proto['hue']}, flip p {proto['flip_prob']})",
        f"seed         {output['seed']}",
        f"shards       {held}",
        f"made with    mono-gen {manifest['generator']['version']}: {manifest['command']}",
        f"config hash  {manifest['config_sha256']}",
    ]
    if "webdataset" in formats:
        count = len(manifest["shards"])
        even = ", ".join(str(n) for n in range(1, min(count, 64) + 1) if count % n == 0)
        lines.insert(-2, f"readers      ranks × workers that split the {count:,} shards evenly: {even}")
    if "ffcv" in formats:
        lines.insert(-2, f"ffcv         {manifest['ffcv']['name']}, {manifest['ffcv']['bytes'] / 1e6:,.1f} MB")
    if "folder" in formats:
        lines.insert(-2, f"folder       {len(manifest['folder']['classes'])} class folders, exported from a dataset")
    click.echo("\n".join(lines))


@mono_shards.command()
@click.argument("dataset")
@canonical(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="PNG file to write.  [required]",
)
@alias("--output", to="out", type=click.Path(dir_okay=False))
@click.option("-n", "--count", default=64, show_default=True, help="Number of samples shown.")
@click.option("--columns", default=8, show_default=True, help="Samples per row.")
@click.option("--start", default=0, show_default=True, help="Index of the first sample shown.")
@click.option(
    "--tile",
    type=int,
    metavar="PX",
    help="Side of each sample in pixels, enlarged nearest-neighbour [default: 32 px samples at 96 px, "
    "larger ones as they are].",
)
def preview(dataset, out, count, columns, start, tile):
    """Write a contact sheet (PNG) of samples, like the paper's Figures 7-10.

    \b
    Examples:
      mono-shards preview shards/demo -o grid.png
      mono-shards preview shards/demo -o first16.png -n 16 --columns 4 --tile 128
    """
    from .atomic import write_bytes
    from .preview import contact_sheet

    if count < 1 or columns < 1 or start < 0 or (tile is not None and tile < 1):
        raise UserError("--count, --columns and --tile must be positive and --start non-negative")
    if out is None:
        raise click.UsageError("Missing option '-o' / '--out'.")
    root = _dataset_dir(dataset)
    try:
        sheet = contact_sheet(root, count=count, columns=columns, tile=tile, start=start)
    except ValueError as exc:
        raise UserError(f"{root}: {exc}") from None
    target = Path(out)
    if not target.parent.is_dir():
        raise UserError(f"{target.parent}: no such directory for the output")
    with tempfile.SpooledTemporaryFile() as buffer:
        sheet.save(buffer, format="PNG")
        buffer.seek(0)
        write_bytes(target, buffer.read(), fsync=False)
    click.echo(f"{target}: {count} samples from {root}", err=True)


@mono_shards.command()
@click.argument("dataset")
@click.argument("index", type=int)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Also draw the sample beside its source image with the crop it was taken from.",
)
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    metavar="PX",
    help="Side of the sample in the picture (nearest-neighbour) [default: small samples enlarged to about 256 px].",
)
@click.option("--image-dir", type=click.Path(file_okay=False), help="Folder holding the source images.")
@click.option("--source", metavar="DIR|LIST", help="Folder or list of source images (as mono-gen --source).")
def show(dataset, index, out, tile, image_dir, source):
    """Print sample INDEX's augmentation parameters (JSON); with -o, draw it beside the region of its source image
    it was taken from (the source is found by its SHA-256, as mono-gen --from-manifest finds it).

    \b
    Examples:
      mono-shards show shards/demo 0
      mono-shards show shards/demo 17 -o sample17.png --image-dir ~/images
    """
    from .atomic import write_bytes
    from .show import find_source, load_image, picture, read_sample, sample_image

    root = _dataset_dir(dataset)
    target = Path(out) if out else None
    if target is not None and not target.parent.is_dir():
        raise UserError(f"{target.parent}: no such directory for the output")
    manifest, jpeg, params = read_sample(root, index)
    click.echo(json.dumps(params, indent=2))
    if target is None:
        return
    try:
        origin = find_source(manifest, params["source"], image_dir, source)
    except UserError as exc:
        click.echo(f"mono-shards: {exc}; the picture shows the sample alone", err=True)
        origin = None
    image = picture(sample_image(jpeg), params, load_image(origin) if origin else None, tile)
    with tempfile.SpooledTemporaryFile() as buffer:
        image.save(buffer, format="PNG")
        buffer.seek(0)
        write_bytes(target, buffer.read(), fsync=False)
    where = f" and its crop on {origin}" if origin else ""
    click.echo(f"{target}: sample {index} of {root}{where}", err=True)


@mono_shards.command()
@click.argument("dataset")
@click.option(
    "--to",
    "target",
    type=click.Choice(["folder", "ffcv"]),
    required=True,
    help="folder: an ImageFolder tree DEST/<label>-<source>/<index>.jpg; ffcv: DATASET/train.beton.",
)
@click.argument("dest", required=False)
@click.option(
    "--layout",
    type=click.Choice(["flat", "train"]),
    default="flat",
    show_default=True,
    help="--to folder: DEST/<class>/…, or DEST/train/<class>/… for torchvision's reference scripts.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (errors and the summary stay).")
def export(dataset, target, dest, layout, quiet):
    """Copy a dataset's JPEG bytes, unchanged, into another layout.

    \b
    --to folder DEST   an ImageFolder tree for code that reads a folder (torchvision's ImageFolder,
                       the original DeepCluster); class folders sort in label order; metadata.jsonl
                       and the card's front matter make it a Hugging Face imagefolder with named classes
    --to ffcv          train.beton inside the dataset, from its shards, recorded in its manifest

    \b
    Examples:
      mono-shards export shards/demo --to folder ~/data/demo-folder
      mono-shards export shards/demo --to folder ~/data/demo-tv --layout train   # ~/data/demo-tv/train/<class>/
      mono-shards export shards/demo --to ffcv
    """
    from .manifest import load

    root = _dataset_dir(dataset)
    manifest = load(root)
    if target == "folder" and not dest:
        raise UserError("--to folder needs a destination: mono-shards export DATASET --to folder DEST")
    if target == "ffcv" and dest:
        raise UserError("--to ffcv writes train.beton inside the dataset and takes no destination")
    if target == "ffcv" and layout != "flat":
        raise UserError("--layout is for --to folder")
    try:
        if target == "folder":
            message = _export_folder(root, manifest, Path(dest).expanduser(), layout, quiet)
        else:
            message = _export_ffcv(root, manifest, quiet)
    except OSError as exc:  # a full disk, a read-only destination: nothing partial is left behind
        raise UserError(f"{exc.filename or dest or root}: cannot write ({exc.strerror or exc})") from None
    click.echo(f"mono-shards: {message}", err=True)


def _export_folder(root: Path, manifest: dict, dest: Path, layout: str, quiet: bool) -> str:
    from .export import export_folder
    from .manifest import FFCV, WEBDATASET, formats_of
    from .samples import iter_with_params

    if not {WEBDATASET, FFCV} & set(formats_of(manifest)):
        raise UserError(f"{root}: holds neither shards nor a .beton to export from")
    export_folder(iter_with_params(root), manifest, dest, layout, progress=not quiet)
    return f"wrote {manifest['num_samples']:,} samples to {dest}"


def _export_ffcv(root: Path, manifest: dict, quiet: bool) -> str:
    from . import lock
    from .card import write_manifest
    from .export import write_beton
    from .manifest import FFCV, WEBDATASET, command_with_formats, formats_of
    from .samples import iter_shards

    formats = formats_of(manifest)
    if WEBDATASET not in formats:
        raise UserError(f"{root}: has no shards to make a .beton from")
    out = DatasetDir(root)
    with lock.hold(root, "mono-shards"):  # the dataset's files change: no mono-gen may write it meanwhile
        samples = iter_shards(root, manifest["shards"], manifest["num_classes"])
        record = write_beton(out.beton, samples, manifest["num_samples"], manifest["image_size"], progress=not quiet)
        formats = (WEBDATASET, FFCV)
        manifest.update(formats=list(formats), ffcv=record, command=command_with_formats(manifest["command"], formats))
        write_manifest(root, manifest)
    return f"wrote {out.beton} ({record['bytes'] / 1e6:,.1f} MB)"


@mono_shards.command()
@click.argument("dataset")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (errors and the summary stay).")
def finish(dataset, quiet):
    """Finish a dataset whose shards several processes rendered (mono-gen --shards auto).

    \b
    The last rank to finish writes the manifest itself; run this when none could (two finished at
    once), or as a job that depends on all of them. It needs every shard: it names the first
    missing one otherwise. Then it writes train.beton if the command asked for it, _info.json, the
    card and manifest.json, and removes the run state. The result is byte for byte what one
    machine makes with the same command.

    \b
    Examples:
      mono-shards finish /shared/ameyoko
      sbatch --dependency=afterok:$ARRAY_JOB --wrap "mono-shards finish /shared/ameyoko"
    """
    from .generate import finish as run_finish

    root = _dataset_dir(dataset)
    outcome = run_finish(root, progress=not quiet)
    verb = "finished" if outcome.changed else "already complete:"
    click.echo(f"mono-shards: {verb} {root}, {outcome.total} shards", err=True)


@mono_shards.command()
@click.argument("url")
@click.argument("dest")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (errors and the summary stay).")
def pull(url, dest, quiet):
    """Download a dataset directory published over HTTP(S) into DEST, and verify it.

    \b
    URL is the directory that holds manifest.json (or the manifest's own URL). The manifest is
    fetched first and must list plain file names only; each file it lists is then downloaded next
    to it, checked against the manifest's size and SHA-256 and renamed into place, and the copy is
    verified as `mono-shards verify` does. An interrupted pull resumes where it stopped when run
    again (HTTP Range requests); files already in DEST with the right bytes are kept. DEST must
    be new, empty, or an earlier pull of the same dataset.

    \b
    Examples:
      mono-shards pull https://host/datasets/demo/ ~/data/demo
      mono-shards pull https://host/datasets/demo/manifest.json ~/data/demo -q
    """
    from tqdm import tqdm

    from .pull import pull as run_pull
    from .verify import verified_bytes
    from .verify import verify as run_verify

    target = Path(dest).expanduser()
    downloaded = run_pull(url, target, progress=not quiet)
    manifest_total = verified_bytes(json.loads((target / "manifest.json").read_bytes()))
    with tqdm(total=manifest_total, unit="B", unit_scale=True, disable=quiet, dynamic_ncols=True, desc="verify") as bar:
        report = run_verify(target, on_bytes=bar.update)
    if not report.ok:  # every file had the manifest's SHA-256: the published dataset itself is inconsistent
        raise UserError(
            f"{target}: the pulled copy fails verification, {len(report.problems)} problem(s), first: "
            f"{report.problems[0]}; check it with mono-shards verify"
        )
    click.echo(
        f"mono-shards: {target}: {report.samples:,} samples, {report.bytes / 1e6:,.1f} MB verified "
        f"({downloaded / 1e6:,.1f} MB downloaded)",
        err=True,
    )


def main(args=None) -> None:
    run_cli(mono_shards, "mono-shards", args)


if __name__ == "__main__":
    main()
