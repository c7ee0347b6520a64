"""The samples of a dataset directory, read back in index order: from its shards, or from its .beton.

What `mono-shards export` and `preview` read; every byte is checked against the manifest's SHA-256 on the way
(training reads datasets with learning/data, which knows only the on-disk format).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from . import beton_format
from . import manifest as manifest_mod
from .dataset_dir import SHARD_PREFIX, sample_key
from .digest import HashingReader, file_sha256
from .errors import UserError
from .manifest import FFCV, WEBDATASET, formats_of
from .tar_format import group_samples, iter_members


def iter_shards(
    root: Path,
    records: Iterable[dict],
    num_classes: int,
    checked: bool = True,
    recorded_in: str = "manifest.json",
    remedy: str = "check the dataset with mono-shards verify",
) -> Iterator[tuple[int, int, bytes]]:
    """(index, label, JPEG bytes) of every sample of the shards `records` lists (`name`, `bytes`, `sha256`),
    checking that they hold samples 0, 1, 2, … in order, each labelled with one of the `num_classes` classes.

    With `checked`, a shard whose bytes differ from its record (size or SHA-256) is a UserError once its
    samples are read, in the same pass: whoever builds from the samples commits only after the last one, so
    nothing is ever built from changed bytes (a damaged shard is reported as changed when it is).
    """
    expected = 0
    for record in records:
        path = Path(root) / record["name"]
        damage = None
        try:
            with open(path, "rb") as raw:
                stream = HashingReader(raw)
                try:
                    for key, files in group_samples(iter_members(stream)):
                        if key != sample_key(expected) or "jpg" not in files or "cls" not in files:
                            raise ValueError(f"expected sample {sample_key(expected)} with .jpg and .cls, found {key}")
                        yield expected, label_of(files["cls"], num_classes, key), files["jpg"]
                        expected += 1
                except (ValueError, UnicodeDecodeError) as exc:
                    damage = exc
                if checked:
                    stream.drain()
        except FileNotFoundError:
            raise UserError(f"{path}: shard missing") from None
        if checked and not stream.matches(record):
            raise UserError(
                f"{path}: its bytes differ from the SHA-256 {recorded_in} records; refusing to build from it ({remedy})"
            )
        if damage is not None:
            raise UserError(f"{path}: damaged shard ({damage}); check it with mono-shards verify")


def label_of(raw: bytes | int, num_classes: int, key: str) -> int:
    """A sample's label, which must name one of the classes (a folder, an index into the sources); ValueError."""
    try:
        label = int(raw)
    except ValueError:
        raise ValueError(f"sample {key} has an unreadable label") from None
    if not 0 <= label < num_classes:
        raise ValueError(f"sample {key} has label {label}, outside the dataset's classes 0..{num_classes - 1}")
    return label


def shard_paths(root: Path) -> list[Path]:
    """Shards listed by the manifest, or, for an unfinished dataset, those present."""
    root = Path(root)
    if (root / manifest_mod.MANIFEST).exists():
        return [root / s["name"] for s in manifest_mod.load(root)["shards"]]
    return sorted(root.glob(f"{SHARD_PREFIX}-*.tar"))


def iter_samples(root: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) of every sample in order."""
    for path in shard_paths(root):
        with open(path, "rb") as f:
            yield from group_samples(iter_members(f))


def iter_images(root: Path, checked: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """(index, label, JPEG bytes) of every sample in order: from the shards or, without them, the .beton.

    `checked`: each file's SHA-256 is compared with the manifest's, a shard's by the end of its samples, the
    .beton's before its first (UserError on a mismatch): what is built from these samples is committed only
    once they are all read, so it is never built from changed bytes. A preview, which builds nothing, skips it.
    """
    root = Path(root)
    if not (root / manifest_mod.MANIFEST).exists():  # unfinished: the shards present
        yield from ((int(key), int(files["cls"]), files["jpg"]) for key, files in iter_samples(root))
        return
    manifest = manifest_mod.load(root)
    formats = formats_of(manifest)
    if WEBDATASET in formats:
        yield from iter_shards(root, manifest["shards"], manifest["num_classes"], checked=checked)
    elif FFCV in formats:
        path = root / manifest["ffcv"]["name"]
        record = manifest["ffcv"]
        if checked and path.is_file() and file_sha256(path) != (record["bytes"], record["sha256"]):
            raise UserError(
                f"{path}: its bytes differ from the SHA-256 manifest.json records; refusing to use it "
                "(check the dataset with mono-shards verify)"
            )
        try:
            for index, (label, jpeg) in enumerate(beton_format.iter_beton(path)):
                yield index, label_of(label, manifest["num_classes"], sample_key(index)), jpeg
        except FileNotFoundError:
            raise UserError(f"{path}: missing") from None
        except ValueError as exc:
            raise UserError(f"{path}: {exc}; check it with mono-shards verify") from None
    else:
        raise UserError(f"{root}: holds neither shards nor a .beton")
