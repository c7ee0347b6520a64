"""The order of one epoch, and how it is split over DDP ranks, DataLoader workers and batches.

Everything here is a pure function of the dataset's layout and (seed, epoch, rank, world_size,
batch_size): every process computes the same plan without talking to the others, and the plan does
not depend on the format read nor on the number of DataLoader workers.

The order is the one a streaming reader with a shuffle buffer produces: chunks (shards) in a random
order, each sample repeated as often as it occurs in the epoch's multiset, then a shuffle buffer.
A reader that streams the chunks in that order therefore never holds more than about
`buffer + batch_size` samples, while random-access formats (FFCV, a folder) just index it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """The samples, grouped in chunks read as a whole when streaming (one per shard)."""

    first: np.ndarray  # index of each chunk's first sample
    count: np.ndarray  # samples in each chunk; chunk c holds first[c] .. first[c] + count[c] - 1
    size: int  # one more than the largest sample index (the dataset's d, even for a subset of shards)

    @classmethod
    def of_chunks(cls, chunks: list[tuple[int, int]], size: int | None = None) -> Layout:
        first = np.array([f for f, _ in chunks], np.int64)
        count = np.array([c for _, c in chunks], np.int64)
        return cls(first, count, size if size is not None else int((first + count).max(initial=0)))

    @classmethod
    def of_samples(cls, num_samples: int) -> Layout:
        """Random access: every sample is its own chunk, so a shuffled epoch is a uniform permutation."""
        return cls(np.arange(num_samples, dtype=np.int64), np.ones(num_samples, np.int64), num_samples)

    @property
    def num_samples(self) -> int:
        return int(self.count.sum())

    def indices(self) -> np.ndarray:
        """Every sample index, chunk by chunk."""
        return _ranges(self.first, self.count)

    def chunk_of(self, indices: np.ndarray) -> np.ndarray:
        """Chunk holding each sample (chunks are sorted by first index)."""
        order = np.argsort(self.first, kind="stable")
        return order[np.searchsorted(self.first[order], indices, side="right") - 1]


def epoch_order(
    layout: Layout, *, shuffle: bool, seed: int, epoch: int, buffer: int, counts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's sample indices in order, and the chunk order a streaming reader follows.

    `counts[i]` is how many times sample i occurs in the epoch (default: once each). Without
    shuffling the order is by index, each sample repeated in place.
    """
    rng = np.random.default_rng([seed, epoch])
    chunks = rng.permutation(len(layout.first)) if shuffle else np.argsort(layout.first, kind="stable")
    stream = _ranges(layout.first[chunks], layout.count[chunks])
    if counts is not None:
        stream = np.repeat(stream, counts[stream])
    if shuffle:
        stream = buffer_shuffle(stream, buffer, rng)
    return stream, chunks


def buffer_shuffle(stream: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """What a shuffle buffer of `size` items emits when fed `stream`: each new item replaces (and
    emits) a uniformly chosen one; the last `size` come out in random order."""
    n = len(stream)
    size = min(size, n)
    if size <= 1:
        return stream.copy()
    buffer = stream[:size].tolist()
    picks = (rng.random(n - size) * size).astype(np.int64).tolist()
    out = []
    emit = out.append
    for j, item in zip(picks, stream[size:].tolist()):
        emit(buffer[j])
        buffer[j] = item
    tail = np.asarray(buffer, np.int64)[rng.permutation(size)]
    return np.concatenate([np.asarray(out, np.int64), tail])


def rank_share(
    order: np.ndarray, rank: int, world_size: int, batch_size: int, drop_last: bool
) -> tuple[int, np.ndarray]:
    """This rank's contiguous part of the epoch: (its offset in the epoch, its samples).

    Without drop_last the ranks partition the epoch exactly (sizes differ by at most one), so every
    sample is seen exactly once. With drop_last every rank gets the same number of full batches,
    floor(floor(L / world_size) / batch_size), as DDP training needs; the rest of the epoch is skipped.
    """
    total = len(order)
    if drop_last:
        per_rank = total // world_size
        start = rank * per_rank
        return start, order[start : start + per_rank // batch_size * batch_size]
    start, stop = rank * total // world_size, (rank + 1) * total // world_size
    return start, order[start:stop]


def worker_batches(num_batches: int, worker: int, num_workers: int) -> range:
    """Batches a DataLoader worker makes: every num_workers-th, so that the DataLoader, which takes one
    batch from each worker in turn, yields batches 0, 1, 2, … whatever the number of workers."""
    return range(worker, num_batches, num_workers)


def _ranges(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of range(first[k], first[k] + count[k]) for all k, vectorised."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(first - np.concatenate([[0], np.cumsum(count)[:-1]]), count)
    return starts + np.arange(total, dtype=np.int64)


@dataclass(frozen=True)
class RankPlan:
    """One rank's share of one epoch, as handed to the readers (and to DataLoader workers)."""

    epoch: int
    order: np.ndarray  # this rank's sample indices, in order
    offset: int  # position of order[0] in the epoch (seeds the per-sample augmentation)
    chunks: np.ndarray  # the epoch's chunk order, which a streaming reader follows
    batch_size: int

    @property
    def num_batches(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def batch(self, k: int) -> tuple[int, np.ndarray]:
        """(position in the epoch of its first sample, sample indices) of batch k."""
        start = k * self.batch_size
        return self.offset + start, self.order[start : start + self.batch_size]


def plan(
    layout: Layout,
    *,
    epoch: int,
    shuffle: bool,
    seed: int,
    buffer: int,
    batch_size: int,
    rank: int,
    world_size: int,
    drop_last: bool,
    counts: np.ndarray | None = None,
) -> RankPlan:
    order, chunks = epoch_order(layout, shuffle=shuffle, seed=seed, epoch=epoch, buffer=buffer, counts=counts)
    offset, share = rank_share(order, rank, world_size, batch_size, drop_last)
    return RankPlan(epoch, share, offset, chunks, batch_size)
