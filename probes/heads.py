"""Linear probes: per tapped layer, an optional max-pool, a non-affine BatchNorm and a linear classifier."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn as nn

from mono.probes.protocols import Protocol

__all__ = ["ALEXNET_POOLING", "LinearProbe", "ProbeSet", "build_probes"]

ALEXNET_POOLING = {
    # block: (kernel, stride, padding) of the max-pool that brings a 224-input AlexNet layer to ~9k dims
    "conv1": (6, 6, 3),  # 96 x 55 x 55 -> 96 x 10 x 10 = 9600
    "conv2": (4, 4, 0),  # 256 x 27 x 27 -> 256 x 6 x 6 = 9216
    "conv3": (3, 3, 1),  # 384 x 13 x 13 -> 384 x 5 x 5 = 9600
    "conv4": (3, 3, 1),  # 384 x 13 x 13 -> 384 x 5 x 5 = 9600
    "conv5": (2, 2, 0),  # 256 x 13 x 13 -> 256 x 6 x 6 = 9216
}
"""Pooling of Zhang et al. (2017) as used by DeepCluster's eval_linear.py and the authors' linear-probes code
(which max-pools, as the paper does; DeepCluster average-pools)."""

REDUCED_DIMS = 9216
"""About how many dimensions the imagenet protocol leaves per layer (9216 or 9600 for AlexNet)."""


class LinearProbe(nn.Module):
    """``reduce`` (parameter-free pooling) then ``classify`` (BatchNorm without affine, then linear).

    The two halves are separate so that reduced features can be cached and the classifier trained on them.
    """

    def __init__(self, shape: tuple[int, int, int], num_classes: int, reduce: nn.Module | None = None) -> None:
        super().__init__()
        channels, height, width = shape
        self.reduce = reduce if reduce is not None else nn.Identity()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.linear = nn.Linear(channels * height * width, num_classes)
        # Xavier-uniform weights and zero bias, as in the authors' linear-probes code.
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    def classify(self, reduced: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(reduced).flatten(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.reduce(features))


class ProbeSet(nn.Module):
    """One probe per tapped trunk block, trained together."""

    def __init__(self, probes: Mapping[str, LinearProbe]) -> None:
        super().__init__()
        self.probes = nn.ModuleDict(probes)

    @property
    def layers(self) -> list[str]:
        return list(self.probes.keys())

    def reduce(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: probe.reduce(features[name]) for name, probe in self.probes.items()}

    def classify(self, reduced: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: probe.classify(reduced[name]) for name, probe in self.probes.items()}

    def forward(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: probe(features[name]) for name, probe in self.probes.items()}


def _reducer(arch: str, layer: str, protocol: Protocol, shape: tuple[int, int, int]) -> nn.Module:
    if not protocol.reduce:
        return nn.Identity()
    if arch == "scattering":
        # no published pooling: max-pool to the square grid that comes closest to AlexNet's ~9k dimensions
        channels, height, _ = shape
        return nn.AdaptiveMaxPool2d(min(height, max(1, round(math.sqrt(REDUCED_DIMS / channels)))))
    if arch != "alexnet":
        raise ValueError(f"the {protocol.name} protocol's pooling is defined for alexnet only, not {arch}")
    kernel, stride, padding = ALEXNET_POOLING[layer]
    return nn.MaxPool2d(kernel, stride=stride, padding=padding)


def build_probes(trunk: nn.Module, protocol: Protocol, num_classes: int) -> ProbeSet:
    """A probe on every block of ``trunk``, sized for the protocol's input; init draws from torch's RNG."""
    probes = {}
    shapes = trunk.feature_shapes(protocol.input_size)
    for name in trunk.block_names:
        shape = shapes[name]
        reduce = _reducer(trunk.arch, name, protocol, shape)
        with torch.no_grad():
            reduced = tuple(reduce(torch.zeros(1, *shape)).shape[1:])
        probes[name] = LinearProbe(reduced, num_classes, reduce)
    return ProbeSet(probes)
