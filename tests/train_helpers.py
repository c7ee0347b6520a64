"""Helpers for trainer tests: tiny datasets made by mono-gen, and trainer runs in this process."""
from __future__ import annotations

import csv
from pathlib import Path

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

    module = importlib.import_module(f"trainers.{method}")
    module.main([str(a) for a in args])


def metrics(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))
