"""The network ``mono-probe finetune`` trains: a source trunk's first blocks, the rest of its architecture
freshly initialised, and a classifier head -- the paper's section 4.3 experiments (Tables 4 and 5).

* ``freeze`` (Table 4): conv1..BLOCK copied from the source with BatchNorm absorbed (as the linear probes
  see them) and never trained; the deeper blocks and the head are re-initialised and trained.
* ``init`` (Table 5): conv1..BLOCK initialised from the source; everything is trained.
* ``scratch``: nothing kept (a random-init source): the whole network trained with labels, which is how a
  supervised trunk is made until ``mono-train supervised`` exists.
* a ``scattering`` source replaces conv1-conv2 by the fixed scattering transform, followed by a BatchNorm
  without affine parameters (as in Oyallon et al. 2017 and kymatio's CIFAR examples) and the rest of the
  architecture whose conv2 it stands in for: monogan's conv3-conv4 at 32 px, AlexNet's conv3-conv5 at 224 px.

Heads: AlexNet's is DeepCluster's classifier (dropout, two 4096-unit layers, then the class layer), weights
N(0, 0.01); monogan's is one linear layer on the flattened conv4 map, the WGAN-GP critic's output layer,
initialised as ``mono-train monogan`` initialises that layer (Glorot-uniform, whatever the trunk's init).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn

from mono.learning.errors import UserError
from mono.learning.models import ConvBlock, Trunk, build_trunk, init_like, wgan_gp_init
from mono.probes.features import freeze_for_probing
from mono.probes.sources import TrunkSource

__all__ = ["MODES", "FinetuneNet", "build_network"]

MODES = ("freeze", "init", "scratch", "scattering")
SCATTERING_REST = {32: "monogan", 224: "alexnet"}
"""The architecture whose conv3 onwards follow a scattering trunk of each input size."""


class FinetuneNet(nn.Module):
    """``head(trunk(x))``; the blocks named in ``frozen`` have no trainable parameters and stay in eval mode."""

    def __init__(
        self, trunk: Trunk, head: nn.Module, mode: str, kept: list[str], frozen: list[str], rest_arch: str
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.mode = mode
        self.kept = kept
        """Blocks that come from the source (frozen or trained on)."""
        self.frozen = frozen
        self.rest_arch = rest_arch
        """The architecture of the re-initialised blocks and of the head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def train(self, mode: bool = True) -> FinetuneNet:
        super().train(mode)
        for name in self.frozen:
            self.trunk.blocks[name].eval()
        return self

    @property
    def trained(self) -> list[str]:
        """Trained blocks, in order."""
        return [name for name in self.trunk.block_names if name not in self.frozen]

    def export_trunk(self, source: TrunkSource) -> Trunk | None:
        """The trained trunk as its architecture builds it, for a mono checkpoint: frozen blocks are the
        source's own (with their BatchNorm), the others as trained. None for a scattering hybrid, which
        is no registered architecture."""
        if self.mode == "scattering":
            return None
        trunk = build_trunk(source.arch, **source.arch_args)
        for name in trunk.block_names:
            origin = source.trunk if name in self.frozen else self.trunk
            trunk.blocks[name].load_state_dict(origin.blocks[name].state_dict())
        return trunk.eval()


def _kept_blocks(trunk_blocks: list[str], block: str, option: str, arch: str) -> list[str]:
    if block not in trunk_blocks:
        raise UserError(f"{option} {block}: {arch} has no block {block!r}; its blocks: {', '.join(trunk_blocks)}")
    return trunk_blocks[: trunk_blocks.index(block) + 1]


def _head(rest_arch: str, features: int, num_classes: int) -> nn.Module:
    if rest_arch == "alexnet":  # DeepCluster's models/alexnet.py classifier and top layer, weights N(0, 0.01)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(features, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        for m in head.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
        return head
    # the critic's output layer, initialised as mono-train monogan initialises it: WGAN-GP's Glorot-uniform
    # (N(0, 0.01) left a PyTorch-init network's gradients too small to learn a two-colour problem in 4 epochs)
    head = nn.Sequential(nn.Flatten(), nn.Linear(features, num_classes))
    head.apply(wgan_gp_init)
    return head


def _features(trunk: nn.Module) -> int:
    channels, height, width = trunk.feature_shapes()["output"]
    return channels * height * width


class _ScatteringStem(nn.Module):
    """The fixed scattering (its conv2 output), then a BatchNorm without affine parameters that trains."""

    def __init__(self, scattering: nn.Module) -> None:
        super().__init__()
        self.scattering = scattering
        self.norm = nn.BatchNorm2d(scattering.feature_shapes()["conv2"][0], affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            coefficients = self.scattering(x)
        return self.norm(coefficients)


def _scattering_network(source: TrunkSource, num_classes: int) -> FinetuneNet:
    size = source.arch_args["size"]
    rest_arch = SCATTERING_REST[size]
    reference = build_trunk(rest_arch)
    channels = source.trunk.feature_shapes()["conv2"][0]
    blocks: dict[str, nn.Module] = {}
    for name in reference.block_names[2:]:
        blocks[name] = reference.blocks[name]
    first = reference.block_names[2]
    old = reference.blocks[first].conv
    block = ConvBlock(
        channels,
        old.out_channels,
        old.kernel_size[0],
        old.stride[0],
        old.padding[0],
        batchnorm=isinstance(reference.blocks[first].norm, nn.BatchNorm2d),
        activation=reference.arch_args["activation"],
    )
    blocks[first] = init_like(rest_arch, reference.arch_args, block)
    blocks = {name: blocks[name] for name in reference.block_names[2:]}
    pools = {name: pool for name, pool in reference.pools.items() if name in blocks}
    trunk = Trunk(
        f"scattering+{rest_arch}",
        {"scattering": source.arch_args, rest_arch: reference.arch_args},
        size,
        3,
        _ScatteringStem(source.trunk),
        blocks,
        pools,
    )
    head = _head(rest_arch, _features(trunk), num_classes)
    return FinetuneNet(trunk, head, "scattering", kept=[], frozen=[], rest_arch=rest_arch)


def build_network(source: TrunkSource, keep: str | None, block: str | None, num_classes: int) -> FinetuneNet:
    """The network for ``keep`` ("freeze", "init" or None) of conv1..``block`` from ``source``; fresh layers
    draw from torch's global RNG (seed it first)."""
    if source.arch == "scattering":
        if keep == "init" or (keep == "freeze" and block != "conv2"):
            raise UserError(
                "the scattering transform stands in for conv1-conv2 and is never trained: "
                "use it alone or with --freeze conv2"
            )
        return _scattering_network(source, num_classes)
    if keep is None:
        if source.checkpoint is not None:
            raise UserError(
                "say which layers of the checkpoint to keep: --freeze BLOCK (Table 4) or --init BLOCK (Table 5)"
            )
        trunk = copy.deepcopy(source.trunk).train()
        return FinetuneNet(trunk, _head(source.arch, _features(trunk), num_classes), "scratch", [], [], source.arch)
    option = f"--{keep}"
    kept = _kept_blocks(source.trunk.block_names, block, option, source.arch)
    trunk = build_trunk(source.arch, **source.arch_args)
    if keep == "freeze":
        frozen_source = freeze_for_probing(source.trunk)
        for name in kept:
            trunk.blocks[name] = frozen_source.blocks[name]
    else:
        for name in kept:
            trunk.blocks[name].load_state_dict(source.trunk.blocks[name].state_dict())
    head = _head(source.arch, _features(trunk), num_classes)
    return FinetuneNet(trunk, head, keep, kept, kept if keep == "freeze" else [], source.arch)


def describe_network(net: FinetuneNet) -> dict[str, Any]:
    """What results.json records of the network."""
    return {
        "mode": net.mode,
        "trunk": net.trunk.arch,
        "kept_blocks": net.kept,
        "frozen_blocks": net.frozen,
        "trained_blocks": net.trained,
        "head": net.rest_arch,
        "trainable_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
    }
