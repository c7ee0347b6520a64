"""Top-k retrieval (the paper's Figure 5, right): for each chosen channel of a layer, the images of a folder
that activate it most, scored by the channel's spatial maximum (the strongest response anywhere in the
image, as in Zeiler & Fergus 2014 and the paper).

Images are fed as the trunk's evaluation protocol sees them: AlexNet's 224-px centre crop of the image
resized to 256, monogan's 32-px image (resized and centre-cropped first if it is another size).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torchvision.transforms as T
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from tqdm import tqdm

from mono.learning.errors import UserError
from mono.probes.data import iterate, load_rgb
from mono.probes.transforms import Normalizer

__all__ = ["FolderImages", "list_images", "top_images"]

RESIZE = {224: 256}
"""Shorter side before the centre crop, per trunk input size (224 -> 256 as the imagenet protocol)."""


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root`` (an ImageFolder tree or a flat folder), sorted; UserError if none."""
    if not root.is_dir():
        raise UserError(f"--data {root}: no such directory")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(IMG_EXTENSIONS))
    if not paths:
        raise UserError(f"--data {root} holds no images ({', '.join(IMG_EXTENSIONS[:4])}, ...)")
    return paths


class FolderImages(Dataset):
    """The images at ``paths`` as the trunk's evaluation sees them: uint8 ``(3, size, size)`` tensors."""

    def __init__(self, paths: Sequence[Path], size: int) -> None:
        self.paths = list(paths)
        self.transform = T.Compose([T.Resize(RESIZE.get(size, size)), T.CenterCrop(size), T.PILToTensor()])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(load_rgb(str(self.paths[index]))), index


@torch.no_grad()
def top_images(
    trunk: nn.Module,
    normalize: Normalizer,
    dataset: FolderImages,
    layer: str,
    channels: Sequence[int],
    k: int = 9,
    batch_size: int = 100,
    workers: int = 0,
    progress: bool = True,
) -> dict[int, list[tuple[int, float]]]:
    """For each channel, the (index, score) of the ``k`` images with the highest spatial maximum, best first
    (ties: the earlier image first)."""
    index = torch.as_tensor(list(channels))
    scores = torch.empty(len(dataset), len(index))
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    for images, ids in tqdm(
        iterate(loader), total=len(loader), desc=f"scoring {layer}", unit="batch", disable=not progress, leave=False
    ):
        features = trunk.forward_features(normalize(images), upto=layer)[layer][:, index.to(normalize.device)]
        scores[ids] = features.amax(dim=(-2, -1)).float().cpu()
    top = {}
    for column, channel in enumerate(channels):
        # a stable sort on the negated scores keeps equal scores in file order
        order = torch.sort(-scores[:, column], stable=True).indices[:k]
        top[channel] = [(int(i), float(scores[i, column])) for i in order]
    return top
