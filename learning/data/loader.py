"""The Loader: one rank's batches of (images, labels, indices), epoch after epoch, in any format."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import UserError
from .dataset import Dataset
from .decode import BatchMaker
from .ffcv_reader import BetonBatches
from .folder_reader import FolderBatches
from .order import RankPlan, plan
from .shard_reader import ShardBatches
from .workers import Failure

DEFAULT_SHUFFLE_BUFFER = 5_000


class Loader:
    """Batches `(images, labels, indices)` of a dataset for this DDP rank (docs/loading.md).

    images: uint8 (B, 3, S, S) in channels_last memory layout (as decoded: no transposing copy), or
        what `transform` returns, collated; then `batch_transform(images)`, after the move to `device`
    labels: int64 (B,), the source image of each sample (a folder's class)
    indices: int64 (B,), each sample's index in the dataset (stable across epochs and formats)

    The epoch's order depends on (seed, epoch) and, for the split, on (rank, world_size, batch_size):
    not on the format read nor on num_workers. Call `set_epoch` before each epoch, as with
    DistributedSampler. Every sample of the epoch goes to exactly one rank; without drop_last, rank r
    of R gets positions floor(r·L/R) … floor((r+1)·L/R) − 1 of the epoch's L samples (counts differ by
    at most one, and so may the number of batches); with drop_last every rank gets
    floor(floor(L/R)/B) full batches and the rest of the epoch is skipped (use it for DDP training).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[torch.Tensor], object] | None = None,
        batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        num_workers: int = 0,
        drop_last: bool = False,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        rank: int | None = None,
        world_size: int | None = None,
        device: torch.device | str | None = None,
    ):
        if batch_size < 1 or num_workers < 0 or shuffle_buffer < 1:
            raise ValueError("batch_size and shuffle_buffer must be positive, num_workers non-negative")
        if seed < 0:
            raise ValueError("seed must be non-negative")
        self.dataset = dataset
        self.format = dataset.format_for(per_sample_transform=transform is not None)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.batch_transform = batch_transform
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.shuffle_buffer = shuffle_buffer
        self.rank, self.world_size = _placement(rank, world_size)
        self.device = torch.device(device) if device is not None else None
        self.epoch = 0
        self._counts: np.ndarray | None = None
        self._plan: RankPlan | None = None
        make = BatchMaker(transform, seed)
        if self.format == "ffcv":
            self._reader = BetonBatches(dataset.beton, num_workers, dataset.num_classes)
        elif self.format == "webdataset":
            self._reader = ShardBatches(list(dataset.shards), dataset.layout, make, dataset.num_classes, dataset.remote)
        else:
            paths, labels = dataset.folder
            self._reader = FolderBatches(paths, labels, make)

    def set_epoch(self, epoch: int, indices: Sequence[int] | np.ndarray | None = None) -> None:
        """Make the next iteration epoch `epoch`; `indices`, if given, is the epoch's multiset of samples
        (repeats allowed: each occurrence is one sample of the epoch), e.g. DeepCluster's uniform
        sampling over pseudo-label clusters. Without it, every sample once."""
        if epoch < 0:
            raise ValueError("epoch must be non-negative")
        counts = None
        if indices is not None:
            indices = np.asarray(indices, dtype=np.int64).reshape(-1)
            layout = self.dataset.layout
            valid = np.zeros(layout.size, bool)
            valid[layout.indices()] = True
            if len(indices) and (indices.min() < 0 or indices.max() >= layout.size or not valid[indices].all()):
                raise ValueError("indices must be sample indices of the dataset")
            counts = np.bincount(indices, minlength=layout.size)
        self.epoch, self._counts, self._plan = epoch, counts, None

    @property
    def plan(self) -> RankPlan:
        """This rank's share of the current epoch."""
        if self._plan is None:
            self._plan = plan(
                self.dataset.layout,
                epoch=self.epoch,
                shuffle=self.shuffle,
                seed=self.seed,
                buffer=self.shuffle_buffer,
                batch_size=self.batch_size,
                rank=self.rank,
                world_size=self.world_size,
                drop_last=self.drop_last,
                counts=self._counts,
            )
        return self._plan

    @property
    def num_samples(self) -> int:
        """Samples this rank sees in the current epoch."""
        return len(self.plan.order)

    def __len__(self) -> int:
        """Batches this rank yields in the current epoch."""
        return self.plan.num_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for batch in self._batches(self.plan):
            if isinstance(batch, Failure):
                raise UserError(batch.message)
            images, labels, indices = batch
            if self.device is not None:
                images = images.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                indices = indices.to(self.device, non_blocking=True)
            if self.batch_transform is not None:
                images = self.batch_transform(images)
            yield images, labels, indices

    def _batches(self, rank_plan: RankPlan) -> Iterator:
        if self.format == "ffcv":  # copying to an accelerator already gives us our own tensors
            return self._reader.batches(rank_plan, copy=self.device is None or self.device.type == "cpu")
        self._reader.plan = rank_plan
        cuda = self.device is not None and self.device.type == "cuda"
        return iter(DataLoader(self._reader, batch_size=None, num_workers=self.num_workers, pin_memory=cuda))


def _placement(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size): as given, else from torch.distributed when initialised, else (0, 1)."""
    if (rank is None) != (world_size is None):
        raise ValueError("give both rank and world_size, or neither")
    if rank is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    return rank, world_size
