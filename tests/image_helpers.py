"""Tiny synthetic image folders and checkpoints for the fine-tuning and picture tests (no shared data)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from learning.checkpoint import save_checkpoint
from learning.models import build_trunk

SMALL_MONOGAN = {"widths": [8, 16, 16, 16]}
"""A monogan narrow enough to train in a second on CPU."""


def colour_folders(root: Path, train: int = 16, val: int = 8, size: int = 32, seed: int = 0) -> Path:
    """ImageFolder splits ``root/train`` and ``root/val`` of two classes, reddish and bluish noise."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for cls, channel in (("blue", 2), ("red", 0)):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
                pixels[..., channel] += 120
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
    return root


def monogan_checkpoint(path: Path, seed: int = 0, **arch_args) -> Path:
    """A random monogan trunk (``SMALL_MONOGAN`` unless told otherwise) saved as a mono checkpoint."""
    args = arch_args or SMALL_MONOGAN
    torch.manual_seed(seed)
    return save_checkpoint(path, build_trunk("monogan", **args), arch="monogan", arch_args=args,
                           normalization={"mean": [0.5] * 3, "std": [0.5] * 3}, method="test",
                           dataset_manifest_sha256=None, epoch=1, meta={})
