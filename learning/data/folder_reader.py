"""Read a rank's epoch from an ImageFolder tree (`<class>/<file>`), such as `mono-shards export --to folder`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UserError
from .workers import WorkerBatches


class FolderBatches(WorkerBatches):
    def __init__(self, paths: list[str], labels: np.ndarray, make):
        super().__init__(make)
        self.paths = paths  # by sample index
        self.labels = labels

    def batches(self, plan, mine: range) -> Iterator:
        for k in mine:
            indices = plan.batch(k)[1].tolist()
            yield self.emit(plan, k, [_read(self.paths[i]) for i in indices], [int(self.labels[i]) for i in indices])


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
