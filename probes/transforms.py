"""The protocols' image transforms, all yielding uint8 tensors, and the batch-wise normalisation.

Images stay uint8 (a quarter of float32's bytes) through the loaders; :class:`Normalizer` converts whole
batches where the trunk runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

from mono.learning.errors import UserError
from mono.probes.protocols import Protocol

__all__ = ["NativeSize", "Normalizer", "TenCrops", "average_crops", "eval_transform", "train_transform"]


class NativeSize:
    """The cifar protocol's transform: the image as a uint8 tensor, which must already be size x size."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image) -> torch.Tensor:
        if img.size != (self.size, self.size):
            where = getattr(img, "filename", "") or "an image"
            raise UserError(
                f"{where} is {img.size[0]}x{img.size[1]}; the cifar protocol feeds images at "
                f"their native size, which must be {self.size}x{self.size}"
            )
        return TF.pil_to_tensor(img)


class TenCrops:
    """Resize the shorter side, then the 4 corner and centre crops and their horizontal flips, stacked."""

    def __init__(self, resize: int, size: int) -> None:
        self.resize = T.Resize(resize)
        self.crops = T.TenCrop(size)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return torch.stack([TF.pil_to_tensor(c) for c in self.crops(self.resize(img))])


def train_transform(protocol: Protocol) -> Any:
    if not protocol.augment:
        return NativeSize(protocol.input_size)
    return T.Compose(
        [T.Resize(protocol.resize), T.RandomCrop(protocol.input_size), T.RandomHorizontalFlip(), T.PILToTensor()]
    )


def eval_transform(protocol: Protocol) -> Any:
    if protocol.ten_crop:
        return TenCrops(protocol.resize, protocol.input_size)
    return NativeSize(protocol.input_size)


def average_crops(scores: torch.Tensor, num_crops: int) -> torch.Tensor:
    """Average per-crop class scores ``(batch * num_crops, classes)``, laid out image by image, into
    ``(batch, classes)``."""
    if scores.shape[0] % num_crops:
        raise ValueError(f"{scores.shape[0]} score rows do not split into groups of {num_crops} crops")
    return scores.view(-1, num_crops, scores.shape[-1]).mean(dim=1)


class Normalizer:
    """uint8 images -> ``device`` -> floats in [0, 1] -> (x - mean) / std per channel, on whole batches.

    Images travel as uint8 (a quarter of float32's bytes) and are converted where the trunk runs.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        return (images.float().div_(255.0) - self.mean).div_(self.std)
