"""Labelled image data for the probes: ImageFolder trees or torchvision's CIFAR classes, balanced slices,
data loaders that report user errors from their workers in one line, and a whole-split decoder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.datasets import CIFAR10, CIFAR100, ImageFolder
from tqdm import tqdm

from mono.learning.errors import UserError
from mono.probes.transforms import NativeSize

__all__ = [
    "TORCHVISION_DATASETS",
    "DataSpec",
    "LabelledSplits",
    "decode_split",
    "iterate",
    "make_loader",
    "open_splits",
    "with_transform",
]

TORCHVISION_DATASETS = {"cifar10": (CIFAR10, "cifar-10-batches-py"), "cifar100": (CIFAR100, "cifar-100-python")}


@dataclass(frozen=True)
class DataSpec:
    """Where the labelled data comes from: two ImageFolder trees, or a torchvision dataset under a root."""

    train: Path | None = None
    val: Path | None = None
    dataset: str | None = None
    root: Path | None = None
    train_limit: int | None = None
    val_limit: int | None = None


@dataclass
class LabelledSplits:
    train: Dataset
    val: Dataset
    train_labels: torch.Tensor
    val_labels: torch.Tensor
    classes: list[str]
    description: dict[str, Any]


def load_rgb(path: str) -> Image.Image:
    """ImageFolder loader that reports unreadable images as a UserError naming the file."""
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None
    rgb.filename = path  # convert() drops it; error messages name the file
    return rgb


def _open_imagefolder(root: Path, role: str) -> ImageFolder:
    if not root.is_dir():
        raise UserError(f"--{role} directory not found: {root}")
    try:
        return ImageFolder(str(root), loader=load_rgb)
    except (FileNotFoundError, RuntimeError) as exc:  # no class folders / no images
        raise UserError(
            f"--{role} {root} is not an ImageFolder tree (<class>/<image> files): {str(exc).splitlines()[0]}"
        ) from None


def _open_torchvision(name: str, root: Path, train: bool) -> Dataset:
    cls, folder = TORCHVISION_DATASETS[name]
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        raise UserError(
            f"no {name} found under {root} (torchvision expects {root / folder} from the "
            "official python release); mono-probe never downloads"
        ) from None


def _listing_sha256(dataset: ImageFolder) -> str:
    """Hash of the sorted (relative path, size, label) listing: identifies the exact image set cheaply."""
    digest = hashlib.sha256()
    prefix = len(os.path.join(dataset.root, ""))
    for path, label in dataset.samples:
        digest.update(f"{path[prefix:]}\t{os.stat(path).st_size}\t{label}\n".encode())
    return digest.hexdigest()


def _evenly_spaced(n: int, limit: int | None) -> list[int] | None:
    """``limit`` indices spread evenly over ``range(n)``; samples are grouped by class, so classes stay
    balanced. None when no limit applies."""
    if limit is None or limit >= n:
        return None
    if limit < 1:
        raise UserError(f"a split limit must be at least 1, not {limit}")
    return [(i * n) // limit for i in range(limit)]


def _limited(dataset: Dataset, targets: Sequence[int], limit: int | None) -> tuple[Dataset, torch.Tensor]:
    indices = _evenly_spaced(len(targets), limit)
    labels = torch.as_tensor(list(targets), dtype=torch.long)
    if indices is None:
        return dataset, labels
    return Subset(dataset, indices), labels[indices]


def open_splits(spec: DataSpec) -> LabelledSplits:
    """Open the train and val splits, check that their classes agree, and describe them for results.json."""
    if spec.dataset is not None:
        if spec.dataset not in TORCHVISION_DATASETS:
            raise UserError(f"unknown --dataset {spec.dataset!r}; choose one of {', '.join(TORCHVISION_DATASETS)}")
        root = Path(spec.root or ".")
        train, val = _open_torchvision(spec.dataset, root, True), _open_torchvision(spec.dataset, root, False)
        classes = list(train.classes)
        description: dict[str, Any] = {"source": "torchvision", "name": spec.dataset, "root": str(root.resolve())}
    else:
        train, val = _open_imagefolder(Path(spec.train), "train"), _open_imagefolder(Path(spec.val), "val")
        if train.classes != val.classes:
            only = sorted(set(train.classes) ^ set(val.classes))
            raise UserError(f"--train and --val have different classes (e.g. {', '.join(only[:3]) or 'order'})")
        classes = list(train.classes)
        description = {
            "source": "imagefolder",
            "train_path": str(Path(spec.train).resolve()),
            "val_path": str(Path(spec.val).resolve()),
            "train_listing_sha256": _listing_sha256(train),
            "val_listing_sha256": _listing_sha256(val),
        }
    if len(classes) < 2:
        raise UserError("the probes need at least 2 classes")
    train_set, train_labels = _limited(train, train.targets, spec.train_limit)
    val_set, val_labels = _limited(val, val.targets, spec.val_limit)
    description.update(
        {
            "num_classes": len(classes),
            "classes": classes,
            "train_images": len(train_labels),
            "val_images": len(val_labels),
            "train_limit": spec.train_limit,
            "val_limit": spec.val_limit,
        }
    )
    return LabelledSplits(train_set, val_set, train_labels, val_labels, classes, description)


def with_transform(dataset: Dataset, transform: Any) -> Dataset:
    """Set the transform of an ImageFolder/CIFAR dataset, or of the dataset behind a Subset."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    base.transform = transform
    return dataset


def _worker_message(exc: UserError) -> str:
    """A UserError re-raised from a DataLoader worker carries the worker's traceback; keep its message."""
    text = str(exc).strip()
    if "DataLoader worker" not in text.splitlines()[0]:
        return text
    last = text.splitlines()[-1]
    return last.split("UserError: ", 1)[-1]


def iterate(loader: DataLoader) -> Iterator[Any]:
    """Iterate a DataLoader, turning user errors raised in its workers back into one-line UserErrors."""
    try:
        yield from loader
    except UserError as exc:
        raise UserError(_worker_message(exc)) from None


def check_first_image(dataset: Dataset, transform: Any) -> None:
    """Apply ``transform`` to the first image in the main process, so a wrong size fails before the workers
    start (a clean message rather than one relayed from a worker)."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    index = dataset.indices[0] if isinstance(dataset, Subset) else 0
    saved, base.transform = base.transform, transform
    try:
        base[index]
    finally:
        base.transform = saved


def make_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=generator,
        persistent_workers=False,
        drop_last=False,
        pin_memory=pin_memory,
    )


def decode_split(
    dataset: Dataset, size: int, workers: int, desc: str, batch_size: int = 500, progress: bool = True
) -> torch.Tensor:
    """Decode a whole split of ``size`` x ``size`` images once into one uint8 tensor ``(N, 3, size, size)``."""
    transform = NativeSize(size)
    check_first_image(dataset, transform)
    with_transform(dataset, transform)
    images = torch.empty((len(dataset), 3, size, size), dtype=torch.uint8)
    loader = make_loader(dataset, batch_size, workers)
    start = 0
    with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for batch, _ in iterate(loader):
            images[start : start + len(batch)] = batch
            start += len(batch)
            bar.update(len(batch))
    return images
