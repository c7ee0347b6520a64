"""Read a rank's epoch from WebDataset shards, local or over HTTP, streaming.

Each DataLoader worker streams, in the plan's chunk order, the shards that hold samples of its
batches, keeps those samples (skipping the others; a seek on local files) and emits a batch as soon
as all its samples have been read. Because the plan's order is a shuffle buffer's output, that is
never more than about `shuffle_buffer + batch_size` encoded samples held per worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import UserError
from .order import Layout
from .tar_reader import iter_samples
from .workers import WorkerBatches


class ShardBatches(WorkerBatches):
    def __init__(self, shards: list[str], layout: Layout, make, num_classes: int, remote: bool = False):
        super().__init__(make)
        self.shards = shards  # one path or URL per chunk of the layout
        self.layout = layout
        self.num_classes = num_classes  # a label outside 0..num_classes-1 is refused, not passed on
        self.remote = remote  # URLs the user gave; local shards are only ever opened as files

    def batches(self, plan, mine: range) -> Iterator:
        layout = self.layout
        segments = [plan.batch(k)[1] for k in mine]
        needed, uses = np.unique(np.concatenate(segments), return_counts=True)
        # Read the needed samples chunk by chunk in the plan's chunk order, by index within a chunk.
        chunk = layout.chunk_of(needed)
        chunk_rank = np.empty(len(layout.first), np.int64)
        chunk_rank[plan.chunks] = np.arange(len(plan.chunks))
        reading = np.lexsort((needed, chunk_rank[chunk]))
        read_at = np.empty(len(needed), np.int64)
        read_at[reading] = np.arange(len(needed))
        # Batch j can be made once the last of its samples has been read.
        ready = [int(read_at[np.searchsorted(needed, s)].max()) for s in segments]
        remaining = dict(zip(needed.tolist(), uses.tolist()))
        cache: dict[int, tuple[bytes, int]] = {}
        done = 0
        read = 0
        for c, members in _runs(chunk[reading], needed[reading]):
            url = self.shards[c]
            wanted = set(members)
            for index, jpg, label in _read(url, wanted, self.remote):
                if not 0 <= label < self.num_classes:
                    raise UserError(
                        f"{url}: sample {index} has label {label}, outside the dataset's classes "
                        f"0..{self.num_classes - 1}; check the dataset with mono-shards verify"
                    )
                cache[index] = (jpg, label)
                read += 1
                while done < len(segments) and ready[done] < read:
                    yield self._make(plan, mine[done], segments[done], cache, remaining)
                    done += 1

    def _make(self, plan, k: int, segment: np.ndarray, cache: dict, remaining: dict):
        indices = segment.tolist()
        encoded = [cache[i][0] for i in indices]
        labels = [cache[i][1] for i in indices]
        for i in indices:
            remaining[i] -= 1
            if not remaining[i]:
                del cache[i]
        return self.emit(plan, k, encoded, labels)


def _runs(chunks: np.ndarray, indices: np.ndarray) -> Iterator[tuple[int, list[int]]]:
    """(chunk, its indices) for each run of equal chunks."""
    if not len(chunks):
        return
    cuts = np.flatnonzero(np.diff(chunks)) + 1
    for part_chunks, part in zip(np.split(chunks, cuts), np.split(indices, cuts)):
        yield int(part_chunks[0]), part.tolist()


def _read(url: str, wanted: set[int], remote: bool) -> Iterator[tuple[int, bytes, int]]:
    """The wanted samples of one shard, all of them; stops reading once all are found."""
    left = len(wanted)
    try:
        with _open(url, remote) as stream:
            for sample in iter_samples(stream, wanted.__contains__, url):
                yield sample
                left -= 1
                if not left:
                    return
        raise UserError(f"{url}: lacks {left} of its samples; the shards do not match manifest.json")
    except FileNotFoundError:
        raise UserError(f"{url}: shard missing") from None
    except ValueError as exc:  # damaged archive
        raise UserError(f"{exc}; check the dataset with mono-shards verify") from None
    except OSError as exc:  # a disk error, or a failed download (curl's exit status)
        raise UserError(f"{url}: cannot read ({exc.strerror})" if exc.strerror else f"{url}: download failed") from None


def _open(url: str, remote: bool):
    """A local shard is a file, whatever its name looks like; only a location the user gave as a URL goes
    through webdataset's opener (curl for http(s), and whatever else it can open, `pipe:` commands too)."""
    if remote:
        import webdataset as wds

        return wds.gopen(url)
    return open(url, "rb")
