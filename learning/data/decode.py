"""Turn encoded samples into a batch: decode, apply the caller's per-sample transform, collate.

Shared by the WebDataset and folder readers, in DataLoader workers. The per-sample transform draws
from torch's random generator seeded from (seed, epoch, position in the epoch), so a randomly
augmented epoch is the same whatever the number of workers; the caller's generator is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from ..errors import UserError
from ..seeds import derive_seed


def decode_rgb(data: bytes) -> torch.Tensor:
    """Encoded image (JPEG, PNG, …) -> uint8 tensor (H, W, 3), as decoders lay pixels out.

    OpenCV (libjpeg-turbo) rather than torchvision.io, whose decoders are deprecated since 0.29.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise UserError("an image of the dataset does not decode; check the dataset with mono-shards verify")
    return torch.from_numpy(image)


@dataclass(frozen=True)
class BatchMaker:
    transform: Callable | None  # uint8 tensor (3, H, W) -> anything default_collate stacks
    seed: int

    def __call__(
        self, encoded: Sequence[bytes], labels: Sequence[int], indices: Sequence[int], first_position: int, epoch: int
    ):
        # Pixels stay in (H, W, 3) order: (3, H, W) views, and a channels_last (B, 3, H, W) batch
        # collated by memcpy straight into shared memory (in a worker); a transposing copy to
        # channels-first storage would cost as much as decoding the JPEG.
        images = [decode_rgb(data) for data in encoded]
        if self.transform is None:
            if len({image.shape for image in images}) > 1:
                raise UserError("the images differ in size: pass a transform that resizes them")
            batch = default_collate(images).permute(0, 3, 1, 2)
        else:
            with torch.random.fork_rng(devices=[]):
                for k, image in enumerate(images):
                    torch.manual_seed(derive_seed(self.seed, epoch, first_position + k))
                    images[k] = self.transform(image.permute(2, 0, 1))
            batch = default_collate(images)
        return batch, torch.tensor(labels, dtype=torch.int64), torch.tensor(indices, dtype=torch.int64)
