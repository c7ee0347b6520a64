"""The trunk a tool works on: loaded from a mono checkpoint, or built at random, with where it came from.

Every probe and picture tool starts here, so a checkpoint is read, hashed and described in one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mono.learning.checkpoint import file_sha256, load_trunk
from mono.learning.errors import UserError
from mono.learning.models import GAN_NORMALIZATION, IMAGENET_NORMALIZATION, build_trunk, canonical_arch_args
from mono.learning.seeds import derive_seed

__all__ = ["RANDOM_INIT_NORMALIZATION", "TrunkSource", "load_source"]

RANDOM_INIT_NORMALIZATION = {
    # what each architecture's trainers feed it: ImageNet statistics (DeepCluster, RotNet) for alexnet,
    # [-1, 1] (GAN convention) for monogan
    "alexnet": IMAGENET_NORMALIZATION,
    "monogan": GAN_NORMALIZATION,
    # kymatio's CIFAR examples and Oyallon et al.'s code normalise with ImageNet statistics
    "scattering": IMAGENET_NORMALIZATION,
}


@dataclass
class TrunkSource:
    """The trunk and its provenance; ``checkpoint`` is None for a random init."""

    trunk: torch.nn.Module
    arch: str
    arch_args: dict[str, Any]
    normalization: dict[str, list[float]]
    checkpoint: dict[str, Any] | None
    default_label: str


def load_source(ckpt: Path | None, arch: str | None, arch_args: dict[str, Any], seed: int) -> TrunkSource:
    """The checkpoint's trunk (in eval mode), or a random ``arch`` trunk drawn from ``seed``'s "trunk" seed
    (a scattering trunk is fixed: nothing is drawn)."""
    if ckpt is not None:
        trunk, loaded = load_trunk(ckpt)
        info = {
            "path": str(Path(ckpt).resolve()),
            "sha256": file_sha256(ckpt),
            "arch": loaded.arch,
            "arch_args": loaded.arch_args,
            "method": loaded.method,
            "epoch": loaded.epoch,
            "dataset_manifest_sha256": loaded.dataset_manifest_sha256,
            "normalization": loaded.normalization,
            "format_version": loaded.version,
            "meta": loaded.meta,
        }
        return TrunkSource(
            trunk,
            loaded.arch,
            loaded.arch_args,
            loaded.normalization,
            info,
            f"{loaded.method} {loaded.arch} (epoch {loaded.epoch})",
        )
    if arch is None:
        raise UserError("give a checkpoint (--ckpt) or an architecture to initialise at random (--arch)")
    args = canonical_arch_args(arch, **arch_args)
    torch.manual_seed(derive_seed(seed, "trunk"))
    trunk = build_trunk(arch, **args).eval()
    label = f"scattering J={args['J']}" if arch == "scattering" else f"random {arch}"
    return TrunkSource(trunk, arch, args, RANDOM_INIT_NORMALIZATION[arch], None, label)
