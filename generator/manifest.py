"""The manifest (manifest.json) and the dataset card (README.md) of a finished dataset."""

from __future__ import annotations

import json
import math
import platform
import re
import shlex
import sys
from pathlib import Path

from . import __version__
from .config import DatasetConfig
from .dataset_dir import MANIFEST, shard_pattern
from .errors import UserError

FORMAT = "mono-dataset"
FORMAT_VERSION = 1
# Layouts a dataset directory can hold. A manifest without "formats" predates them: webdataset only.
WEBDATASET, FFCV, FOLDER = "webdataset", "ffcv", "folder"
OUTPUT_FORMATS = {"webdataset": (WEBDATASET,), "ffcv": (FFCV,), "both": (WEBDATASET, FFCV)}


def library_versions() -> dict:
    import cv2
    import numpy
    import PIL

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def formats_of(manifest: dict) -> tuple[str, ...]:
    return tuple(manifest.get("formats", (WEBDATASET,)))


def command_with_formats(command: str, formats) -> str:
    """The command with the --format option that makes `formats` (webdataset is the default)."""
    words = shlex.split(command)
    if "--format" in words:
        at = words.index("--format")
        del words[at : at + 2]
    name = next(name for name, fs in OUTPUT_FORMATS.items() if set(fs) == set(formats))
    if name != "webdataset":
        at = words.index("--out") if "--out" in words else len(words)
        words[at:at] = ["--format", name]
    return shlex.join(words)


def build(
    config: DatasetConfig, shards: list[dict], command: str, formats=(WEBDATASET,), ffcv: dict | None = None
) -> dict:
    """The manifest: what the dataset is, how it was made, and a checksum for every file."""
    out = config.output
    formats = [f for f in (WEBDATASET, FFCV) if f in formats]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": {"name": "mono-gen", "version": __version__, "libraries": library_versions()},
        "command": command_with_formats(command, formats),
        "config": config.to_dict(),
        "config_sha256": config.sha256(),
        "num_samples": out.samples,
        "image_size": out.size,
        "num_classes": len(config.sources),
        "sources": [
            {
                "index": j,
                "name": s.name,
                "sha256": s.sha256,
                "width": s.width,
                "height": s.height,
                "origin": s.origin,
                "path": s.path,
                "samples": config.samples_of_source(j),
            }
            for j, s in enumerate(config.sources)
        ],
        "shard_pattern": shard_pattern(len(shards)),
        "keys": {
            "jpg": "JPEG image, RGB, S×S",
            "cls": "source image index (ASCII integer)",
            "json": "augmentation parameters",
        },
        "shards": shards,
        "formats": formats,
    }
    if ffcv is not None:
        manifest["ffcv"] = ffcv
    return manifest


def load(root: Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{root}: no {MANIFEST}; not a mono dataset (or generation has not finished)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not a mono dataset manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path}: manifest format version {manifest.get('format_version')} is not supported by this mono-gen"
        )
    problem = malformed(manifest)
    if problem:
        raise UserError(f"{path}: malformed manifest: {problem}")
    return manifest


def plain_name(name) -> bool:
    """Whether `name` names a file directly inside the dataset directory: no separator, scheme (`pipe:`,
    `http:`), parent, absolute path or hidden file. A manifest names files by such names only, so that
    reading a dataset never opens anything outside it, nor runs anything."""
    return isinstance(name, str) and len(name) <= 255 and _PLAIN_NAME.fullmatch(name) is not None


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _integer(low: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low, f"an integer >= {low}"


_NUMBER = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), "a finite number")
_TEXT = (lambda v: isinstance(v, str), "a string")
_SHA256 = (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None, "a SHA-256 hex digest")
_NAME = (plain_name, "a plain file name in the dataset directory")
_FILE = {"name": _NAME, "bytes": _integer(0), "sha256": _SHA256}
_SCHEMA = {
    "generator": {"version": _TEXT},
    "command": _TEXT,
    "config": {
        "algorithm": _TEXT,
        "protocol": {
            "augment": [_TEXT],
            **dict.fromkeys(
                ("beta", "aspect", "max_angle", "brightness", "contrast", "saturation", "hue", "flip_prob"), _NUMBER
            ),
        },
        "output": {
            "samples": _integer(1),
            "size": _integer(1),
            "seed": _integer(0),
            "quality": _integer(1),
            "shard_size": _integer(1),
        },
        "sources": [{"name": _TEXT, "sha256": _SHA256, "width": _integer(1), "height": _integer(1)}],
    },
    "config_sha256": _SHA256,
    "num_samples": _integer(1),
    "image_size": _integer(1),
    "num_classes": _integer(1),
    "sources": [{"index": _integer(0), "name": _TEXT, "sha256": _SHA256, "samples": _integer(0)}],
    "shard_pattern": _TEXT,
    "shards": [{**_FILE, "first": _integer(0), "count": _integer(1)}],
}
_FORMAT_SCHEMA = {FFCV: {"ffcv": _FILE}, FOLDER: {"folder": {"classes": [_NAME]}}}


def malformed(manifest: dict) -> str | None:
    """What makes a manifest unusable, in a few words (a missing field, a wrong type, a name that leaves
    the directory), or None: readers index these fields without further checks."""
    formats = manifest.get("formats", [WEBDATASET])
    if not isinstance(formats, list) or not formats or not set(formats) <= {WEBDATASET, FFCV, FOLDER}:
        return f"formats must be a list of {WEBDATASET}, {FFCV} and {FOLDER}"
    schema = dict(_SCHEMA)
    for name in formats:
        schema.update(_FORMAT_SCHEMA.get(name, {}))
    problem = _mismatch(manifest, schema, "")
    if problem is None and FOLDER in formats and "checksums" in manifest["folder"]:  # exports since SHA256SUMS
        problem = _mismatch(manifest["folder"]["checksums"], _FILE, "folder.checksums.")
    return problem


def _mismatch(value, schema, where: str) -> str | None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where.rstrip('.') or 'the manifest'} must be an object"
        for key, sub in schema.items():
            if key not in value:
                return f"{where}{key} is missing"
            problem = _mismatch(value[key], sub, f"{where}{key}.")
            if problem:
                return problem
        return None
    where = where.rstrip(".")
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where} must be a list"
        for i, item in enumerate(value):
            problem = _mismatch(item, schema[0], f"{where}[{i}].")
            if problem:
                return problem
        return None
    check, description = schema
    if not check(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return f"{where} must be {description}, not {shown}"
    return None


def card(manifest: dict) -> str:
    """A short dataset card: what it is, how it was made, how to load it, checksums."""
    cfg = manifest["config"]
    proto = cfg["protocol"]
    out = cfg["output"]
    sources = manifest["sources"]
    formats = formats_of(manifest)
    augment = ", ".join(proto["augment"]) or "none"
    if len(sources) == 1:
        what = f"one source image, `{sources[0]['name']}`"
    else:
        what = f"{len(sources)} source images (listed in manifest.json)"
    files = manifest["shards"] if WEBDATASET in formats else []
    files = files + ([manifest["ffcv"]] if FFCV in formats else [])
    checksums = "\n".join(f"{f['sha256']}  {f['name']}" for f in files)
    loading = "\n\n".join(
        part
        for part in (
            _load_webdataset(manifest) if WEBDATASET in formats else "",
            _load_ffcv(manifest) if FFCV in formats else "",
        )
        if part
    )
    return f"""# Single-image dataset: {manifest["num_samples"]:,} samples of {out["size"]}×{out["size"]} px

Generated by mono-gen {manifest["generator"]["version"]} from {what}, with the augmentation protocol of
Asano, Rupprecht & Vedaldi, *A critical analysis of self-supervision, or what we can learn from a single
image* (ICLR 2020), section 3.1: rotation before cropping (no pixel from outside the image), random crops
with area fraction in [{proto["beta"]}, 1] and aspect ratio in [{proto["aspect"]:.4g}, {1 / proto["aspect"]:.4g}],
left-right flips, colour jitter. Augmentations used: {augment}. Seed {out["seed"]}, JPEG quality {out["quality"]}.

Samples are spread evenly over the source images; a sample's label is the index of its source.

## How it was made

```
{manifest["command"]}
```

The same command (and mono-gen version) reproduces these files byte for byte; configuration hash
`{manifest["config_sha256"]}`.

## Loading it

{loading}

Scale pixels to the range your trainer expects (for GANs, (−1, 1)); they are stored as plain 8-bit RGB.
`mono-shards verify .` checks every file against this card's checksums.

## Checksums (SHA-256)

```
{checksums}
```
"""


def _load_webdataset(manifest: dict) -> str:
    pattern = manifest["shard_pattern"]
    shards = f"{len(manifest['shards'])} WebDataset shards, `{pattern}`; "
    return (
        shards
        + f"""each sample has `<key>.jpg` (the image), `<key>.cls` (the
source index) and `<key>.json` (its augmentation parameters). With plain webdataset:

```python
import webdataset as wds

dataset = wds.WebDataset("{pattern}", shardshuffle=False).decode("pil").to_tuple("jpg", "cls")
for image, label in dataset:
    ...
```"""
    )


def _load_ffcv(manifest: dict) -> str:
    name = manifest["ffcv"]["name"]
    return f"""FFCV: `{name}`, fields `image` (the JPEG bytes of the shards, unchanged) and `label`; sample i of the
file is sample i of the shards. With plain ffcv:

```python
from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcv.loader import Loader, OrderOption

loader = Loader("{name}", batch_size=256, order=OrderOption.RANDOM,
                pipelines={{"image": [SimpleRGBImageDecoder()], "label": [IntDecoder()]}})
for images, labels in loader:  # uint8 (B, S, S, 3), int64 (B, 1), as numpy arrays
    ...
```"""
