"""How a checkpoint becomes probe features.

1. ``mono.learning.checkpoint.load_trunk`` rebuilds the trunk from the checkpoint alone (architecture, arguments,
   weights) with the normalisation it was trained with.
2. ``freeze_for_probing``: a copy in eval mode, BatchNorm absorbed into the preceding convolution. Absorbing
   BatchNorm (with its running statistics) is what the paper and the authors' code do; in eval mode it
   computes the same function with one layer less per block.
3. ``trunk.forward_features(images, upto=last)`` gives each probed block's output after its activation.
4. Each probe's ``reduce`` (heads.py) max-pools its layer to about 9,000 dimensions (imagenet protocol) or
   leaves it as is (cifar); ``extract_features`` caches the result for a whole split when the protocol has
   no augmentation, so the probes train on the cache (loops.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from tqdm import tqdm

from mono.learning.models import ConvBlock
from mono.probes.heads import ProbeSet
from mono.probes.transforms import Normalizer

__all__ = ["absorb_batchnorm", "extract_features", "freeze_for_probing"]

FLOAT16_MAX = float(torch.finfo(torch.float16).max)


@torch.no_grad()
def _absorb(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot absorb a BatchNorm without running statistics")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.affine:
        scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    new_bias = bias * scale + shift
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias)
    else:
        conv.bias.copy_(new_bias)


def absorb_batchnorm(trunk: nn.Module) -> nn.Module:
    """Fold every conv block's BatchNorm into its convolution, in place; returns ``trunk``."""
    for block in trunk.modules():
        if isinstance(block, ConvBlock) and isinstance(block.norm, nn.BatchNorm2d):
            _absorb(block.conv, block.norm)
            block.norm = nn.Identity()
    return trunk


def freeze_for_probing(trunk: nn.Module) -> nn.Module:
    """A copy of ``trunk`` with BatchNorm absorbed, in eval mode, with no parameter requiring gradients."""
    frozen = absorb_batchnorm(copy.deepcopy(trunk).eval())
    frozen.requires_grad_(False)
    return frozen


@torch.no_grad()
def extract_features(
    trunk: nn.Module,
    probes: ProbeSet,
    images: torch.Tensor,
    normalize: Normalizer,
    batch_size: int = 500,
    desc: str = "features",
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Reduced features of every image for every probed layer, kept in CPU memory as float16 (float32 for a
    layer whose values exceed float16's range); the trunk runs where ``normalize`` puts the images."""
    layers, last = probes.layers, probes.layers[-1]
    cache: dict[str, torch.Tensor] = {}
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        batch = normalize(images[start : start + batch_size])
        reduced = probes.reduce(trunk.forward_features(batch, upto=last))
        for name in layers:
            z = reduced[name]
            if name not in cache:
                cache[name] = torch.empty((len(images), *z.shape[1:]), dtype=torch.float16)
            if cache[name].dtype == torch.float16 and z.abs().max() > FLOAT16_MAX:
                cache[name] = cache[name].float()
            cache[name][start : start + len(z)] = z.cpu()
    return cache
