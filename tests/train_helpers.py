"""Helpers for trainer tests: tiny datasets made by mono-gen, and trainer runs in this process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from gen_helpers import mono_gen

# AlexNet's smallest comfortable input: 64 px crops of 72 px images keep the CPU tests fast.
SIZE, CROP = 72, 64
TINY = ["--epochs", 1, "--batch-size", 8, "--crop", CROP, "--head-width", 256, "--workers", 0, "--quiet"]


def tiny_dataset(root: Path, image: Path, samples: int = 256, size: int = SIZE) -> Path:
    out = root / f"data-{samples}-{size}"
    if not out.exists():
        mono_gen("--image", image, "--samples", samples, "--size", size, "--shard-size", 64, "--out", out)
    return out


def train(method: str, *args) -> None:
    """Run `mono-train METHOD args` in-process; raise if it exits with an error."""
    import importlib

    module = importlib.import_module(f"mono.trainers.{method}")
    module.main([str(a) for a in args])


def metrics(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def torchrun(method: str, *args, seen: Path) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node=2 -m mono.trainers.METHOD args` on the CPU (gloo), each rank recording the sample
    indices it trains on under `seen`."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        f"mono.trainers.{method}",
        *map(str, args),
        "--record-samples",
        str(seen),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def seen_by_rank(seen: Path, epoch: int = 0) -> list[np.ndarray]:
    return [np.loadtxt(seen / f"rank{r}" / f"epoch{epoch:03d}.txt", dtype=int, ndmin=1) for r in (0, 1)]
