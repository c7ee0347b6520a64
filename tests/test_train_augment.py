"""Batched augmentations behave like the torchvision transforms the original trainers used."""

from __future__ import annotations

import math

import torch
import torchvision.transforms.functional as TF

from mono.trainers.deepcluster import random_resized_crop, resized_crop_boxes
from mono.trainers.rotnet import rotations
from mono.trainers.utils import downscale, normalize, random_crop


def images(b=6, size=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, generator=g)


def test_random_crop_copies_windows_and_flips_half():
    x = images(400, 16)
    out = random_crop(x, 12, torch.Generator().manual_seed(1))
    assert out.shape == (400, 3, 12, 12) and out.dtype == torch.uint8
    flipped = 0
    for i in range(400):
        found = None
        for top in range(5):
            for left in range(5):
                window = x[i, :, top : top + 12, left : left + 12]
                if torch.equal(window, out[i]):
                    found = "straight"
                elif torch.equal(window.flip(-1), out[i]):
                    found = "flipped"
        assert found is not None
        flipped += found == "flipped"
    assert 150 < flipped < 250


def test_random_crop_is_reproducible_from_its_generator():
    x = images()
    a = random_crop(x, 32, torch.Generator().manual_seed(5))
    b = random_crop(x, 32, torch.Generator().manual_seed(5))
    c = random_crop(x, 32, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_resized_crop_boxes_follow_torchvision_law():
    boxes = resized_crop_boxes(20000, 256, 256, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert torch.all((top >= 0) & (left >= 0) & (top + h <= 256) & (left + w <= 256))
    area = h * w / 256**2
    assert area.min() >= 0.07 and area.max() <= 1.0
    assert torch.all((w / h >= 3 / 4 - 0.02) & (w / h <= 4 / 3 + 0.02))
    assert abs(torch.log(w / h).mean().item()) < 0.01


def test_random_resized_crop_matches_torchvision_inside_the_crop():
    x = images(8, 64).float()
    g = torch.Generator().manual_seed(3)
    out = random_resized_crop(x, 48, g, flip=False)
    boxes = resized_crop_boxes(8, 64, 64, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(3))
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(x[i], int(top), int(left), int(h), int(w), [48, 48], antialias=False)
        # Identical away from the crop's outermost output pixels, where we read the true neighbours
        # instead of repeating the crop's edge.
        assert torch.allclose(out[i, :, 2:-2, 2:-2], ref[:, 2:-2, 2:-2], atol=1e-3)


def test_rotations_turn_counter_clockwise_with_labels():
    x = images(2, 8)
    turned, labels = rotations(x)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(turned[2, :, 0, :], x[0, :, :, -1])  # 90°: the top row is the old right column
    assert torch.equal(turned[4], x[0].flip(-1).flip(-2))


def test_downscale_and_normalize():
    x = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    x[..., :2, :2] = 200
    assert downscale(x, 2)[0, 0].tolist() == [[200.0, 0.0], [0.0, 0.0]]
    y = normalize(torch.full((1, 3, 1, 1), 127.5), [0.5] * 3, [0.5] * 3)
    assert torch.allclose(y, torch.zeros_like(y))
    z = normalize(torch.full((1, 3, 1, 1), 255.0), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert math.isclose(z[0, 0, 0, 0].item(), (1 - 0.485) / 0.229, rel_tol=1e-5)
