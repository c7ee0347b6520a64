"""`mono-shards export` and the .beton of `mono-gen --format ffcv`: other layouts of a dataset, made from its
samples without re-encoding (FFCV's .beton, an ImageFolder tree).

Both copy the JPEG bytes of the shards, so sample i is byte-identical in every layout.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from . import atomic
from .beton_format import BetonWriter, page_size_for
from .dataset_dir import MANIFEST, sample_key
from .digest import file_sha256
from .errors import UserError

FFCV_FIELDS = {"image": "jpeg", "label": "int"}
CHECKSUMS = "SHA256SUMS"  # an exported folder's per-file checksums


def write_beton(
    target: Path, samples: Iterable[tuple[int, int, bytes]], num_samples: int, size: int, progress: bool = True
) -> dict:
    """Write the .beton atomically from (index, label, JPEG) in index order; return its manifest record."""
    for stale in atomic.stale_temporaries(target):  # left by a killed run
        stale.unlink(missing_ok=True)
    page_size = page_size_for(size)
    with atomic.replacing(target) as f, _bar(num_samples, target.name, progress) as bar:
        writer = BetonWriter(f, num_samples, page_size)
        for _, label, jpeg in samples:
            writer.add(jpeg, size, size, label)
            bar.update()
        writer.close()
    nbytes, digest = file_sha256(target)
    return {"name": target.name, "bytes": nbytes, "sha256": digest, "page_size": page_size, "fields": dict(FFCV_FIELDS)}


def class_folders(sources: list[dict]) -> list[str]:
    """Folder name per label: `<label>-<stem>`, zero-padded so that sorting them (as ImageFolder does)
    gives back the label order, and unique even when two sources share a stem."""
    width = len(str(len(sources) - 1))
    names = []
    for source in sources:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source["name"]).stem)[:80] or "source"
        names.append(f"{source['index']:0{width}d}-{stem}")
    return names


def export_folder(samples: Iterable[tuple[int, int, bytes]], manifest: dict, dest: Path, progress: bool = True) -> None:
    """Write DEST/<label>-<stem>/<index>.jpg for every sample, the SHA-256 of each in DEST/SHA256SUMS, and a
    manifest that records SHA256SUMS's own digest; DEST appears complete or not at all."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"{dest}: already exists and is not an empty directory; choose a new destination")
    if not dest.parent.is_dir():
        raise UserError(f"{dest.parent}: no such directory for the export")
    _remove_abandoned(dest)
    classes = class_folders(manifest["sources"])
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    try:
        for name in classes:
            (tmp / name).mkdir(parents=True)
        with _bar(manifest["num_samples"], dest.name, progress) as bar, open(tmp / CHECKSUMS, "w") as sums:
            for index, label, jpeg in samples:
                name = f"{classes[label]}/{sample_key(index)}.jpg"
                (tmp / name).write_bytes(jpeg)
                sums.write(f"{hashlib.sha256(jpeg).hexdigest()}  {name}\n")  # the format of sha256sum -c
                bar.update()
        nbytes, digest = file_sha256(tmp / CHECKSUMS)
        checksums = {"name": CHECKSUMS, "bytes": nbytes, "sha256": digest}
        atomic.write_json(tmp / MANIFEST, folder_manifest(manifest, classes, checksums))
        os.replace(tmp, dest)  # onto nothing, or onto an empty directory
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):  # name the destination the user gave, not the hidden temporary tree
            raise type(exc)(exc.errno, exc.strerror or str(exc), str(dest)) from None
        raise


def folder_manifest(manifest: dict, classes: list[str], checksums: dict | None = None) -> dict:
    """The dataset's manifest, describing the folder instead of shards and .beton."""
    result = copy.deepcopy(manifest)
    result.pop("ffcv", None)
    result["formats"] = ["folder"]
    result["folder"] = {"classes": classes, "files": "<class>/<index>.jpg, index as 9 digits"}
    if checksums is not None:
        result["folder"]["checksums"] = checksums
    return result


def _remove_abandoned(dest: Path) -> None:
    """Temporary trees of exports to the same destination whose process is gone."""
    for partial in dest.parent.glob(f".{dest.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bar(total: int, desc: str, enabled: bool):
    return tqdm(
        total=total,
        unit="samples",
        unit_scale=True,
        desc=desc,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=0.2 if os.isatty(2) else 30,
    )
