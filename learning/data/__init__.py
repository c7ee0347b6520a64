"""Read mono datasets into PyTorch: one API for FFCV, WebDataset shards (local or streamed) and folders.

    from mono.learning.data import Loader, open_dataset

    dataset = open_dataset("shards/ameyoko")           # or "https://host/d/", "…/train-{000000..000127}.tar"
    loader = Loader(dataset, 256, shuffle=True, seed=0, num_workers=8, drop_last=True,
                    batch_transform=augment)            # runs on the collated uint8 batch
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for images, labels, indices in loader:          # uint8 (B, 3, S, S), int64 (B,), int64 (B,)
            ...

The format, the number of DataLoader workers and the machine do not change the batches: they are a
function of (seed, epoch, rank, world_size, batch_size). See docs/loading.md.
"""

from ..errors import UserError
from .dataset import FORMATS, Dataset, open_dataset
from .loader import DEFAULT_SHUFFLE_BUFFER, Loader

__all__ = ["DEFAULT_SHUFFLE_BUFFER", "FORMATS", "Dataset", "Loader", "UserError", "open_dataset"]
