"""The probes' training and evaluation loops on a frozen trunk.

Two paths: *cached* (no augmentation: the reduced features of every image are computed once and the probes
train on them for all epochs) and *streaming* (augmented training and 10-crop evaluation: the trunk runs on
every batch). All probes see the same batches and train together, their losses summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from mono.probes.heads import ProbeSet
from mono.probes.transforms import Normalizer, average_crops

__all__ = [
    "LayerMeter",
    "evaluate_cached",
    "evaluate_streaming",
    "topk_correct",
    "train_epoch_cached",
    "train_epoch_streaming",
]


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Iterable[int] = (1, 5)) -> dict[int, int]:
    """How many rows have their label among the top-k scores, for each k (k capped at the class count)."""
    ks = list(ks)
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    return {k: int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks}


class LayerMeter:
    """Running per-layer loss and top-1/top-5 accuracy (in percent) over an epoch."""

    def __init__(self, layers: Iterable[str]) -> None:
        self.count = 0
        self.loss = {name: 0.0 for name in layers}
        self.top1 = dict.fromkeys(self.loss, 0)
        self.top5 = dict.fromkeys(self.loss, 0)

    def update(
        self, logits: Mapping[str, torch.Tensor], labels: torch.Tensor, losses: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        n = len(labels)
        self.count += n
        for name, out in logits.items():
            hits = topk_correct(out.detach(), labels)
            self.top1[name] += hits[1]
            self.top5[name] += hits[5]
            if losses is not None:
                self.loss[name] += float(losses[name]) * n

    def top1_of(self, name: str) -> float:
        return 100.0 * self.top1[name] / max(self.count, 1)

    def summary(self, with_loss: bool = True) -> dict[str, dict[str, float]]:
        out = {}
        for name in self.loss:
            row = {"top1": self.top1_of(name), "top5": 100.0 * self.top5[name] / max(self.count, 1)}
            if with_loss:
                row["loss"] = self.loss[name] / max(self.count, 1)
            out[name] = row
        return out


def _step(
    probes: ProbeSet,
    optimizer: torch.optim.Optimizer,
    reduced: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    meter: LayerMeter,
) -> None:
    logits = probes.classify(reduced)
    losses = {name: F.cross_entropy(out, labels) for name, out in logits.items()}
    optimizer.zero_grad(set_to_none=True)
    torch.stack(list(losses.values())).sum().backward()
    optimizer.step()
    meter.update(logits, labels, {k: v.detach() for k, v in losses.items()})


def train_epoch_cached(
    probes: ProbeSet,
    features: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    progress: bool = True,
    desc: str = "train",
    flipped: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, dict[str, float]]:
    """One epoch over cached features in the order drawn from ``generator``; with ``flipped`` (the features
    of the mirrored images), each image is seen mirrored with probability 1/2, drawn from ``generator`` too."""
    probes.train()
    device = _device(probes)
    meter = LayerMeter(probes.layers)
    order = torch.randperm(len(labels), generator=generator)
    mirror = torch.rand(len(labels), generator=generator) < 0.5 if flipped is not None else None
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        idx = order[start : start + batch_size]
        if len(idx) < 2:  # BatchNorm needs two samples; at most one image skipped per epoch
            continue
        if mirror is None:
            batch = {name: f[idx] for name, f in features.items()}
        else:
            pick = mirror[idx]
            batch = {
                name: torch.where(pick.view(-1, *[1] * (f.dim() - 1)), flipped[name][idx], f[idx])
                for name, f in features.items()
            }
        batch = {name: f.to(device, non_blocking=True).float() for name, f in batch.items()}
        _step(probes, optimizer, batch, labels[idx].to(device), meter)
    return meter.summary()


@torch.no_grad()
def evaluate_cached(
    probes: ProbeSet, features: Mapping[str, torch.Tensor], labels: torch.Tensor, batch_size: int = 1000
) -> dict[str, dict[str, float]]:
    probes.eval()
    device = _device(probes)
    meter = LayerMeter(probes.layers)
    for start in range(0, len(labels), batch_size):
        chunk = {name: f[start : start + batch_size].to(device).float() for name, f in features.items()}
        meter.update(probes.classify(chunk), labels[start : start + batch_size].to(device))
    return meter.summary(with_loss=False)


def train_epoch_streaming(
    trunk: nn.Module,
    probes: ProbeSet,
    batches: Iterable,
    normalize: Normalizer,
    optimizer: torch.optim.Optimizer,
    total: int | None = None,
    progress: bool = True,
    desc: str = "train",
) -> dict[str, dict[str, float]]:
    """One epoch on augmented images: the frozen trunk runs on every batch."""
    probes.train()
    meter = LayerMeter(probes.layers)
    last = probes.layers[-1]
    for images, labels in tqdm(batches, total=total, desc=desc, unit="batch", disable=not progress, leave=False):
        if len(labels) < 2:
            continue
        with torch.no_grad():
            reduced = probes.reduce(trunk.forward_features(normalize(images), upto=last))
        _step(probes, optimizer, reduced, labels.to(_device(probes)), meter)
    return meter.summary()


@torch.no_grad()
def evaluate_streaming(
    trunk: nn.Module,
    probes: ProbeSet,
    batches: Iterable,
    normalize: Normalizer,
    total: int | None = None,
    progress: bool = True,
    desc: str = "eval",
) -> dict[str, dict[str, float]]:
    """Evaluate on batches of single images ``(B, 3, H, W)`` or of crops ``(B, crops, 3, H, W)``; with
    crops, each image's class scores are the average of its crops' scores."""
    probes.eval()
    meter = LayerMeter(probes.layers)
    last = probes.layers[-1]
    for images, labels in tqdm(batches, total=total, desc=desc, unit="batch", disable=not progress, leave=False):
        crops = images.shape[1] if images.dim() == 5 else None
        if crops is not None:
            images = images.flatten(0, 1)
        logits = probes(trunk.forward_features(normalize(images), upto=last))
        if crops is not None:
            logits = {name: average_crops(out, crops) for name, out in logits.items()}
        meter.update(logits, labels.to(_device(probes)))
    return meter.summary(with_loss=False)
