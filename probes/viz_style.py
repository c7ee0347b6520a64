"""Neural style transfer with any trunk (the paper's Figure 3): Gatys, Ecker & Bethge (CVPR 2016), as in
PyTorch's tutorial "Neural transfer using PyTorch" (Jacq & Pernet), which the paper followed.

An image is optimised, starting from the content image, so that one layer's features match the content
image's (content loss: mean squared error) and several layers' Gram matrices match the style image's
(style loss: mean squared error of ``F Fᵀ / (C·H·W)``), with weights 1 and 10⁶ and L-BFGS on the pixels,
clamped to [0, 1] (with a strong-Wolfe line search: the tutorial's plain steps diverged on our trunks when a
total-variation term was added); the tutorial's defaults (300 evaluations, content at conv4, style at conv1-conv5 of
VGG-19) become: content at the trunk's second-to-last block, style at all its blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from mono.probes.transforms import Normalizer

__all__ = ["default_layers", "gram", "style_transfer", "total_variation"]


def default_layers(trunk: nn.Module) -> tuple[str, list[str]]:
    """(content layer, style layers): the second-to-last block, and every block."""
    names = trunk.block_names
    return names[max(0, len(names) - 2)], list(names)


def gram(features: torch.Tensor) -> torch.Tensor:
    """The tutorial's normalised Gram matrix of ``(1, C, H, W)`` features: ``F Fᵀ / (C·H·W)``."""
    n, c, h, w = features.shape
    flat = features.reshape(n * c, h * w)
    return flat @ flat.t() / (n * c * h * w)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertically and horizontally neighbouring pixels, summed."""
    return ((image[..., 1:, :] - image[..., :-1, :]) ** 2).mean() + ((image[..., 1:] - image[..., :-1]) ** 2).mean()


def _features(trunk: nn.Module, normalize: Normalizer, image: torch.Tensor, layers: Sequence[str]) -> dict:
    last = max(layers, key=trunk.block_names.index)
    features = trunk.forward_features((image - normalize.mean) / normalize.std, upto=last)
    return {name: features[name] for name in layers}


def style_transfer(
    trunk: nn.Module,
    normalize: Normalizer,
    content: torch.Tensor,
    style: torch.Tensor,
    content_layer: str,
    style_layers: Sequence[str],
    steps: int = 300,
    style_weight: float = 1e6,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    progress: bool = True,
) -> tuple[torch.Tensor, dict[str, dict[str, float]]]:
    """The stylised image ``(1, 3, H, W)`` in [0, 1] (the content's size) after ``steps`` loss evaluations,
    and the losses of the starting image (the content) and of the result. ``tv_weight`` adds a total
    variation penalty (not in the tutorial; 0 leaves it out) against the pixel noise that the strided first
    layers of small trunks let through."""
    with torch.no_grad():
        target_content = _features(trunk, normalize, content, [content_layer])[content_layer]
        target_grams = {name: gram(f) for name, f in _features(trunk, normalize, style, style_layers).items()}
    layers = sorted({content_layer, *style_layers}, key=trunk.block_names.index)

    def losses(image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = _features(trunk, normalize, image, layers)
        content_loss = F.mse_loss(features[content_layer], target_content)
        style_loss = sum(F.mse_loss(gram(features[name]), target_grams[name]) for name in style_layers)
        tv_loss = total_variation(image)
        return {
            "loss": content_weight * content_loss + style_weight * style_loss + tv_weight * tv_loss,
            "content": content_loss,
            "style": style_loss,
            "tv": tv_loss,
        }

    def summary(image: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return {k: float(v) for k, v in losses(image).items()}

    initial = summary(content)
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], line_search_fn="strong_wolfe")  # the plain step can diverge
    evaluations = 0
    bar = tqdm(total=steps, desc="style transfer", unit="step", disable=not progress, leave=False)

    def closure() -> torch.Tensor:
        nonlocal evaluations
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad(set_to_none=True)
        loss = losses(image)["loss"]
        loss.backward()
        evaluations += 1
        bar.update(1)
        return loss

    while evaluations < steps:
        left = steps - evaluations
        optimizer.param_groups[0].update(max_iter=left, max_eval=left)  # never more evaluations than asked
        optimizer.step(closure)
    bar.close()
    with torch.no_grad():
        image.clamp_(0, 1)
    return image.detach().cpu(), {"initial": initial, "final": summary(image.detach())}
