"""Activation maximisation (the paper's Figure 5, left): for each chosen channel of a layer, an input image
that makes the channel's mean activation large, regularised as Lucid does (Olah et al. 2017, "Feature
visualization"; the paper used Lucid).

The image is not optimised pixel by pixel (that yields high-frequency noise) but through Lucid's
parameterisation: its 2-D Fourier spectrum, each frequency scaled by 1/frequency so that all are learned at
comparable speed, in a colour space decorrelated with ImageNet's colour statistics, then squashed into
[0, 1] by a sigmoid. Every step sees it randomly padded, jittered, scaled and rotated (Lucid's
``standard_transforms``), so only patterns that survive small transformations grow. Lucid's pixel amounts
are for 128-px renders; here they scale with the render size. Adam, learning rate 0.05, 512 steps, as
Lucid's ``render_vis``.

Why not torch-lucent (Lucid's PyTorch port): version 0.1.8 (2021) pins kornia <= 0.4.1 (2020) and
declares IPython, pytest, coveralls and scikit-learn as install requirements (about 35 packages), imports
IPython when it is imported, and its transforms and preprocessing assume ImageNet-sized inputs and
normalisation; with IPython present it does run on our torch. What we would use of it is the ~60 lines
below, so we keep them here, tested, without the dependency (docs/experiments.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from mono.probes.transforms import Normalizer

__all__ = ["COLOR_CORRELATION_SVD_SQRT", "FourierImage", "channel_means", "maximize_channels"]

COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
"""Square root of ImageNet's RGB colour correlation (Lucid, ``optvis/param/color.py``)."""


class FourierImage(nn.Module):
    """``n`` images of ``size`` px parameterised by their scaled spectrum in decorrelated colour (Lucid's
    ``fft_image`` with ``decorrelate=True`` and a sigmoid)."""

    def __init__(
        self, n: int, size: int, generator: torch.Generator, sd: float = 0.01, decay_power: float = 1.0
    ) -> None:
        super().__init__()
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        frequencies = torch.sqrt(fx * fx + fy * fy)
        self.register_buffer("scale", 1.0 / frequencies.clamp(min=1.0 / size) ** decay_power)
        self.spectrum = nn.Parameter(torch.randn(n, 3, size, size // 2 + 1, 2, generator=generator) * sd)
        colour = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
        self.register_buffer("colour", colour)
        self.size = size

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        decorrelated = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        return torch.sigmoid(torch.einsum("dc,nchw->ndhw", self.colour, decorrelated))


def _random_transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Lucid's standard transforms, in pixels scaled from 128-px renders: pad 12 (grey), jitter 8, scale
    0.9-1.1, rotate -10..10 degrees, jitter 4; one draw for the whole batch."""
    size = images.shape[-1]
    unit = size / 128

    def jitter(x: torch.Tensor, amount: float) -> torch.Tensor:
        d = max(1, round(amount * unit))
        dy, dx = (int(v) for v in torch.randint(0, d + 1, (2,), generator=generator))
        return x[..., dy : x.shape[-2] - d + dy, dx : x.shape[-1] - d + dx]

    pad = max(1, round(12 * unit))
    x = jitter(F.pad(images, (pad,) * 4, value=0.5), 8)
    scales = [1 + (i - 5) / 50 for i in range(11)]
    angles = list(range(-10, 11)) + 5 * [0]
    scale = scales[int(torch.randint(len(scales), (1,), generator=generator))]
    angle = math.radians(angles[int(torch.randint(len(angles), (1,), generator=generator))])
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], device=x.device).expand(len(x), 2, 3)
    side = max(1, round(x.shape[-1] * scale))
    grid = F.affine_grid(theta, [len(x), 3, side, side], align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return jitter(x, 4)


def channel_means(
    trunk: nn.Module, normalize: Normalizer, images: torch.Tensor, layer: str, channels: Sequence[int]
) -> torch.Tensor:
    """Mean activation of channel ``channels[i]`` of ``layer`` on image ``i`` (images in [0, 1])."""
    features = trunk.forward_features((images - normalize.mean) / normalize.std, upto=layer)[layer]
    index = torch.as_tensor(list(channels), device=features.device)
    return features[torch.arange(len(index), device=features.device), index].mean(dim=(-2, -1))


def maximize_channels(
    trunk: nn.Module,
    normalize: Normalizer,
    layer: str,
    channels: Sequence[int],
    size: int,
    steps: int = 512,
    lr: float = 0.05,
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """One image per channel, ``(len(channels), 3, size, size)`` in [0, 1], and each channel's mean
    activation on its image before and after the optimisation (on the untransformed image)."""
    generator = torch.Generator().manual_seed(seed)
    device = normalize.device
    image = FourierImage(len(channels), size, generator).to(device)
    optimizer = torch.optim.Adam(image.parameters(), lr=lr)
    with torch.no_grad():
        before = channel_means(trunk, normalize, image(), layer, channels)
    for _ in tqdm(range(steps), desc=f"maximise {layer}", unit="step", disable=not progress, leave=False):
        optimizer.zero_grad(set_to_none=True)
        loss = -channel_means(trunk, normalize, _random_transform(image(), generator), layer, channels).sum()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = image()
        after = channel_means(trunk, normalize, final, layer, channels)
    return final.cpu(), {"before": before.cpu().tolist(), "after": after.cpu().tolist()}
