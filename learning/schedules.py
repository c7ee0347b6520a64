"""Learning-rate schedules, and the one way a rate is set on an optimiser (also over a resumed one's)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["set_learning_rate", "step_decay"]


def step_decay(lr: float, epoch: int, milestones: Iterable[int], factor: float) -> float:
    """``lr`` times ``factor`` per milestone reached by the 0-based ``epoch`` (RotNet's schedule, the probes')."""
    return lr * factor ** sum(epoch >= m for m in milestones)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group the rate ``lr``: the schedule's, over what a resumed optimiser stored."""
    for group in optimizer.param_groups:
        group["lr"] = lr
