"""Pixels: nothing from outside the source, the right rotation, no aliasing, exact colour maths."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from mono.generator.augmentation import Augmentation, Params, sample_params
from mono.generator.render import Pyramid, Renderer, plan
from mono.generator.sources import embedded_default

SENTINEL = (255, 0, 255, 255)


def render_all(rgb, protocol, n, size, seed=0, border=cv2.BORDER_REPLICATE, params=None):
    """BGR renders of samples 0..n-1 (or of given params) of an RGB source."""
    sizes = np.array([[rgb.shape[1], rgb.shape[0]]], np.float64)
    if params is None:
        params = sample_params(protocol, seed, np.arange(n), sizes)
    block = plan(params, sizes, size, protocol.uses("jitter"), protocol.colour)
    pyramid = Pyramid(rgb)
    renderer = Renderer(size, 90)
    rendered = renderer.render_plan(lambda _: pyramid, block, border=border, border_value=SENTINEL)
    return [bgr for _, bgr in rendered], block


def one_param(**kw) -> Params:
    base = dict(
        index=0,
        source=0,
        angle=0.0,
        cx=0.0,
        cy=0.0,
        w=1.0,
        h=1.0,
        area=1.0,
        flip=False,
        brightness=1.0,
        contrast=1.0,
        saturation=1.0,
        hue=0.0,
        order="bcsh",
    )
    base.update(kw)
    return Params(**{k: np.array([v]) for k, v in base.items()})


@pytest.mark.parametrize("size", [32, 256])
def test_no_output_pixel_comes_from_outside_the_source(size):
    # A uniform source: any tap outside it would blend in the magenta border value.
    rgb = np.zeros((225, 600, 3), np.uint8)
    rgb[:] = (40, 170, 90)
    protocol = Augmentation(augment=("scale", "rotation", "flip"), beta=1e-3)
    images, block = render_all(rgb, protocol, 3000 if size == 32 else 400, size, border=cv2.BORDER_CONSTANT)
    assert len(set(block.level_x.tolist())) > 3 or size == 256  # several pyramid levels exercised
    expected = np.array([90, 170, 40], np.uint8)  # BGR
    assert all(np.all(image == expected) for image in images)


def test_rotation_turns_the_content_counter_clockwise_like_pil():
    photo = embedded_default()  # a photograph that ships with matplotlib
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((640, 480), Image.BILINEAR))
    angle, size = 20.0, 128
    # Our whole valid region at 20 degrees, against PIL: rotate (counter-clockwise), then centre crop.
    protocol = Augmentation(augment=("rotation",))
    params = sample_params(protocol, 0, np.arange(1), np.array([[640.0, 480.0]]))
    params.angle[:] = angle
    from mono.generator import geometry

    w, h = geometry.inscribed_rectangle(
        640 - 2 * geometry.BORDER_MARGIN, 480 - 2 * geometry.BORDER_MARGIN, np.deg2rad(angle)
    )
    params.w[:], params.h[:] = w, h
    (ours,), _ = render_all(rgb, protocol, 1, size, params=params)
    ours = cv2.cvtColor(ours, cv2.COLOR_BGR2RGB).astype(np.float64)

    def reference(turn):
        rotated = Image.fromarray(rgb).rotate(turn, resample=Image.BILINEAR, expand=True)
        cx, cy = rotated.size[0] / 2, rotated.size[1] / 2
        box = (cx - float(w) / 2, cy - float(h) / 2, cx + float(w) / 2, cy + float(h) / 2)
        return np.asarray(rotated.resize((size, size), Image.BILINEAR, box=box, reducing_gap=None), np.float64)

    same = np.abs(ours - reference(angle)).mean()
    opposite = np.abs(ours - reference(-angle)).mean()
    assert same < 10, (same, opposite)
    assert opposite > 5 * same, (same, opposite)


def test_large_crops_do_not_alias():
    # Fine stripes (period 2.5 px) shrunk ~20x: a correct resampler gives flat grey; point sampling
    # would give strong moire. Compare with OpenCV's area averaging of the same region.
    x = np.arange(2000)
    stripes = (127.5 + 127.5 * np.sin(2 * np.pi * x / 2.5)).astype(np.uint8)
    rgb = np.repeat(np.repeat(stripes[None, :, None], 1500, axis=0), 3, axis=2)
    protocol = Augmentation(augment=())
    (ours,), block = render_all(rgb, protocol, 1, 96)
    assert block.level_x[0] >= 6  # a coarse pyramid level is used
    reference = cv2.resize(rgb, (96, 96), interpolation=cv2.INTER_AREA)
    error = np.abs(ours.astype(float) - reference[..., ::-1]).mean()
    naive = cv2.resize(rgb, (96, 96), interpolation=cv2.INTER_LINEAR)
    naive_error = np.abs(naive.astype(float) - reference).mean()
    assert error < 3, error
    assert naive_error > 10 * error  # the check can fail: plain bilinear aliases badly here


def test_linear_colour_jitter_matches_torchvision_without_intermediate_clipping():
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(70, 190, (120, 160, 3)).astype(np.uint8), (9, 9), 3)
    protocol = Augmentation(augment=("jitter",), colour="linear")
    plain, _ = render_all(rgb, Augmentation(augment=()), 1, 64)
    for b, c, s in [(1.3, 0.7, 1.2), (0.7, 1.3, 0.65)]:
        params = sample_params(protocol, 0, np.arange(1), np.array([[160.0, 120.0]]))
        params.brightness[:], params.contrast[:], params.saturation[:], params.hue[:] = b, c, s, 0.0
        (ours,), _ = render_all(rgb, protocol, 1, 64, params=params)
        x = torch.from_numpy(cv2.cvtColor(plain[0], cv2.COLOR_BGR2RGB)).permute(2, 0, 1).double() / 255
        expected = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x, b), c), s)
        expected = (expected.clamp(0, 1) * 255).permute(1, 2, 0).numpy()
        got = cv2.cvtColor(ours, cv2.COLOR_BGR2RGB).astype(float)
        assert np.abs(got - expected).max() <= 2.0


@pytest.mark.parametrize("colour", ["torchvision", "linear"])
def test_hue_shift_turns_hues_and_keeps_greys(colour):
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = (200, 60, 60)  # a red
    rgb[:, 32:] = (128, 128, 128)  # a grey
    protocol = Augmentation(augment=("jitter",), colour=colour)
    params = sample_params(protocol, 0, np.arange(1), np.array([[64.0, 64.0]]))
    params.brightness[:], params.contrast[:], params.saturation[:], params.hue[:] = 1, 1, 1, 0.1
    (ours,), _ = render_all(rgb, protocol, 1, 64, params=params)
    hsv = cv2.cvtColor(ours, cv2.COLOR_BGR2HSV_FULL).astype(float)
    red_hue = hsv[32, 8, 0] / 256 * 360
    assert 25 < red_hue < 47  # red (0 deg) moved towards yellow by about a tenth of the circle
    assert np.abs(ours[:, 40:].astype(int) - 128).max() <= 1


def test_flip_mirrors_the_sample():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (300, 400, 3)).astype(np.uint8)
    protocol = Augmentation(augment=("scale", "rotation", "flip"))
    params = sample_params(protocol, 5, np.arange(20), np.array([[400.0, 300.0]]))
    params.flip[:] = False
    straight, _ = render_all(rgb, protocol, 20, 48, params=params)
    params.flip[:] = True
    flipped, _ = render_all(rgb, protocol, 20, 48, params=params)
    for a, b in zip(straight, flipped):
        assert np.abs(a.astype(int) - b[:, ::-1].astype(int)).max() <= 1
