"""The manifest (manifest.json) and the dataset card (README.md) of a finished dataset."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import shlex
import sys
from pathlib import Path

from . import __version__
from .config import DatasetConfig
from .dataset_dir import MANIFEST, TIMM_INFO, shard_pattern
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


def data_files(manifest: dict) -> list[dict]:
    """The records (`name`, `bytes`, `sha256`) of the files the manifest pins: shards, `_info.json`, `.beton`."""
    formats = formats_of(manifest)
    files = list(manifest["shards"]) if WEBDATASET in formats else []
    files += [manifest["timm"]] if WEBDATASET in formats and "timm" in manifest else []
    return files + ([manifest["ffcv"]] if FFCV in formats else [])


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
    return with_timm(manifest)


def timm_info(manifest: dict) -> bytes:
    """timm's `_info.json` (read by its `wds/` reader since timm 0.9.16): the train split's shards and sizes. A
    function of the manifest alone, so that every copy of the dataset has the same bytes."""
    shards = manifest["shards"]
    info = {
        "name": f"mono-{manifest['config_sha256'][:12]}",
        "num_classes": manifest["num_classes"],
        "splits": {
            "train": {
                "name": "train",
                "num_samples": manifest["num_samples"],
                "filenames": [s["name"] for s in shards],
                "shard_lengths": [s["count"] for s in shards],
            }
        },
    }
    return (json.dumps(info, indent=2) + "\n").encode()


def with_timm(manifest: dict) -> dict:
    """The manifest with the record of `_info.json` (`timm`) if it holds shards, without it otherwise."""
    manifest = {k: v for k, v in manifest.items() if k != "timm"}
    if WEBDATASET in formats_of(manifest):
        data = timm_info(manifest)
        manifest["timm"] = {"name": TIMM_INFO, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return manifest


def load(root: Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{root}: no {MANIFEST}; not a mono dataset (or generation has not finished)") from None
    except OSError as exc:
        raise UserError(f"{path}: unreadable manifest ({exc.strerror or exc})") from None
    return parse(raw, path)


def parse(raw: bytes, where) -> dict:
    """A manifest from its bytes, checked as readers need it (UserError naming `where` otherwise)."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{where}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{where}: not a mono dataset manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{where}: manifest format version {manifest.get('format_version')} is not supported by this mono-gen"
        )
    problem = malformed(manifest)
    if problem:
        raise UserError(f"{where}: malformed manifest: {problem}")
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
    if "timm" in manifest:  # datasets made before _info.json have none
        schema["timm"] = _FILE
    problem = _mismatch(manifest, schema, "")
    if problem is None and FOLDER in formats:  # exports since SHA256SUMS, metadata.jsonl, --layout train
        optional = {"checksums": _FILE, "metadata": _FILE, "split": _NAME}
        present = [key for key in optional if key in manifest["folder"]]
        problem = next(
            filter(None, (_mismatch(manifest["folder"][k], optional[k], f"folder.{k}.") for k in present)), None
        )
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
