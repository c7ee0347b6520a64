"""What the four trainers share, in one module (as facebookresearch/dino's utils.py): the command line, processes
and mixed precision, batch augmentation, logs, and the run directory with its checkpoints.

Each trainer reads top to bottom without leaving its file except for this module, the models
(learning/models.py) and the data reader (learning/data): its model, optimisation step, schedule and its own
augmentation are written in the trainer; only what several trainers do the same way is here.

A run directory holds args.json, metrics.csv and tensorboard/, written by the main process only and none of them
before the first metric row or checkpoint (a mistake found while a trainer builds its models leaves nothing
behind), and checkpoint.pt in the probes' checkpoint format (docs/checkpoints.md): the trunk where mono-probe
reads it, and the method's heads, optimisers, loss scaler and trainer state in its `extra` dict, with the
architecture arguments of every module that states them (a GAN's generator, which `mono-train sample` rebuilds
from the checkpoint alone). A checkpoint is written atomically after every epoch, so a run killed at any moment
resumes from its last completed epoch when the same command is run again.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import io
import json
import math
import os
import random
import shlex
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mono.learning import atomic
from mono.learning.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mono.learning.cli_errors import run_cli
from mono.learning.cli_options import MAX_LOADERS, auto_workers
from mono.learning.data import Dataset, Loader, open_dataset
from mono.learning.device import choose_device

# The learning side's helpers that the trainers use, re-exported so that a trainer imports them from here.
from mono.learning.errors import UserError as UserError
from mono.learning.schedules import set_learning_rate as set_learning_rate
from mono.learning.schedules import step_decay as step_decay
from mono.learning.seeds import derive_seed as derive_seed
from mono.learning.seeds import seeded_generator as seeded_generator

CHECKPOINT = "checkpoint.pt"


# ---------------------------------------------------------------------------------------------------------------
# The command line


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (`prog: error: ...`, exit 2), like the other mono tools."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def get_args_parser(
    prog: str,
    description: str,
    *,
    epochs: int | Mapping[str, int],
    batch_size: int | Mapping[str, int],
    lr: float | Mapping[str, float],
    seed: int = 0,
    examples: str = "",
) -> ArgumentParser:
    """The options every trainer has, with the method's own defaults; the trainer adds its own group.

    A default given as {arch: value} depends on the trainer's --arch: the option defaults to None and
    `arch_defaults` fills it in once the arguments are parsed.
    """
    parser = ArgumentParser(
        prog=prog, description=description, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = parser.add_argument_group("data and run")
    data.add_argument("--data", required=True, help="dataset directory, URL or shard pattern (see shards/README.md)")
    data.add_argument(
        "-o",
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="run directory: checkpoint.pt, metrics.csv, tensorboard/; the same command again continues the run",
    )
    data.add_argument(
        "--format",
        choices=["ffcv", "webdataset", "folder"],
        default=None,
        help="on-disk format to read (default: the fastest present)",
    )
    data.add_argument(
        "-j",
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"data loading workers per process (default auto: the usable cores, at most {MAX_LOADERS})",
    )
    data.add_argument(
        "--resume",
        action="store_true",
        help="insist on continuing the run in --out (rerunning the same command continues it anyway)",
    )
    data.add_argument(
        "--seed", type=int, default=seed, help=f"seed for initialisation, data order and augmentation (default {seed})"
    )
    data.add_argument(
        "--device", choices=["auto", "cuda", "cpu"], default="auto", help="default auto: CUDA when available"
    )
    data.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also keep checkpoint-epochNNNN.pt every N epochs (default 0: only the latest)",
    )
    data.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        metavar="N",
        help="stop each epoch after N batches (quick checks and benchmarks; default: all)",
    )
    data.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or per-epoch lines (the final summary stays)"
    )
    data.add_argument("--record-samples", type=Path, default=None, help=argparse.SUPPRESS)  # tests: indices per rank
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=int, default=_plain_default(epochs), help=default_help(epochs))
    optim.add_argument(
        "--batch-size", type=int, default=_plain_default(batch_size), help=f"per process ({default_help(batch_size)})"
    )
    optim.add_argument("--lr", type=float, default=_plain_default(lr), help=f"learning rate ({default_help(lr)})")
    return parser


def _plain_default(value):
    return None if isinstance(value, Mapping) else value


def default_help(value) -> str:
    """'default 50', or 'default 50 with --arch alexnet, 200 with monogan' for a default that depends on --arch."""
    if not isinstance(value, Mapping):
        return f"default {value}"
    (first, v), *rest = value.items()
    return f"default {v} with --arch {first}" + "".join(f", {w} with {arch}" for arch, w in rest)


def per_arch(defaults: Mapping[str, Mapping[str, Any]], name: str) -> dict[str, Any]:
    """{arch: default} of one option, from a trainer's table of defaults per architecture."""
    return {arch: table[name] for arch, table in defaults.items()}


def arch_defaults(args: argparse.Namespace, defaults: Mapping[str, Mapping[str, Any]]) -> argparse.Namespace:
    """Fill the options the user left unset (None) with --arch's defaults from the trainer's table."""
    for name, value in defaults[args.arch].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def add_arch_args(group) -> None:
    """--arch-args, the trunk's arguments other than its defaults (as mono-train monogan's), which the checkpoint
    records with the arch so that the probes rebuild the same trunk."""
    group.add_argument(
        "--arch-args",
        default="",
        metavar="'KEY=VALUE ...'",
        help="the trunk's arguments other than the defaults, e.g. 'widths=32,64,128,256' "
        "(monogan: widths, padding, activation, init; alexnet: activation; docs/probes.md)",
    )


def check_args(args: argparse.Namespace) -> None:
    """Refuse values of the common options that cannot work, before anything is set up."""
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, got {args.lr}")
    if args.workers is None:
        args.workers = auto_workers()
    if args.workers < 0 or args.seed < 0 or args.save_every < 0:
        raise UserError("--workers, --seed and --save-every must not be negative")
    if args.steps_per_epoch is not None and args.steps_per_epoch < 1:
        raise UserError("--steps-per-epoch must be at least 1")


def run(main: Callable[[Sequence[str] | None], None], prog: str, argv: Sequence[str] | None = None) -> None:
    """A trainer's `main(argv)` as a command: user mistakes and file-system errors that name a path (an unwritable
    --out, a full disk while saving) end in one line and exit 2 (mono.learning.cli_errors); the process group is left
    whatever happens."""

    def guarded() -> None:
        try:
            main(argv)
        finally:
            shutdown()

    run_cli(guarded, prog, interrupted="interrupted; run the same command again to continue from the last checkpoint")


# ---------------------------------------------------------------------------------------------------------------
# Processes: a plain run is a world of one; torchrun's are NCCL on GPUs, gloo on the CPU


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> Distributed:
    """Join the process group torchrun describes in the environment; `device` is "auto", "cuda" or "cpu"."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    where = choose_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    if where.type == "cuda":
        torch.cuda.set_device(where)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if where.type == "cuda" else "gloo", init_method="env://")
    return Distributed(rank, world_size, where)


def ddp(module: nn.Module, processes: Distributed) -> nn.Module:
    """`module` wrapped for data-parallel training when several processes run; itself otherwise."""
    if not processes.enabled:
        return module
    ids = [processes.device.index] if processes.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if _initialized():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all ranks (identity in a world of one)."""
    if _initialized():
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


def all_reduce_min(value: torch.Tensor) -> int:
    """The smallest positive value of an integer scalar over ranks (a rank holding 0 has none)."""
    if _initialized():
        value = torch.where(value > 0, value, torch.iinfo(torch.int64).max)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return int(value)


def all_reduce_gradients(parameters: Sequence[nn.Parameter]) -> None:
    """Average the gradients of `parameters` over ranks in one collective (no-op in a world of one).

    Data parallelism for the GANs, which DistributedDataParallel does not fit: they run a network several times
    per step and differentiate gradients (the WGAN-GP penalty). Every rank starts from the same seeded weights,
    so equal averaged gradients keep the replicas equal.
    """
    if not _initialized() or dist.get_world_size() == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_object(obj, src: int = 0):
    """`obj` as rank `src` holds it, on every rank."""
    if not _initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shutdown() -> None:
    if _initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------------
# Numerics and randomness


class MixedPrecision:
    """bf16 autocast and channels-last on CUDA (fp16 where bf16 is missing, with loss scaling); float32 on CPU.

    The trainers step as `scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()`: the scaler is
    disabled, and those calls are plain backward and step, everywhere but fp16.
    """

    def __init__(self, device: torch.device):
        cuda = device.type == "cuda"
        self.device = device
        self.dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
        self.memory_format = torch.channels_last if cuda else torch.contiguous_format
        self.scaler = torch.amp.GradScaler("cuda", enabled=cuda and self.dtype == torch.float16)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def to_device(self, module: nn.Module) -> nn.Module:
        return module.to(self.device, memory_format=self.memory_format)

    def inputs(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)


def fix_random_seeds(seed: int) -> None:
    """Seed Python, NumPy and torch (the models' initialisation); each epoch's randomness has its own generators,
    seeded_generator(seed, rank, epoch, purpose)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Diverged(UserError):
    """A loss or a weight became NaN or infinite; the run stops and the checkpoint on disk is the last good one.

    A UserError, so that the command line reports it as one line (the usual cure is a lower --lr).
    """


class StepMetrics:
    """An epoch's per-step scalars, kept on the device: a training step never waits for the host.

    `add` queues a step's values (no synchronisation); `latest` (at log steps) and `means` (at the end of an
    epoch) synchronise once, average over ranks and raise Diverged on every rank together if any value since
    the epoch began was NaN or infinite, naming the first such step. A bad step is caught before the next
    checkpoint is written, so the checkpoint on disk is always a good one; on a GPU the steps between the bad
    one and the check ran for nothing, which costs less than a synchronisation per step.
    """

    def __init__(self, device: torch.device) -> None:
        self.sums: dict[str, torch.Tensor] = {}  # float64: means as exact as a float sum of the steps' values
        self.counts: dict[str, int] = {}
        self.last: dict[str, tuple[int, torch.Tensor]] = {}
        self.bad_step = torch.zeros((), dtype=torch.int64, device=device)  # the first bad step, 0 while none
        self.bad_values: dict[str, torch.Tensor] = {}  # the values added at that step

    def add(self, step: int, **values: torch.Tensor) -> None:
        stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
        first = (self.bad_step == 0) & ~torch.isfinite(stacked).all()
        self.bad_step = torch.where(first, step, self.bad_step)
        for name, value in zip(values, stacked):
            self.sums[name] = self.sums.get(name, 0) + value.double()
            self.counts[name] = self.counts.get(name, 0) + 1
            self.last[name] = (step, value)
            self.bad_values[name] = torch.where(first, value, self.bad_values.get(name, value.new_zeros(())))

    def latest(self, step: int, epoch: int, run_dir: Path) -> dict[str, float]:
        """The values added at step `step`, averaged over ranks, as floats."""
        names = [name for name, (at, _) in self.last.items() if at == step]
        return self._synchronise(names, [self.last[name][1] for name in names], epoch, run_dir)

    def means(self, epoch: int, run_dir: Path) -> dict[str, float]:
        """Each value's mean over the epoch's steps (each name over the steps that produced it)."""
        names = list(self.sums)
        return self._synchronise(names, [self.sums[name] / self.counts[name] for name in names], epoch, run_dir)

    def _synchronise(self, names: list[str], values: list[torch.Tensor], epoch: int, run_dir: Path) -> dict:
        checked = torch.stack([self.bad_step.double(), *[v.double() for v in values]])
        bad, *floats = all_reduce_mean(checked).tolist()  # one transfer for the check and the values
        if bad:
            step = all_reduce_min(self.bad_step)
            found = {name: float(value) for name, value in self.bad_values.items()}
            found = ", ".join(f"{name} {value}" for name, value in found.items() if not math.isfinite(value))
            raise Diverged(f"training diverged at step {step} ({found}); {_kept(epoch, run_dir)}")
        return dict(zip(names, floats))


def _kept(epoch: int, run_dir: Path) -> str:
    """What a diverged run leaves: the checkpoint written before epoch `epoch` began, if any."""
    if epoch == 0:
        return "no checkpoint had been written yet; lower --lr and start again"
    return (
        f"the last good checkpoint (epoch {epoch}) is kept in {run_dir / CHECKPOINT}; "
        "rerun the command with a lower --lr to continue from it"
    )


# ---------------------------------------------------------------------------------------------------------------
# Batch augmentation, on the device the batch is on; random numbers from an explicit CPU generator, so that a run
# is reproducible whatever the device


def random_crop(
    batch: torch.Tensor, size: int, generator: torch.Generator, flip: bool = True, padding: int = 0
) -> torch.Tensor:
    """A random size×size window of each image (uniform position), mirrored left-right with probability ½.

    Pure indexing: the pixels are copied, not resampled, as torchvision's RandomCrop + RandomHorizontalFlip.
    `padding` first surrounds the images with that many black (zero) pixels, as RandomCrop(size, padding)
    does (the CIFAR-10 recipe: 32 px crops of images padded by 4).
    """
    if padding:
        batch = F.pad(batch, (padding, padding, padding, padding))
    b, _, height, width = batch.shape
    if size > min(height, width):
        raise ValueError(f"crop of {size} px from {height}×{width} images")
    top = torch.randint(0, height - size + 1, (b,), generator=generator)
    left = torch.randint(0, width - size + 1, (b,), generator=generator)
    steps = torch.arange(size)
    rows = top[:, None] + steps  # (B, size)
    cols = left[:, None] + steps
    if flip:
        mirrored = torch.rand(b, generator=generator) < 0.5
        cols = torch.where(mirrored[:, None], left[:, None] + size - 1 - steps, cols)
    rows, cols = rows.to(batch.device), cols.to(batch.device)
    index_b = torch.arange(b, device=batch.device)[:, None, None, None]
    index_c = torch.arange(batch.shape[1], device=batch.device)[None, :, None, None]
    return batch[index_b, index_c, rows[:, None, :, None], cols[:, None, None, :]]


def downscale(batch: torch.Tensor, size: int) -> torch.Tensor:
    """Area-averaged resize to size×size (exact box filter for integer factors), float in [0, 255]."""
    return F.interpolate(batch.float(), size=(size, size), mode="area")


def normalize(batch: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Pixels in [0, 255] -> ((x / 255) - mean) / std, per channel."""
    mean_t = torch.tensor(mean, device=batch.device, dtype=torch.float32).view(1, -1, 1, 1) * 255
    std_t = torch.tensor(std, device=batch.device, dtype=torch.float32).view(1, -1, 1, 1) * 255
    return (batch.float() - mean_t) / std_t


# ---------------------------------------------------------------------------------------------------------------
# Data


def open_training_set(location: str, format: str | None) -> Dataset:
    """The dataset at `location` (mono.learning.data.open_dataset); a UserError when it holds no samples."""
    dataset = open_dataset(location, format=format)
    if dataset.num_samples == 0:
        raise UserError(f"{location}: the dataset holds no samples")
    return dataset


def image_side(dataset: Dataset, trunk_size: int | None) -> int | None:
    """The side of the images as the trunk is fed them: `trunk_size` for a trunk of fixed input size (the 32 px
    encoder; larger images are shrunk to it), refusing smaller images; else the dataset's own side."""
    if trunk_size is None:
        return dataset.image_size
    if dataset.image_size and dataset.image_size < trunk_size:
        raise UserError(
            f"the 32 px trunk needs images of at least {trunk_size} px; the dataset's are {dataset.image_size} px"
        )
    return trunk_size


ALEXNET_SMALLEST = 63  # the smallest input whose AlexNet feature maps do not vanish


def check_crop(crop: int, side: int | None, arch: str, data: str, padding: int = 0) -> None:
    """Refuse a --crop larger than the images (padded by `padding`) in one line that names one that fits: 7/8 of
    the side (224 of 256) without padding, the side itself with it (the CIFAR recipe); for AlexNet at least its
    smallest input, else the 32 px trunk."""
    limit = (side or 0) + 2 * padding
    if not side or crop <= limit:
        return
    good = side if padding else side * 7 // 8
    if arch == "alexnet" and good < ALEXNET_SMALLEST <= limit:
        good = ALEXNET_SMALLEST
    padded = f" padded by {padding}" if padding else ""
    if arch == "alexnet" and limit < ALEXNET_SMALLEST:
        advice = f"alexnet needs crops of at least {ALEXNET_SMALLEST} px: use --arch monogan for such small images"
    else:
        advice = f"use --crop {good} (at most {limit})"
        advice += ", or --arch monogan for 32 px data" if arch == "alexnet" and side <= 64 else ""
    raise UserError(f"--crop {crop} is larger than the dataset's {side} px images{padded} ({data}); {advice}")


def dataset_sha256(dataset: Dataset) -> str | None:
    """The hash of the dataset's configuration (its manifest's config_sha256), which checkpoints record."""
    return (dataset.manifest or {}).get("config_sha256")


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


def recording(loader: Loader, directory: Path | None, rank: int) -> Loader | RecordingLoader:
    """`loader`, recording the indices it yields under DIRECTORY/rank<rank> when --record-samples is given."""
    return RecordingLoader(loader, Path(directory) / f"rank{rank}") if directory else loader


# ---------------------------------------------------------------------------------------------------------------
# Logs: a progress bar with images/s, running means, metrics.csv and TensorBoard (in RunDir)


class Progress:
    """A progress bar over an epoch's batches showing images/s and the latest losses (main process only)."""

    def __init__(self, total: int, desc: str, enabled: bool, clock: Orientation | None = None):
        self.clock = clock  # a training epoch's bar also shows the whole run's ETA
        self.bar = tqdm(
            total=total,
            desc=desc,
            unit="batch",
            disable=not enabled,
            dynamic_ncols=True,
            leave=False,
        )
        self.started = time.monotonic()
        self.images = 0
        self.shown: dict[str, float] = {}

    def update(self, images: int, **metrics: float) -> None:
        """One batch done; `metrics` (given at log steps, when they are on the host) replace those shown."""
        self.images += images
        self.shown = metrics or self.shown
        postfix = {**{k: f"{v:.4g}" for k, v in self.shown.items()}, "img/s": f"{self.images_per_second:,.0f}"}
        if self.clock is not None:
            self.clock.tick()
            postfix["run left"] = self.clock.remaining()
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    @property
    def images_per_second(self) -> float:
        return self.images / max(time.monotonic() - self.started, 1e-9)

    def close(self) -> None:
        self.bar.close()


class Orientation:
    """What a run tells its user around the training, on stdout from the main process (with --quiet too): a header
    once the data is open (device, precision, dataset, steps), the whole run's remaining time measured as it goes
    (on the progress bars and the epoch lines), and at the end the checkpoint and the command that probes it."""

    def __init__(
        self,
        method: str,
        args: argparse.Namespace,
        processes: Distributed,
        amp: MixedPrecision,
        dataset: Dataset,
        steps_per_epoch: int,
        start_epoch: int,
    ):
        self.method, self.args, self.processes, self.amp, self.dataset = method, args, processes, amp, dataset
        self.steps_per_epoch = steps_per_epoch
        self.total = steps_per_epoch * args.epochs
        self.left = steps_per_epoch * max(args.epochs - start_epoch, 0)  # steps this process will run
        self.done = 0
        self.started = time.monotonic()

    def header(self) -> None:
        if not self.processes.is_main or self.args.quiet:  # orientation, like mono-gen's plan line (docs/cli.md)
            return
        device = self.processes.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp.dtype, "fp32")
        world = f" × {self.processes.world_size} processes" if self.processes.enabled else ""
        size = f"{self.dataset.image_size} px" if self.dataset.image_size else "mixed sizes"
        done = f" ({self.total - self.left:,} done)" if self.left < self.total else ""
        print(
            f"mono-train {self.method}: {device} ({name}){world}, {precision}; data {self.dataset.location}: "
            f"{self.dataset.num_samples:,} samples of {size}\n"
            f"mono-train {self.method}: {self.steps_per_epoch:,} steps per epoch of {self.args.batch_size} per "
            f"process, {self.args.epochs} epochs = {self.total:,} steps{done} -> {self.args.out}",
            flush=True,
        )

    def tick(self) -> None:
        """One training step done."""
        self.done += 1

    def remaining(self) -> str:
        """The whole run's remaining time, from the time per step measured since the header (which includes the
        work between epochs: clustering, checkpoints)."""
        if not self.done:
            return "?"
        seconds = (time.monotonic() - self.started) / self.done * max(self.left - self.done, 0)
        return _duration(seconds)

    def eta(self) -> str:
        """For an epoch's line: ', run ends in 2h05m'."""
        return f", run ends in {self.remaining()}" if self.done < self.left else ""

    def finish(self) -> None:
        if not self.processes.is_main:
            return
        path = Path(self.args.out) / CHECKPOINT
        arch = getattr(self.args, "arch", None) or self.method  # mono-train monogan has no --arch: its trunk's name
        command = probe_command(path, Path(self.args.out), arch)
        print(f"mono-train {self.method}: checkpoint: {path}\nnext: {command}", flush=True)


def probe_command(checkpoint: Path, out: Path, arch: str) -> str:
    """The linear probe of a trained trunk: the CIFAR protocol for the 32 px trunk, ImageNet's for AlexNet."""
    words = ["mono-probe", "linear", "--ckpt", str(checkpoint)]
    if arch == "monogan":
        words += ["--protocol", "cifar", "--train", "CIFAR/train", "--val", "CIFAR/test"]
    else:
        words += ["--train", "IMAGENET/train", "--val", "IMAGENET/val"]
    return shlex.join(words + ["--out", str(out.with_name(out.name + "-linear"))])


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def check_batches(steps_per_epoch: int, args: argparse.Namespace, dataset: Dataset, world_size: int) -> None:
    """Refuse a --batch-size that leaves an epoch without one full batch, naming one that works."""
    if steps_per_epoch > 0:
        return
    per_process = dataset.num_samples // world_size
    processes = f" per process ({world_size} processes)" if world_size > 1 else ""
    raise UserError(
        f"--batch-size {args.batch_size} is larger than the {per_process:,} samples{processes} of {args.data}: "
        f"no epoch has a full batch; use --batch-size {max(per_process // 4, 1)} (at most {per_process})"
    )


# ---------------------------------------------------------------------------------------------------------------
# The run directory and its checkpoints


def check_writable(run_dir: Path) -> None:
    """Refuse an --out this user cannot create or write before training for an epoch, not after; nothing is
    created here (the run directory appears with the run's first file)."""
    existing = Path(run_dir)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {run_dir}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {run_dir}: cannot write in {existing} (permission denied)")


# Options that may change between the runs of one run directory: how it runs, not what it computes.
# --lr too: the cure for a diverged run is its last good checkpoint continued with a lower --lr.
RUN_ONLY = {
    "out", "workers", "device", "quiet", "resume", "epochs", "steps_per_epoch", "save_every", "log_every", "lr"
}  # fmt: skip
HIDDEN = {"record_samples"}  # options for tests, never recorded in args.json


def find_resume(args: argparse.Namespace) -> Checkpoint | None:
    """The checkpoint in --out to continue from, or None for a fresh run (docs/cli.md: the same command again
    continues). A run directory whose run was made with other options is refused, naming the first that differs;
    --resume insists that there is something to continue."""
    path = Path(args.out) / CHECKPOINT
    if not path.exists():
        if args.resume:
            raise UserError(f"--resume: no {CHECKPOINT} in {args.out} to continue from")
        return None
    checkpoint = load_checkpoint(path)
    recorded = (checkpoint.meta or {}).get("args") or {}
    current = recorded_args(args)
    for name, value in current.items():
        if name in RUN_ONLY or name not in recorded or recorded[name] == value:
            continue
        option = "--" + name.replace("_", "-")
        raise UserError(
            f"{args.out} holds a run made with {option} {_shown(recorded[name])}, not {_shown(value)}; "
            "repeat its options to continue it or choose another --out"
        )
    return checkpoint


def _shown(value) -> str:
    return "(none)" if value is None else "''" if value == "" else str(value)


def recorded_args(args: argparse.Namespace | dict) -> dict:
    """The options a run records in args.json and its checkpoint: all but the hidden ones, as storable values."""
    items = vars(args) if isinstance(args, argparse.Namespace) else args
    return _plain({name: value for name, value in items.items() if name not in HIDDEN})


def resume_position(checkpoint: Checkpoint | None, epochs: int, announce: bool) -> tuple[int, int]:
    """(epochs done, steps done) of the run a checkpoint continues, (0, 0) for a fresh run; `announce` says so
    when the run already has its --epochs."""
    if checkpoint is None:
        return 0, 0
    if checkpoint.epoch >= epochs and announce:
        where = checkpoint.path.parent
        print(f"{checkpoint.method}: {where} already finished {checkpoint.epoch} epochs (--epochs {epochs})")
    return checkpoint.epoch, int((checkpoint.extra or {}).get("state", {}).get("step", 0))


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def architectures(modules: dict[str, nn.Module]) -> dict[str, dict]:
    """`{name: {"arch", "arch_args"}}` for the modules that describe themselves (an `arch` name and the
    `arch_args` that rebuild them), so a checkpoint can rebuild them without the run's command line."""
    out = {}
    for name, module in modules.items():
        core = unwrap(module)
        if hasattr(core, "arch") and hasattr(core, "arch_args"):
            out[name] = {"arch": core.arch, "arch_args": dict(core.arch_args)}
    return out


def non_finite(modules: dict[str, nn.Module]) -> str | None:
    """The name of the first module whose parameters or buffers hold NaN or infinity, or None."""
    for name, module in modules.items():
        for tensor in unwrap(module).state_dict().values():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return name
    return None


def restore(
    checkpoint: Checkpoint | None,
    *,
    method: str,
    dataset_sha256: str | None,
    trunk: nn.Module,
    modules: dict[str, nn.Module] | None = None,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load a checkpoint's weights and optimiser state into a freshly built run; returns its trainer state
    ({} for a fresh run). Refuses a checkpoint of another method, dataset or architecture."""
    if checkpoint is None:
        return {}
    if checkpoint.method != method:
        raise UserError(f"{checkpoint.path} is a {checkpoint.method} run, not {method}")
    if dataset_sha256 and checkpoint.dataset_manifest_sha256 not in (None, dataset_sha256):
        raise UserError(f"{checkpoint.path} was trained on another dataset (manifest hash differs)")
    core = unwrap(trunk)
    if (checkpoint.arch, checkpoint.arch_args) != (core.arch, core.arch_args):
        raise UserError(
            f"{checkpoint.path} holds {checkpoint.arch} {checkpoint.arch_args}, "
            f"this run builds {core.arch} {core.arch_args}"
        )
    extra = checkpoint.extra or {}
    stored = extra.get("architectures") or {}
    for name, built in architectures(modules or {}).items():
        if name in stored and stored[name] != built:
            raise UserError(
                f"{checkpoint.path} holds a {name} {stored[name]['arch_args']}, this run builds {built['arch_args']}"
            )
    core.load_state_dict(checkpoint.state_dict)
    for name, module in (modules or {}).items():
        if name not in (extra.get("modules") or {}):
            raise UserError(f"{checkpoint.path} holds no {name} weights")
        unwrap(module).load_state_dict(extra["modules"][name])
    for name, optimizer in (optimizers or {}).items():
        optimizer.load_state_dict(extra["optimizers"][name])
    if scaler is not None and extra.get("scaler"):
        scaler.load_state_dict(extra["scaler"])
    return dict(extra.get("state") or {})


RUN_LOCK = ".mono-train.lock"


def _hold_run_dir(path: Path) -> int:
    """An exclusive lock on RUN_DIR for this process (fcntl.flock on RUN_DIR/.mono-train.lock, released by the
    kernel however the process ends): two trainers writing one run directory would interleave their logs and
    overwrite each other's checkpoints, so the second is refused in one line, having written nothing."""
    fd = os.open(path / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{path} is in use by {holder}; wait for it to finish or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"mono-train (pid {os.getpid()})\n".encode())
    return fd


class RunDir:
    """RUN_DIR's files: args.json, metrics.csv, tensorboard/ and the checkpoints.

    Only the main process writes (`enabled`), and nothing before the first metric row or checkpoint (or `open`).
    The CSV columns are fixed here, so a resumed run appends to the same table; rows that a killed run wrote
    after `resume_step`, its last checkpoint's step, are dropped when the log opens (all of them for a fresh run).
    """

    def __init__(
        self,
        path: Path,
        args: dict,
        metrics: list[str],
        *,
        method: str,
        dataset_sha256: str | None,
        enabled: bool,
        resume_step: int,
        save_every: int = 0,
    ):
        self.path = Path(path)
        self.args = recorded_args(args)
        self.columns = ["epoch", "step", "time", *metrics]
        self.method = method
        self.dataset_sha256 = dataset_sha256
        self.enabled = enabled
        self.resume_step = resume_step
        self.save_every = save_every
        self._writer = None
        self._started = time.time()

    def open(self) -> None:
        """Create RUN_DIR, args.json and the logs (once); until then the run has written nothing."""
        if not self.enabled or self._writer is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        lock = _hold_run_dir(self.path)
        self._release = weakref.finalize(self, os.close, lock)  # at close(), or when the run is dropped
        atomic.write_text(self.path / "args.json", json.dumps(_plain(self.args), indent=2) + "\n")
        metrics = self.path / "metrics.csv"
        new = not metrics.exists()
        if not new:
            self._truncate_after(metrics, self.resume_step)
        self._file = open(metrics, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        if new:
            self._csv.writeheader()
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.path / "tensorboard"), purge_step=self.resume_step)

    def _truncate_after(self, path: Path, step: int) -> None:
        """Drop rows a killed or failed run wrote after its last checkpoint (all of them when it left none), so
        the log of the run that continues has no duplicates; rewritten atomically."""
        kept = []
        if step > 0:
            with open(path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(kept)
        atomic.write_text(path, text.getvalue())

    def log(self, epoch: int, step: int, **metrics: float | None) -> None:
        """A row of metrics.csv and TensorBoard scalars (a missing value is NaN in the CSV, absent in TensorBoard)."""
        if not self.enabled:
            return
        self.open()
        row = {"epoch": epoch, "step": step, "time": round(time.time() - self._started, 3)}
        row.update({k: (float(v) if v is not None else math.nan) for k, v in metrics.items()})
        self._csv.writerow(row)
        self._file.flush()
        for name, value in metrics.items():
            if value is not None:
                self._writer.add_scalar(name, float(value), step)

    def save(
        self,
        epoch: int,
        step: int,
        *,
        trunk: nn.Module,
        normalization: dict,
        modules: dict[str, nn.Module] | None = None,
        optimizers: dict[str, torch.optim.Optimizer] | None = None,
        scaler: torch.amp.GradScaler | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        """Checkpoint after `epoch` completed epochs and `step` steps (the main process writes, everyone waits),
        and a numbered copy every --save-every epochs.

        Weights holding NaN or infinity are never written: Diverged is raised and the previous checkpoint stays.
        """
        broken = non_finite({"trunk": trunk, **(modules or {})})
        if broken:
            raise Diverged(
                f"training diverged in epoch {epoch}: the {broken} weights hold NaN or infinity; "
                f"{_kept(epoch - 1, self.path)}"
            )
        if self.enabled:
            self.open()
            core = unwrap(trunk)
            extra = {
                "modules": {name: unwrap(m).state_dict() for name, m in (modules or {}).items()},
                "architectures": architectures(modules or {}),
                "optimizers": {name: o.state_dict() for name, o in (optimizers or {}).items()},
                "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
                "state": {**(state or {}), "step": step},
            }
            path = self.path / CHECKPOINT
            save_checkpoint(
                path,
                core,
                arch=core.arch,
                arch_args=core.arch_args,
                normalization=normalization,
                method=self.method,
                dataset_manifest_sha256=self.dataset_sha256,
                epoch=epoch,
                meta={"args": _plain(self.args)},
                extra=extra,
            )
            if self.save_every and epoch % self.save_every == 0:
                atomic.write_bytes(path.with_name(f"checkpoint-epoch{epoch:04d}.pt"), path.read_bytes())
        barrier()

    def close(self) -> None:
        if self._writer is not None:
            self._file.close()
            self._writer.close()
            self._writer = None
            self._release()


def _plain(args: dict) -> dict:
    """Arguments as storable values (paths become strings)."""
    out = {}
    for key, value in args.items():
        if isinstance(value, Path):
            value = str(value)
        if value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [str(v) if isinstance(v, Path) else v for v in value]
        else:
            out[key] = str(value)
    return out
