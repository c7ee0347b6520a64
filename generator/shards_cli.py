"""mono-shards: check, describe, preview and export generated datasets."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from . import __version__
from .cli_errors import run_cli
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
      mono-shards preview shards/demo -o grid.png --count 64
      mono-shards export shards/demo --to folder ~/data/demo-folder
      mono-shards export shards/demo --to ffcv
    """


@mono_shards.command()
@click.argument("dataset")
@click.option("--decode", is_flag=True, help="Also decode every JPEG and check its size (slower).")
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def verify(dataset, decode, quiet):
    """Recompute every file's SHA-256 and size, and each shard's samples; exit 1 on any mismatch."""
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
    if not quiet:
        files = f"{report.shards} shards, " if report.shards else ""
        click.echo(f"{root}: OK, {files}{report.samples:,} samples, {report.bytes / 1e6:,.1f} MB verified")


@mono_shards.command()
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(dataset, as_json):
    """Summarise a dataset: sources, size, protocol, files, and how it was made."""
    from .manifest import formats_of, load

    root = _dataset_dir(dataset)
    out = DatasetDir(root)
    if not out.manifest.exists() and out.state_config.exists():
        present = len(list(root.glob("train-*.tar")))
        click.echo(f"{root}: incomplete dataset, {present} shards present; rerun its mono-gen command to finish")
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
    if "ffcv" in formats:
        lines.insert(-2, f"ffcv         {manifest['ffcv']['name']}, {manifest['ffcv']['bytes'] / 1e6:,.1f} MB")
    if "folder" in formats:
        lines.insert(-2, f"folder       {len(manifest['folder']['classes'])} class folders, exported from a dataset")
    click.echo("\n".join(lines))


@mono_shards.command()
@click.argument("dataset")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--count", default=64, show_default=True, help="Number of samples shown.")
@click.option("--columns", default=8, show_default=True)
@click.option("--start", default=0, show_default=True, help="Index of the first sample shown.")
@click.option("--tile", type=int, help="Resize each sample to this many pixels (default: native size).")
def preview(dataset, output, count, columns, start, tile):
    """Write a contact sheet (PNG) of samples, like the paper's Figures 7-10."""
    from .atomic import write_bytes
    from .preview import contact_sheet

    if count < 1 or columns < 1 or start < 0 or (tile is not None and tile < 1):
        raise UserError("--count, --columns and --tile must be positive and --start non-negative")
    root = _dataset_dir(dataset)
    try:
        sheet = contact_sheet(root, count=count, columns=columns, tile=tile, start=start)
    except ValueError as exc:
        raise UserError(f"{root}: {exc}") from None
    target = Path(output)
    if not target.parent.is_dir():
        raise UserError(f"{target.parent}: no such directory for the output")
    with tempfile.SpooledTemporaryFile() as buffer:
        sheet.save(buffer, format="PNG")
        buffer.seek(0)
        write_bytes(target, buffer.read(), fsync=False)
    click.echo(f"{target}: {count} samples from {root}", err=True)


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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def export(dataset, target, dest, quiet):
    """Copy a dataset's JPEG bytes, unchanged, into another layout.

    \b
    --to folder DEST   an ImageFolder tree for code that reads a folder (torchvision's ImageFolder,
                       the original DeepCluster); class folders sort in label order
    --to ffcv          train.beton inside the dataset, from its shards, recorded in its manifest
    """
    from .manifest import load

    root = _dataset_dir(dataset)
    manifest = load(root)
    if target == "folder" and not dest:
        raise UserError("--to folder needs a destination: mono-shards export DATASET --to folder DEST")
    if target == "ffcv" and dest:
        raise UserError("--to ffcv writes train.beton inside the dataset and takes no destination")
    try:
        if target == "folder":
            message = _export_folder(root, manifest, Path(dest).expanduser(), quiet)
        else:
            message = _export_ffcv(root, manifest, quiet)
    except OSError as exc:  # a full disk, a read-only destination: nothing partial is left behind
        raise UserError(f"{exc.filename or dest or root}: cannot write ({exc.strerror or exc})") from None
    if not quiet:
        click.echo(f"mono-shards: {message}", err=True)


def _export_folder(root: Path, manifest: dict, dest: Path, quiet: bool) -> str:
    from .export import export_folder
    from .manifest import FFCV, WEBDATASET, formats_of
    from .samples import iter_images

    if not {WEBDATASET, FFCV} & set(formats_of(manifest)):
        raise UserError(f"{root}: holds neither shards nor a .beton to export from")
    export_folder(iter_images(root), manifest, dest, progress=not quiet)
    return f"wrote {manifest['num_samples']:,} samples to {dest}"


def _export_ffcv(root: Path, manifest: dict, quiet: bool) -> str:
    from . import atomic, lock
    from .export import write_beton
    from .manifest import FFCV, WEBDATASET, card, command_with_formats, formats_of
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
        atomic.write_text(out.card, card(manifest))
        atomic.write_json(out.manifest, manifest)
    return f"wrote {out.beton} ({record['bytes'] / 1e6:,.1f} MB)"


def main(args=None) -> None:
    run_cli(mono_shards, "mono-shards", args)


if __name__ == "__main__":
    main()
