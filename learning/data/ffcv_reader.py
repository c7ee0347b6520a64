"""Read a rank's epoch from FFCV's train.beton with ffcv's own Loader (JIT-compiled, threaded decoding).

The plan's order is handed to ffcv as `indices` with sequential order, so FFCV yields the same
samples in the same batches as the other readers. FFCV decodes whole batches to uint8 in its
threads; it has no per-sample Python transform (that is what makes it fast): augment the batch
instead, with the Loader's batch_transform, on the GPU if you like.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import torch

from ..errors import UserError
from .order import RankPlan

INSTALL = "apt-get install pkg-config libturbojpeg0-dev libopencv-dev && pip install 'mono[ffcv]'"


def ffcv_installed() -> bool:
    """Whether ffcv can be imported, without paying for the import (about 10 s: numba compiles)."""
    try:
        return importlib.util.find_spec("ffcv") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["ffcv"] is None, i.e. blocked
        return False


def require_ffcv() -> None:
    """One clear line instead of an ImportError deep in a training run."""
    try:
        import ffcv  # noqa: F401
    except ImportError:
        raise UserError(f"reading train.beton needs the optional ffcv package: {INSTALL}") from None


class BetonBatches:
    def __init__(self, path: str, num_workers: int, num_classes: int):
        require_ffcv()
        self.path = path
        self.threads = max(1, num_workers)
        self.num_classes = num_classes  # a label outside 0..num_classes-1 is refused, not passed on

    def batches(self, plan: RankPlan, copy: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The plan's batches. FFCV reuses its buffers a few batches later: with `copy` we hand out
        tensors of our own (a plain memcpy, channels_last like the other readers'); without it the
        caller must copy them (to a GPU) before asking for more."""
        from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
        from ffcv.loader import Loader, OrderOption
        from ffcv.transforms import ToTensor, ToTorchImage

        if not len(plan.order):
            return
        loader = Loader(
            self.path,
            batch_size=plan.batch_size,
            num_workers=self.threads,
            order=OrderOption.SEQUENTIAL,
            indices=plan.order,
            drop_last=False,
            pipelines={
                "image": [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage(channels_last=True)],
                "label": [IntDecoder(), ToTensor()],
            },
        )
        epoch = iter(loader)  # ffcv's EpochIterator: a thread decoding ahead of us
        try:
            for k, (images, labels) in enumerate(epoch):
                labels = labels.reshape(-1)
                if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes:
                    raise UserError(
                        f"{self.path}: batch {k} has labels outside the dataset's classes "
                        f"0..{self.num_classes - 1}; check the dataset with mono-shards verify"
                    )
                if copy:
                    images, labels = images.clone(), labels.clone()
                yield images, labels, torch.from_numpy(plan.batch(k)[1].copy())
        finally:
            # A consumer that stops early (a step limit, an error) must not leave the thread decoding into
            # buffers about to be freed: at interpreter exit that aborts the process. It stops at its next
            # full queue, a few batches ahead at most.
            epoch.terminate_event.set()
            epoch.join(timeout=120)
            epoch.close()
