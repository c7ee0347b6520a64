"""Numerics and randomness of a run: mixed precision on CUDA, plain float32 on CPU, derived seeds."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from learning.errors import UserError


class Diverged(UserError):
    """A loss or a weight became NaN or infinite; the run stops and the checkpoint on disk is the last good one.

    A UserError, so that the command line reports it as one line (the usual cure is a lower --lr).
    """


@dataclass
class Precision:
    """bf16 autocast and channels-last on CUDA (fp16 with loss scaling where bf16 is missing); float32 on CPU."""

    device: torch.device

    def __post_init__(self):
        cuda = self.device.type == "cuda"
        self.dtype = None
        if cuda:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.memory_format = torch.channels_last if cuda else torch.contiguous_format
        self.scaler = torch.amp.GradScaler("cuda", enabled=cuda and self.dtype == torch.float16)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.to(self.device, memory_format=self.memory_format)

    def inputs(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimiser step, with loss scaling only where fp16 needs it."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; per-epoch randomness derives its own seeds from this one."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
