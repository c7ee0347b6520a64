"""mono-shards: check, describe and preview generated datasets."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from . import __version__
from .cli import run_cli
from .errors import UserError
from .layout import DatasetDir


def _dataset_dir(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset directory")
    return root


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mono-shards")
def mono_shards():
    """Check, describe and preview datasets made by mono-gen.

    \b
    Examples:
      mono-shards verify shards/demo
      mono-shards info shards/demo
      mono-shards preview shards/demo -o grid.png --count 64
    """


@mono_shards.command()
@click.argument("dataset")
@click.option("--decode", is_flag=True, help="Also decode every JPEG and check its size (slower).")
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def verify(dataset, decode, quiet):
    """Recompute every shard's SHA-256, size and sample count; exit 1 on any mismatch."""
    from tqdm import tqdm

    from .manifest import load
    from .readback import verify as run_verify

    root = _dataset_dir(dataset)
    total = sum(s["bytes"] for s in load(root)["shards"])
    with tqdm(total=total, unit="B", unit_scale=True, disable=quiet, dynamic_ncols=True, desc="verify") as bar:
        report = run_verify(root, decode=decode, on_bytes=bar.update)
    for problem in report.problems:
        click.echo(f"mono-shards: {root}: {problem}", err=True)
    if not report.ok:
        click.echo(f"mono-shards: {root}: FAILED, {len(report.problems)} problem(s)", err=True)
        raise SystemExit(1)
    if not quiet:
        click.echo(f"{root}: OK, {report.shards} shards, {report.samples:,} samples, {report.bytes / 1e6:,.1f} MB verified")


@mono_shards.command()
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(dataset, as_json):
    """Summarise a dataset: sources, size, protocol, shards, and how it was made."""
    from .manifest import load

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
    total = sum(s["bytes"] for s in manifest["shards"])
    lines = [
        f"dataset      {root}",
        f"samples      {manifest['num_samples']:,} of {output['size']}×{output['size']} px, JPEG quality {output['quality']}",
        f"sources      {len(manifest['sources'])}: " + ", ".join(s["name"] for s in manifest["sources"][:5])
        + (" …" if len(manifest["sources"]) > 5 else ""),
        f"augment      {', '.join(proto['augment']) or 'none'} (beta {proto['beta']}, aspect {proto['aspect']:.4g}, "
        f"angle ±{proto['max_angle']}°, jitter b/c/s {proto['brightness']}/{proto['contrast']}/{proto['saturation']}, "
        f"hue ±{proto['hue']}, flip p {proto['flip_prob']})",
        f"seed         {output['seed']}",
        f"shards       {len(manifest['shards'])} × {output['shard_size']:,} samples, {manifest['shard_pattern']}, "
        f"{total / 1e6:,.1f} MB",
        f"made with    mono-gen {manifest['generator']['version']}: {manifest['command']}",
        f"config hash  {manifest['config_sha256']}",
    ]
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


def main(args=None) -> None:
    run_cli(mono_shards, "mono-shards", args)


if __name__ == "__main__":
    main()
