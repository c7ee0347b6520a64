"""Turn encoded samples into a batch: decode, apply the caller's per-sample transform, collate.

Shared by the WebDataset and folder readers, in DataLoader workers. The per-sample transform draws
from torch's random generator seeded from (seed, epoch, position in the epoch), so a randomly
augmented epoch is the same whatever the number of workers; the caller's generator is left alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.utils.data import default_collate
from torchvision.io import ImageReadMode, decode_image

from .order import sample_seed


def decode_rgb(data: bytes) -> torch.Tensor:
    """Encoded image (JPEG, or any format torchvision reads) -> uint8 tensor (3, H, W)."""
    return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)


@dataclass(frozen=True)
class BatchMaker:
    transform: Callable | None  # uint8 tensor (3, H, W) -> anything default_collate stacks
    seed: int

    def __call__(self, encoded: Sequence[bytes], labels: Sequence[int], indices: Sequence[int],
                 first_position: int, epoch: int):
        images = [decode_rgb(data) for data in encoded]
        if self.transform is not None:
            with torch.random.fork_rng(devices=[]):
                for k, image in enumerate(images):
                    torch.manual_seed(sample_seed(self.seed, epoch, first_position + k))
                    images[k] = self.transform(image)
        batch = torch.stack(images) if self.transform is None else default_collate(images)
        return batch, torch.tensor(labels, dtype=torch.int64), torch.tensor(indices, dtype=torch.int64)
