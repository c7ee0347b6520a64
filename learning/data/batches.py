"""Turn encoded samples into a batch: decode, apply the caller's per-sample transform, collate.

Shared by the WebDataset and folder readers, in DataLoader workers. The per-sample transform draws
from torch's random generator seeded from (seed, epoch, position in the epoch), so a randomly
augmented epoch is the same whatever the number of workers; the caller's generator is left alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from .errors import UserError
from .order import sample_seed


def decode_rgb(data: bytes) -> torch.Tensor:
    """Encoded image (JPEG, PNG, …) -> uint8 tensor (3, H, W), a view of an (H, W, 3) array.

    OpenCV (libjpeg-turbo) rather than torchvision.io, whose decoders are deprecated since 0.29.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise UserError("an image of the dataset does not decode; check the dataset with mono-shards verify")
    return torch.from_numpy(image).permute(2, 0, 1)


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
