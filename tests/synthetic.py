"""Test data made on the spot, so that the suite needs nothing beside the repository.

Source images for the generator are textured like photographs (smooth shading, edges, fine detail that
aliases when shrunk badly); the labelled ImageFolder for the probes and mono-repro holds small 32 px
JPEGs of a few classes that a linear probe on random features tells apart: each class is a colour and
an orientation of stripes, with random frequency, phase, brightness and noise per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# name, (width, height), seed: three sources of different sizes and file types.
SOURCES = (("stripes.png", (600, 225), 1), ("shapes.jpg", (480, 360), 2), ("waves.png", (400, 300), 3))

# class folder: (RGB colour, stripe direction in degrees); folder names sort in this order.
CLASSES = {
    "a-red-rows": ((200, 50, 40), 0.0),
    "b-green-columns": ((40, 170, 60), 90.0),
    "c-blue-diagonals": ((50, 70, 200), 45.0),
    "d-yellow-antidiagonals": ((210, 190, 40), 135.0),
}
SPLITS = {"train": 64, "test": 24}  # images per class: 352 in all


def textured(width: int, height: int, seed: int) -> np.ndarray:
    """An RGB image (height, width, 3) uint8 of gradients, sinusoids of several frequencies and solid ellipses."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width, height), y / max(width, height)
    image = np.zeros((height, width, 3))
    for c in range(3):
        image[..., c] = rng.uniform(70, 180) + rng.uniform(-60, 60) * u + rng.uniform(-60, 60) * v
        for cycles, amplitude in ((2, 30), (6, 20), (90, 40)):  # the finest (a 7 px period) aliases when point-sampled
            angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * cycles * (np.cos(angle) * u + np.sin(angle) * v) + phase)
            image[..., c] += rng.uniform(0.6, 1.0) * amplitude * wave
    for _ in range(8):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.04, 0.18, 2) * max(width, height)
        image[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_sources(folder: Path) -> Path:
    """The three SOURCES as image files in `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (width, height), seed in SOURCES:
        Image.fromarray(textured(width, height, seed)).save(folder / name, quality=92)
    return folder


def labelled_image(
    colour: tuple[int, int, int], direction: float, rng: np.random.Generator, size: int = 32
) -> np.ndarray:
    """One sample of a class: stripes across `direction` in the class's colour, jittered, with noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    angle = np.deg2rad(direction + rng.uniform(-10, 10))
    cycles, phase = rng.uniform(2, 5), rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * cycles * (np.sin(angle) * x + np.cos(angle) * y) + phase)
    base = np.asarray(colour, np.float64) * rng.uniform(0.7, 1.15) + rng.normal(0, 15, 3)
    image = base * (0.75 + 0.25 * stripes[..., None]) + rng.normal(0, 12, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_labelled_folder(root: Path, seed: int = 0) -> Path:
    """root/train/<class>/<k>.jpg and root/test/<class>/<k>.jpg, CIFAR's ImageFolder layout in miniature."""
    rng = np.random.default_rng(seed)
    for split, per_class in SPLITS.items():
        for name, (colour, direction) in CLASSES.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                Image.fromarray(labelled_image(colour, direction, rng)).save(folder / f"{k:04d}.jpg", quality=90)
    return root
