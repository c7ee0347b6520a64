"""Colour jitter with torchvision's semantics: the recorded random order, clamped steps, HSV hue."""

from __future__ import annotations

import collections
import itertools
import json

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from helpers import mono_gen
from mono.generator.augmentation import Augmentation, sample_params
from mono.generator.colour import OPERATIONS, jitter_torchvision
from mono.generator.render import Pyramid, Renderer, plan
from mono.generator.sources import embedded_default

_REFERENCE = {"b": TF.adjust_brightness, "c": TF.adjust_contrast, "s": TF.adjust_saturation, "h": TF.adjust_hue}


def _torchvision(rgb: np.ndarray, factors: dict[str, float], order: str) -> np.ndarray:
    """torchvision.transforms.v2.functional, float images in [0, 1], in the recorded order; rounded to 8 bits."""
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    for op in order:
        x = _REFERENCE[op](x, factors[op])
    return (x * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def test_colour_step_matches_torchvision_on_real_images_for_1000_parameter_sets():
    photo = np.asarray(Image.open(embedded_default()).convert("RGB"))
    params = sample_params(Augmentation(augment=("jitter",)), 11, np.arange(1000), np.array([[512.0, 600.0]]))
    rng = np.random.default_rng(0)
    means, worst = [], 0
    for k in range(len(params)):
        y, x = rng.integers(0, photo.shape[0] - 48), rng.integers(0, photo.shape[1] - 48)
        rgb = np.ascontiguousarray(photo[y : y + 48, x : x + 48])
        factors = {"b": params.brightness[k], "c": params.contrast[k], "s": params.saturation[k], "h": params.hue[k]}
        ours = jitter_torchvision(np.ascontiguousarray(rgb[..., ::-1]), *factors.values(), str(params.order[k]))
        diff = np.abs(ours[..., ::-1].astype(int) - _torchvision(rgb, factors, str(params.order[k])))
        means.append(diff.mean())
        worst = max(worst, int(diff.max()))
    assert np.mean(means) <= 1.0, np.mean(means)
    assert worst <= 3, worst


def test_clamping_between_steps_matters_and_is_done():
    # brightness 1.4 saturates a light grey; contrast 0.6 afterwards cannot bring back what was clipped
    rgb = np.full((8, 8, 3), 220, np.uint8)
    rgb[:4] = 40
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    clipped = jitter_torchvision(bgr, 1.4, 0.6, 1.0, 0.0, "bcsh")
    expected = _torchvision(rgb, {"b": 1.4, "c": 0.6, "s": 1.0, "h": 0.0}, "bcsh")[..., ::-1]
    assert np.abs(clipped.astype(int) - expected).max() <= 1
    unclipped = np.clip(0.6 * 1.4 * rgb + 0.4 * 1.4 * rgb.mean(), 0, 255)  # one linear map, no clamp between
    assert np.abs(clipped[..., ::-1].astype(int) - unclipped).max() > 20


def test_the_order_changes_the_result_and_is_uniform_over_all_24():
    params = sample_params(Augmentation(), 0, np.arange(24_000), np.array([[512.0, 600.0]]))
    counts = collections.Counter(params.order.tolist())
    assert set(counts) == {"".join(p) for p in itertools.permutations(OPERATIONS)}
    assert max(counts.values()) < 1.15 * 1000 and min(counts.values()) > 0.85 * 1000
    rgb = np.ascontiguousarray(np.asarray(Image.open(embedded_default()).convert("RGB"))[200:264, 200:264, ::-1])
    assert not np.array_equal(
        jitter_torchvision(rgb, 1.3, 0.7, 1.3, 0.08, "bcsh"), jitter_torchvision(rgb, 1.3, 0.7, 1.3, 0.08, "hscb")
    )


def test_linear_semantics_keep_the_fixed_order():
    params = sample_params(Augmentation(colour="linear"), 0, np.arange(100), np.array([[512.0, 600.0]]))
    assert set(params.order.tolist()) == {"bcsh"}


def test_each_sample_records_its_order_and_the_pixels_follow_it(tmp_path):
    out = tmp_path / "d"
    mono_gen("--image", embedded_default(), "--samples", 40, "--size", 32, "--augment", "jitter", "--out", out)
    records = [
        json.loads(meta)
        for (meta,) in wds.WebDataset(str(out / "train-000000.tar"), shardshuffle=False).to_tuple("json")
    ]
    photo = np.asarray(Image.open(embedded_default()).convert("RGB"))
    sizes = np.array([[photo.shape[1], photo.shape[0]]], np.float64)
    params = sample_params(Augmentation(augment=("jitter",)), 0, np.arange(40), sizes)
    assert [r["order"] for r in records] == params.order.tolist()
    assert len(set(params.order.tolist())) > 10
    # the renderer applies the recorded order: its pixels (before JPEG) are torchvision's on the plain sample
    renderer, pyramid = Renderer(32, 90), Pyramid(photo)
    plain = [bgr for _, bgr in renderer.render_plan(lambda _: pyramid, plan(params, sizes, 32, jitter=False))]
    jittered = [bgr for _, bgr in renderer.render_plan(lambda _: pyramid, plan(params, sizes, 32, jitter=True))]
    for k, record in enumerate(records):
        factors = {"b": record["brightness"], "c": record["contrast"], "s": record["saturation"], "h": record["hue"]}
        expected = _torchvision(np.ascontiguousarray(plain[k][..., ::-1]), factors, record["order"])
        assert np.abs(jittered[k][..., ::-1].astype(int) - expected).max() <= 3  # JSON keeps 5 decimals
