"""Open a dataset wherever it is (a directory, a URL, a brace pattern of shards) and say what it holds.

Only the documented on-disk format is used (shards/README.md): manifest.json is parsed here, not
with the generator's code, so that training code never depends on the generator.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import UserError
from .ffcv_reader import ffcv_installed
from .order import Layout

FORMATS = ("ffcv", "webdataset", "folder")  # in order of preference
MANIFEST = "manifest.json"
MANIFEST_FORMAT = ("mono-dataset", 1)


@dataclass(frozen=True)
class Dataset:
    """What a dataset holds; `Loader(dataset, batch_size, ...)` reads it (loader.py)."""

    location: str
    formats: tuple[str, ...]  # formats present, in order of preference
    num_samples: int
    num_classes: int
    image_size: int | None  # side of the square images (None: a folder of mixed sizes)
    class_names: tuple[str, ...]  # by label: source image names, or a folder's class folders
    manifest: dict | None = field(repr=False)
    layout: Layout = field(repr=False)
    requested: str | None = None  # the format asked for, if any
    shards: tuple[str, ...] = field(default=(), repr=False)  # path or URL per layout chunk
    remote: bool = False  # the shards are URLs the user gave (else local files, opened as files only)
    beton: str | None = field(default=None, repr=False)
    folder: tuple[list[str], np.ndarray] | None = field(default=None, repr=False)  # paths, labels by index
    problems: dict[str, str] = field(default_factory=dict, repr=False)  # why a listed format is not usable

    @property
    def format(self) -> str:
        """The format a loader without a per-sample transform reads."""
        return self.format_for(per_sample_transform=False)

    def format_for(self, per_sample_transform: bool) -> str:
        """The requested format, or the first present that can serve: FFCV only when installed and
        no per-sample transform is wanted (FFCV transforms whole batches)."""
        if self.requested == "ffcv" and per_sample_transform:
            raise UserError(
                "FFCV applies no per-sample transform: pass batch_transform instead, or read "
                "another format (format='webdataset')"
            )
        if self.requested:
            return self.requested
        usable = [f for f in self.formats if f != "ffcv" or (ffcv_installed() and not per_sample_transform)]
        if usable:
            return usable[0]
        if per_sample_transform:
            raise UserError(
                f"{self.location}: only train.beton here, and FFCV applies no per-sample transform: "
                "pass batch_transform instead"
            )
        return self.formats[0]  # FFCV, not installed: the loader says how to install it


def open_dataset(location: str | os.PathLike, format: str | None = None) -> Dataset:
    """Open a dataset directory, a directory URL (holding manifest.json) or a brace pattern of shards.

    `format` picks one of the formats present ("ffcv", "webdataset", "folder"); by default the
    fastest present is read. A folder without manifest.json is read as torchvision's ImageFolder.
    """
    if format is not None and format not in FORMATS:
        raise UserError(f"unknown dataset format {format!r}; choose one of {', '.join(FORMATS)}")
    text = os.fspath(location)
    if _is_url(text) or _is_pattern(text):
        dataset = _open_shard_location(text)
    else:
        dataset = _open_directory(text)
    if format is not None:
        if format not in dataset.formats:
            raise UserError(
                dataset.problems.get(format, f"{text}: holds no {format} data (it has {', '.join(dataset.formats)})")
            )
        dataset = replace(dataset, requested=format)
    return dataset


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("pipe:")


def _is_pattern(text: str) -> bool:
    return "{" in text or text.endswith(".tar")


def _open_directory(text: str) -> Dataset:
    root = Path(text).expanduser()
    if not root.exists():
        raise UserError(f"{text}: no such dataset")
    if not root.is_dir():
        raise UserError(f"{text}: not a dataset directory (give the directory that holds manifest.json)")
    if (root / MANIFEST).is_file():
        return _from_manifest(text, root, _parse_manifest(_read_local(root / MANIFEST), root / MANIFEST))
    if not any(root.iterdir()):
        raise UserError(f"{text}: empty directory, no dataset")
    if (root / ".mono-gen").is_dir():
        raise UserError(f"{text}: incomplete dataset (no manifest.json yet); rerun its mono-gen command to finish it")
    paths, labels, classes = _scan_folder(root)
    return Dataset(
        location=text,
        formats=("folder",),
        num_samples=len(paths),
        num_classes=len(classes),
        image_size=_image_side(paths[0]),
        class_names=tuple(classes),
        manifest=None,
        layout=Layout.of_samples(len(paths)),
        folder=(paths, labels),
    )


def _from_manifest(text: str, root: Path, manifest: dict) -> Dataset:
    listed = manifest.get("formats", ["webdataset"])
    formats, problems = [], {}
    beton = None
    if "ffcv" in listed:
        beton = str(root / manifest["ffcv"]["name"])
        if Path(beton).is_file():
            formats.append("ffcv")
        else:
            problems["ffcv"] = f"{beton}: missing"
    shards = tuple(str(root / s["name"]) for s in manifest["shards"])
    if "webdataset" in listed:
        missing = [s for s in shards if not Path(s).is_file()]
        if missing:
            problems["webdataset"] = f"{missing[0]}: shard missing"
        else:
            formats.append("webdataset")
    folder = None
    if "folder" in listed:
        folder = _indexed_folder(root, manifest)
        formats.append("folder")
    if not formats:
        raise UserError(next(iter(problems.values()), f"{text}: manifest.json lists no format this reader knows"))
    return Dataset(
        location=text,
        formats=tuple(formats),
        num_samples=manifest["num_samples"],
        num_classes=manifest["num_classes"],
        image_size=manifest["image_size"],
        class_names=tuple(s["name"] for s in manifest["sources"]),
        manifest=manifest,
        layout=_shard_layout(manifest["shards"], manifest["num_samples"]),
        shards=shards,
        beton=beton,
        folder=folder,
        problems=problems,
    )


def _open_shard_location(text: str) -> Dataset:
    """A directory URL (its manifest says which shards), or a brace pattern of shards (local or URL);
    the manifest is read next to the shards."""
    from webdataset.shardlists import expand_urls

    if _is_pattern(text):
        urls = expand_urls(text)
        base = posixpath.dirname(urls[0]) if _is_url(text) else str(Path(urls[0]).parent)
    else:
        urls, base = None, text.rstrip("/")
    where = f"{base}/{MANIFEST}"
    manifest = _parse_manifest(_fetch(where) if _is_url(where) else _read_local(Path(where)), where)
    if "webdataset" not in manifest.get("formats", ["webdataset"]):
        raise UserError(
            f"{text}: the dataset has no shards here (FFCV files and folders are read from a local directory)"
        )
    records = {s["name"]: s for s in manifest["shards"]}
    if urls is None:
        urls = [f"{base}/{name}" for name in records]
    chosen = []
    for url in urls:
        name = posixpath.basename(url)
        if name not in records:
            raise UserError(f"{url}: not a shard of the dataset described by {where}")
        if not _is_url(url) and not Path(url).is_file():
            raise UserError(f"{url}: shard missing")
        chosen.append(records[name])
    layout = _shard_layout(chosen, manifest["num_samples"])
    return Dataset(
        location=text,
        formats=("webdataset",),
        num_samples=layout.num_samples,
        num_classes=manifest["num_classes"],
        image_size=manifest["image_size"],
        class_names=tuple(s["name"] for s in manifest["sources"]),
        manifest=manifest,
        layout=layout,
        shards=tuple(urls),
        remote=_is_url(text),
    )


def _shard_layout(records: list[dict], size: int) -> Layout:
    return Layout.of_chunks([(r["first"], r["count"]) for r in records], size)


def _read_local(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; not a mono dataset (or generation has not finished)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _fetch(url: str) -> bytes:
    import webdataset as wds

    try:
        with wds.gopen(url) as stream:
            return stream.read()
    except OSError:
        raise UserError(f"{url}: cannot download the dataset's manifest") from None


def _parse_manifest(raw: bytes, where) -> dict:
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{where}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("format_version")) != MANIFEST_FORMAT:
        raise UserError(
            f"{where}: not a mono dataset manifest (format {MANIFEST_FORMAT[0]}, version {MANIFEST_FORMAT[1]})"
        )
    problem = _malformed(manifest)
    if problem:
        raise UserError(f"{where}: unreadable manifest ({problem})")
    return manifest


def plain_name(name) -> bool:
    """Whether `name` names a file directly inside the dataset directory: no separator, scheme (`pipe:`,
    `http:`), parent, absolute path or hidden file. The manifest's file names must be such names, so that
    reading a dataset never opens anything outside it, nor runs anything (shards/README.md)."""
    return isinstance(name, str) and len(name) <= 255 and _PLAIN_NAME.fullmatch(name) is not None


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _malformed(manifest: dict) -> str | None:
    """Why the fields this reader uses are missing or unusable, or None."""

    def count(value, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    for key in ("num_samples", "num_classes", "image_size"):
        if not count(manifest.get(key), 1):
            return f"{key} must be a positive integer"
    digest = manifest.get("config_sha256")
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        return "config_sha256 must be a SHA-256 hex digest"
    sources, shards = manifest.get("sources"), manifest.get("shards")
    if not isinstance(sources, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) for s in sources
    ):
        return "sources must be a list of named source images"
    if len(sources) != manifest["num_classes"]:
        return f"{len(sources)} sources for num_classes {manifest['num_classes']}"
    if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
        return "shards must be a list of shard records"
    for i, shard in enumerate(shards):
        if not plain_name(shard.get("name")):
            return f"shards[{i}].name {str(shard.get('name'))[:60]!r} is not a plain file name in the dataset directory"
        if not (count(shard.get("first"), 0) and count(shard.get("count"), 1)):
            return f"shards[{i}] must have integer first and count"
    formats = manifest.get("formats", ["webdataset"])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        return "formats must be a list of format names"
    if "ffcv" in formats:
        ffcv = manifest.get("ffcv")
        if not isinstance(ffcv, dict) or not plain_name(ffcv.get("name")):
            return "ffcv.name must be a plain file name in the dataset directory"
    return None


def _scan_folder(root: Path) -> tuple[list[str], np.ndarray, list[str]]:
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root), loader=lambda path: path)
    except (FileNotFoundError, OSError) as exc:
        raise UserError(f"{root}: not an image folder ({exc})") from None
    paths = [path for path, _ in folder.samples]
    return paths, np.array([label for _, label in folder.samples], np.int64), folder.classes


def _indexed_folder(root: Path, manifest: dict) -> tuple[list[str], np.ndarray]:
    """An exported folder: the file of sample i is <class>/<i as 9 digits>.jpg."""
    paths, labels, _ = _scan_folder(root)
    by_index: list[str | None] = [None] * manifest["num_samples"]
    by_label = np.full(manifest["num_samples"], -1, np.int64)
    for path, label in zip(paths, labels.tolist()):
        stem = Path(path).stem
        if stem.isdigit() and int(stem) < len(by_index):
            by_index[int(stem)], by_label[int(stem)] = path, label
    if any(p is None for p in by_index):
        found = sum(p is not None for p in by_index)
        raise UserError(f"{root}: incomplete folder, {found:,} of {len(by_index):,} samples")
    return by_index, by_label


def _image_side(path: str) -> int | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as exc:
        raise UserError(f"{path}: unreadable image ({exc})") from None
    return width if width == height else None
