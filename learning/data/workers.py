"""The DataLoader side of the WebDataset and folder readers: each worker makes every W-th batch.

torch's DataLoader takes one item from each worker in turn, so when worker w of W makes batches
w, w + W, w + 2W, … of the rank's plan, the batches come out as 0, 1, 2, … for any W (0 included).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch.utils.data import IterableDataset, get_worker_info

from ..errors import UserError
from .decode import BatchMaker
from .order import RankPlan, worker_batches


@dataclass(frozen=True)
class Failure:
    """A UserError met in a DataLoader worker, passed on as a value for the Loader to raise: raised
    in the worker it would come back wrapped in the worker's traceback, and the DataLoader would then
    wait seconds for that worker to exit."""

    message: str


class WorkerBatches(IterableDataset):
    """Batches of one rank's epoch; subclasses say how to fetch the encoded samples of some batches."""

    def __init__(self, make: BatchMaker):
        super().__init__()
        self.make = make
        self.plan: RankPlan | None = None  # set by the Loader before each epoch's DataLoader starts

    def __iter__(self) -> Iterator:
        plan = self.plan
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = worker_batches(plan.num_batches, worker, workers)
        try:
            if len(mine):
                yield from self.batches(plan, mine)
        except UserError as exc:
            yield Failure(str(exc))

    def batches(self, plan: RankPlan, mine: range) -> Iterator:
        """The batches `mine` of the plan, in that order."""
        raise NotImplementedError

    def emit(self, plan: RankPlan, k: int, encoded: list[bytes], labels: list[int]):
        position, indices = plan.batch(k)
        return self.make(encoded, labels, indices.tolist(), position, plan.epoch)
