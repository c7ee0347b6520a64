"""MonoGAN's update rule, WGAN-GP gradient penalty and initialisation, and the image grid that shows what a
generator learned (the DCGAN generator itself is in learning/models.py).

Images live in [-1, 1] on both sides of the adversarial game (learning.models.GAN_NORMALIZATION, also what the
probes apply to the trained trunk), as in DCGAN and both original codes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from learning import atomic
from trainers.common.distributed import all_reduce_gradients
from trainers.common.runtime import Precision


def simultaneous_update(precision: Precision, *updates: tuple[torch.Tensor, torch.optim.Optimizer]) -> None:
    """Step each optimiser on the gradient of its own loss, all gradients taken before any step.

    Each loss is differentiated with respect to its optimiser's parameters only, so a player's loss never
    leaves gradients on the other players; with one (loss, optimiser) pair this is a plain update. Several
    pairs give simultaneous gradient descent, the original BiGAN's update (`update_both` with k = 1).
    Gradients are averaged over ranks (see all_reduce_gradients).
    """
    for i, (loss, optimizer) in enumerate(updates):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grads = torch.autograd.grad(precision.scaler.scale(loss), params, retain_graph=i < len(updates) - 1)
        for p, g in zip(params, grads):
            p.grad = g
        all_reduce_gradients(params)
    for _, optimizer in updates:
        precision.scaler.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
    precision.scaler.update()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator, weight: float = 10.0
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3): weight · E[(‖∇x̂ D(x̂)‖₂ − 1)²] at x̂ = real + α(fake − real),
    α ~ U(0, 1) per sample (drawn from `generator`). Differentiable with respect to the critic's weights.

    Computed in float32 even under autocast: it is a difference of gradient norms, then differentiated again.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    mixed = (real.detach().float() + alpha * (fake.detach().float() - real.detach().float())).requires_grad_(True)
    with torch.autocast(device_type=mixed.device.type, enabled=False):
        scores = critic(mixed)
        (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


@torch.no_grad()
def tflib_init(module: nn.Module) -> None:
    """WGAN-GP's (igul222/improved_wgan_training, tflib/ops) initialisation, biases 0, BatchNorm at identity:
    linear layers Glorot-uniform U(±√3·√(2/(in+out))); convolutions He-uniform U(±√3·√(4/(fan_in+fan_out)))
    with fan = channels·k², the output fan divided by stride² for convolutions and the input fan for
    transposed ones (apply with Module.apply)."""
    if isinstance(module, nn.Linear):
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (module.in_features + module.out_features))
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        k = module.kernel_size[0] * module.kernel_size[1]
        stride2 = module.stride[0] * module.stride[1]
        fan_in, fan_out = module.in_channels * k, module.out_channels * k
        if isinstance(module, nn.ConvTranspose2d):
            fan_in /= stride2
        else:
            fan_out /= stride2
        bound = math.sqrt(3.0) * math.sqrt(4.0 / (fan_in + fan_out))
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
        return
    else:
        return
    nn.init.uniform_(module.weight, -bound, bound)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) images in [-1, 1] -> (B, H, W, 3) uint8, rounding to the nearest level."""
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Images in [-1, 1] tiled row by row on a black background, `padding` pixels around each: (H, W, 3) uint8."""
    pixels = to_pixels(images)
    n, h, w, _ = pixels.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((padding + rows * (h + padding), padding + columns * (w + padding), 3), np.uint8)
    for i, image in enumerate(pixels):
        top, left = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def write_image_grid(images: torch.Tensor, path: Path, columns: int | None = None) -> Path:
    """Write `image_grid(images)` as a PNG, atomically (learning.atomic): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(image_grid(images, columns)).save(buffer, format="PNG")
    atomic.write_bytes(path, buffer.getvalue(), fsync=False)
    return path
