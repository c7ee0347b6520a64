"""The scattering transform as a fixed trunk: the hand-crafted baseline the paper puts in place of conv1-conv2.

A scattering network (Mallat 2012; Bruna & Mallat 2013) convolves the image with Morlet wavelets at J scales
and L orientations, takes the modulus, repeats once, and averages every path with a low-pass window of 2^J
pixels. Oyallon et al. (2017, "Scaling the scattering transform: deep hybrid networks") showed that learned
layers on top of it reach AlexNet accuracy; the paper uses it as the reference for what conv1-conv2 need not
learn. We use kymatio's implementation (Andreux et al. 2020) and expose it with the trunk interface of
:mod:`learning.models`, so the probes read it like any other trunk:

* ``conv1`` -- the first scattering layer: orders 0 and 1, 1 + J*L coefficients per colour channel;
* ``conv2`` -- the second layer: orders 0, 1 and 2, 1 + J*L + L*L*J*(J-1)/2 coefficients per colour channel;

both at size / 2^J pixels. J = 2 at 32 px (8x8 maps, as in kymatio's CIFAR examples; monogan's conv2 gives
6x6) and J = 4 at 224 px (14x14, the size of AlexNet's conv3 input; the default of Oyallon et al.'s ImageNet code,
``edouardoyallon/scalingscattering``, ``imagenet/main_test.py --scat``).

The wavelet filters are rebuilt from code and never stored: the trunk has no parameters and an empty
state dict.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mono.learning.errors import UserError

__all__ = ["SCATTERING_J", "ScatteringTrunk", "scattering_channels"]

SCATTERING_J = {32: 2, 224: 4}
"""Default number of scales per input size."""


def scattering_channels(J: int, L: int, max_order: int = 2) -> int:
    """Coefficients per colour channel up to ``max_order``: 1, then J*L, then L*L*J*(J-1)/2."""
    return 1 + J * L + (L * L * J * (J - 1) // 2 if max_order >= 2 else 0)


def _kymatio_2d():
    # kymatio 0.3.0's ``kymatio.torch`` also imports its 3-D transform, which needs scipy.special.sph_harm,
    # removed in scipy 1.17 (kymatio issue #1068); the 2-D frontend alone imports cleanly.
    try:
        from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D
    except ImportError as exc:
        raise UserError(f"the scattering trunk needs kymatio (pip install kymatio): {exc}") from None
    return ScatteringTorch2D


class ScatteringTrunk(nn.Module):
    """Fixed scattering of order 2 with the trunk interface (``block_names``, ``forward_features``,
    ``feature_shapes``) for ``size`` x ``size`` inputs."""

    arch = "scattering"

    def __init__(self, size: int, J: int, L: int) -> None:
        super().__init__()
        self.arch_args = {"size": size, "J": J, "L": L}
        self.input_size = size
        self.in_channels = 3
        self.J, self.L = J, L
        self.scattering = _kymatio_2d()(J=J, shape=(size, size), L=L, max_order=2)
        for name, buffer in list(self.scattering.named_buffers(recurse=False)):
            delattr(self.scattering, name)  # the filters follow .to(device) but stay out of the state dict
            self.scattering.register_buffer(name, buffer, persistent=False)

    @property
    def block_names(self) -> list[str]:
        return ["conv1", "conv2"]

    def forward_features(self, x: torch.Tensor, upto: str | None = None) -> dict[str, torch.Tensor]:
        """``conv1`` (orders 0-1) and ``conv2`` (orders 0-2) as ``(B, 3 * coefficients, size/2^J, size/2^J)``."""
        if upto is not None and upto not in self.block_names:
            raise KeyError(f"scattering has no block {upto!r}; blocks: conv1, conv2")
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise UserError(
                f"this scattering trunk takes {self.input_size}x{self.input_size} images, "
                f"not {x.shape[-2]}x{x.shape[-1]}"
            )
        coefficients = self.scattering(x.contiguous())  # (B, 3, K, h, w), ordered by scattering order
        first = coefficients[:, :, : scattering_channels(self.J, self.L, max_order=1)]
        features = {"conv1": first.flatten(1, 2)}
        if upto != "conv1":
            features["conv2"] = coefficients.flatten(1, 2)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)["conv2"]

    def feature_shapes(self, input_size: int | None = None) -> dict[str, tuple[int, int, int]]:
        """(channels, height, width) of both blocks and of the output, computed without running it."""
        if input_size not in (None, self.input_size):
            raise UserError(
                f"this scattering trunk is built for {self.input_size} px inputs, not {input_size}; "
                f"build it with --arch-args size={input_size}"
            )
        side = self.input_size // 2**self.J
        shapes = {
            "conv1": (3 * scattering_channels(self.J, self.L, 1), side, side),
            "conv2": (3 * scattering_channels(self.J, self.L, 2), side, side),
        }
        shapes["output"] = shapes["conv2"]
        return shapes
