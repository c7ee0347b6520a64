"""The frozen trunk the probes read: a copy in eval mode, BatchNorm absorbed into the preceding convolution.

Absorbing BatchNorm (with its running statistics) into the convolution before it is what the paper and the
authors' code do; in eval mode it computes the same function with one layer less per block.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from learning.models import ConvBlock

__all__ = ["absorb_batchnorm", "freeze_for_probing"]


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
