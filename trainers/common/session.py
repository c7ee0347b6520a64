"""What every training run sets up the same way: processes, numerics, run directory, data, logs, checkpoints."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from learning import atomic
from learning.data import Loader, open_dataset
from learning.errors import UserError
from learning.seeds import seeded_generator

from . import state
from .distributed import all_reduce_mean, barrier, init_distributed
from .options import check_common
from .runlog import Progress, RunLog
from .runtime import Diverged, Precision, seed_everything


class Session:
    """One run of one trainer: `Session(args, method, metrics)` then `loader()`, `ddp()`, `save()`, `close()`."""

    def __init__(self, args: argparse.Namespace, method: str, metrics: list[str]):
        check_common(args)
        self.args = args
        self.method = method
        self.dist = init_distributed(args.device)
        self.precision = Precision(self.dist.device)
        self.run_dir = Path(args.out)
        if self.dist.is_main:
            _check_writable(self.run_dir)
        self.dataset = open_dataset(args.data, format=args.format)
        if self.dataset.num_samples == 0:
            raise UserError(f"{args.data}: the dataset holds no samples")
        manifest = self.dataset.manifest or {}
        self.dataset_sha256 = manifest.get("config_sha256")
        self.resume_from = state.find_resume(self.run_dir, args.resume)
        self.start_epoch = self.resume_from.epoch if self.resume_from else 0
        self.saved_epoch: int | None = self.resume_from.epoch if self.resume_from else None
        """Epochs held by RUN_DIR/checkpoint.pt (None before the first save): what a diverged run keeps."""
        if self.start_epoch >= args.epochs and self.dist.is_main:
            print(f"{method}: {self.run_dir} already finished {self.start_epoch} epochs (--epochs {args.epochs})")
        seed_everything(args.seed)
        # Nothing is written until the first metric row or checkpoint: a mistake found while the trainer
        # builds its models (a crop too small for the trunk, say) leaves no run directory behind.
        # A fresh run (no checkpoint) keeps no rows a run before it left in RUN_DIR: it starts from step 0.
        self.log = RunLog(
            self.run_dir,
            metrics,
            enabled=self.dist.is_main,
            prepare=self._prepare_run_dir,
            resume_step=self.resume_step if self.resume_from else 0,
        )

    def _prepare_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.run_dir / "args.json", json.dumps(_jsonable(vars(self.args)), indent=2) + "\n")

    def begin(self) -> None:
        """Start writing the run (main process): RUN_DIR, args.json, the logs. The first metric row or
        checkpoint does it too; call it earlier only to keep files of your own in RUN_DIR."""
        self.log.open()

    @property
    def resume_step(self) -> int:
        return int((self.resume_from.extra or {}).get("state", {}).get("step", 0)) if self.resume_from else 0

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def loader(
        self, batch_size: int | None = None, *, shuffle: bool = True, drop_last: bool = True, **options
    ) -> Loader:
        """Batches of uint8 images for this rank (see learning.data.Loader), seeded by --seed."""
        loader = Loader(
            self.dataset,
            batch_size or self.args.batch_size,
            shuffle=shuffle,
            seed=self.args.seed,
            num_workers=self.args.workers,
            drop_last=drop_last,
            device=self.device,
            **options,
        )
        if self.args.record_samples and shuffle:
            return RecordingLoader(loader, Path(self.args.record_samples) / f"rank{self.dist.rank}")
        return loader

    def generator(self, epoch: int, purpose: int = 0) -> torch.Generator:
        """Augmentation randomness for one epoch of this rank: a function of (seed, rank, epoch, purpose)."""
        return seeded_generator(self.args.seed, self.dist.rank, epoch, purpose)

    def ddp(self, module: nn.Module) -> nn.Module:
        """Wrap for data-parallel training when several processes run; identity otherwise."""
        if not self.dist.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def steps(self, loader: Loader) -> int:
        limit = self.args.steps_per_epoch
        return min(len(loader), limit) if limit else len(loader)

    def progress(self, total: int, epoch: int) -> Progress:
        return Progress(total, epoch, self.args.epochs, enabled=self.dist.is_main and not self.args.quiet)

    def restore(self, **parts) -> dict[str, Any]:
        """Load the resumed checkpoint into the run's modules and optimisers (see state.restore_state)."""
        if self.resume_from is None:
            return {}
        return state.restore_state(self.resume_from, method=self.method, dataset_sha256=self.dataset_sha256, **parts)

    def check_finite(self, step: int, **values: torch.Tensor) -> dict[str, float]:
        """Step `step`'s scalar values averaged over ranks, as floats (one synchronisation).

        Raises Diverged on every rank together when one is NaN or infinite, before any optimiser step
        applies it; the checkpoint on disk is left as it is.
        """
        stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
        floats = dict(zip(values, all_reduce_mean(stacked).tolist()))
        bad = [f"{name} {value}" for name, value in floats.items() if not math.isfinite(value)]
        if bad:
            raise Diverged(f"training diverged at step {step} ({', '.join(bad)}); {self._kept()}")
        return floats

    def _kept(self) -> str:
        if self.saved_epoch is None:
            return "no checkpoint had been written yet; lower --lr and start again"
        return (
            f"the last good checkpoint (epoch {self.saved_epoch}) is kept in {self.run_dir / state.CHECKPOINT}; "
            "lower --lr and continue with --resume"
        )

    def save(self, epoch: int, *, trunk: nn.Module, normalization: dict, step: int, **parts) -> None:
        """Checkpoint after `epoch` completed epochs (main process writes, everyone waits).

        Weights holding NaN or infinity are never written: Diverged is raised and the previous
        checkpoint stays.
        """
        broken = state.non_finite({"trunk": trunk, **(parts.get("modules") or {})})
        if broken:
            raise Diverged(
                f"training diverged in epoch {epoch}: the {broken} weights hold NaN or infinity; {self._kept()}"
            )
        if self.dist.is_main:
            self.begin()
            trainer_state = dict(parts.pop("state", {}) or {})
            trainer_state["step"] = step
            state.save_state(
                self.run_dir,
                trunk=trunk,
                normalization=normalization,
                method=self.method,
                dataset_sha256=self.dataset_sha256,
                epoch=epoch,
                args=vars(self.args),
                scaler=self.precision.scaler,
                state=trainer_state,
                keep_copy=bool(self.args.save_every) and epoch % self.args.save_every == 0,
                **parts,
            )
        barrier()
        self.saved_epoch = epoch

    def end_epoch(self, epoch: int, step: int, metrics: dict[str, float | None], **checkpoint) -> None:
        """Checkpoint after epoch `epoch` (counted from 0), then write the epoch's metrics row.

        In that order: a row is only ever written for an epoch whose checkpoint is safely on disk, so a
        run that fails to save (a full disk) leaves no row that its rerun would write a second time.
        `checkpoint` is what `save` takes besides the epoch and step.
        """
        self.save(epoch + 1, step=step, **checkpoint)
        self.log.log(epoch, step, **metrics)

    def close(self) -> None:
        self.log.close()


class RecordingLoader:
    """A loader that also appends every epoch's sample indices to DIR/epochNNN.txt (for tests and debugging)."""

    def __init__(self, loader: Loader, directory: Path):
        self.loader = loader
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def set_epoch(self, epoch: int, indices=None) -> None:
        self.loader.set_epoch(epoch, indices)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        with open(self.directory / f"epoch{self.loader.epoch:03d}.txt", "a") as record:
            for images, labels, indices in self.loader:
                record.write("".join(f"{i}\n" for i in indices.tolist()))
                yield images, labels, indices


def _check_writable(run_dir: Path) -> None:
    """Refuse an --out this user cannot create or write before training for an epoch, not after; nothing is
    created here (the run directory appears with the run's first file)."""
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {run_dir}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {run_dir}: cannot write in {existing} (permission denied)")


def _jsonable(args: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()}
