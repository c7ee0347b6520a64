"""The sampled parameters follow the paper's protocol, and each ablation switch does only what it names."""

from __future__ import annotations

import numpy as np
import pytest

from mono.generator import geometry
from mono.generator.augmentation import AUGMENTATIONS, Augmentation, parse_augment, sample_params

SIZES = np.array([[600, 225], [2560, 1920], [585, 1165]], np.float64)  # wide, 4:3 and tall sources
N = 60_000


@pytest.fixture(scope="module")
def params():
    return sample_params(Augmentation(), seed=3, index=np.arange(N), sizes=SIZES)


def test_parameters_stay_inside_the_protocol_bounds(params):
    p = Augmentation()
    assert np.all(np.abs(params.angle) <= p.max_angle)
    assert np.all((params.area >= p.beta * (1 - 1e-9)) & (params.area <= 1 + 1e-9))
    aspect = params.w / params.h
    assert np.all((aspect >= p.aspect * (1 - 1e-9)) & (aspect <= (1 / p.aspect) * (1 + 1e-9)))
    for factor in (params.brightness, params.contrast, params.saturation):
        assert np.all((factor >= 0.6) & (factor <= 1.4))
    assert np.all(np.abs(params.hue) <= 0.1)


def test_parameters_are_spread_as_the_protocol_says(params):
    # Uniform angle: quartiles near -17.5, 0, 17.5 degrees; both ends reached.
    q = np.quantile(params.angle, [0.25, 0.5, 0.75])
    assert np.allclose(q, [-17.5, 0, 17.5], atol=1.0)
    assert params.angle.min() < -34.5 and params.angle.max() > 34.5
    assert abs(params.flip.mean() - 0.5) < 0.01
    assert abs(np.log(params.w / params.h).mean()) < 0.01  # log-uniform aspect, symmetric
    for factor in (params.brightness, params.contrast, params.saturation):
        assert np.allclose(np.quantile(factor, [0.25, 0.75]), [0.8, 1.2], atol=0.01)
    # The area law is uniform: small crops always fit, so equal bins of small areas are equally full.
    # (Large areas are rarer than uniform: they only fit at small angles and suitable aspect ratios.)
    low = np.sum((params.area >= 0.001) & (params.area < 0.051))
    high = np.sum((params.area >= 0.051) & (params.area < 0.101))
    assert abs(low / high - 1) < 0.06
    # Samples go to the sources in turn.
    assert np.array_equal(np.bincount(params.source), [N // 3] * 3)


def test_no_crop_reaches_outside_its_source(params):
    corners = geometry.crop_corners(params.cx, params.cy, params.w, params.h, np.deg2rad(params.angle))
    width = SIZES[params.source, 0][:, None]
    height = SIZES[params.source, 1][:, None]
    m = geometry.BORDER_MARGIN
    assert np.all(corners[..., 0] >= m - 1e-6) and np.all(corners[..., 0] <= width - m + 1e-6)
    assert np.all(corners[..., 1] >= m - 1e-6) and np.all(corners[..., 1] <= height - m + 1e-6)


def test_crop_positions_cover_the_valid_placements(params):
    # Small unrotated-ish crops must reach all four quadrants of the image, corners included.
    small = (params.area < 0.01) & (params.source == 1)
    cx, cy = params.cx[small] / 2560, params.cy[small] / 1920
    assert cx.min() < 0.05 and cx.max() > 0.95 and cy.min() < 0.05 and cy.max() > 0.95


def test_parameters_are_a_pure_function_of_the_index():
    full = sample_params(Augmentation(), 7, np.arange(5000), SIZES)
    part = sample_params(Augmentation(), 7, np.arange(1234, 1300), SIZES)
    for name in ("angle", "cx", "cy", "w", "h", "flip", "brightness", "hue"):
        assert np.array_equal(getattr(full, name)[1234:1300], getattr(part, name))
    other_seed = sample_params(Augmentation(), 8, np.arange(5000), SIZES)
    assert not np.allclose(full.angle, other_seed.angle)


def _identity_checks(p, enabled: set[str], sizes):
    """Each family not in `enabled` must sit at its identity value."""
    if "rotation" not in enabled:
        assert np.all(p.angle == 0)
    else:
        assert np.ptp(p.angle) > 60
    if "flip" not in enabled:
        assert not p.flip.any()
    else:
        assert 0.4 < p.flip.mean() < 0.6
    jitter = (p.brightness, p.contrast, p.saturation)
    if "jitter" not in enabled:
        assert all(np.all(f == 1) for f in jitter) and np.all(p.hue == 0)
    else:
        assert all(np.ptp(f) > 0.7 for f in jitter) and np.ptp(p.hue) > 0.15
    if "scale" not in enabled:
        # The whole valid region, centred: the largest crop that fits at this angle.
        width, height = sizes[p.source, 0] - 2 * geometry.BORDER_MARGIN, sizes[p.source, 1] - 2 * geometry.BORDER_MARGIN
        w, h = geometry.inscribed_rectangle(width, height, np.deg2rad(p.angle))
        assert np.allclose(p.w, w) and np.allclose(p.h, h)
        assert np.allclose(p.cx, sizes[p.source, 0] / 2) and np.allclose(p.cy, sizes[p.source, 1] / 2)
    else:
        assert p.area.min() < 0.01 and p.area.max() > 0.9


@pytest.mark.parametrize(
    "augment", ["none", "scale", "rotation", "jitter", "flip", "scale,rotation", "rotation,jitter", "all"]
)
def test_each_ablation_switch_does_only_what_it_names(augment):
    enabled = set(parse_augment(augment))
    sizes = SIZES[1:2]
    p = sample_params(Augmentation(augment=tuple(enabled)), 0, np.arange(4000), sizes)
    _identity_checks(p, enabled, sizes)


def test_augment_parsing():
    assert parse_augment("all") == AUGMENTATIONS
    assert parse_augment("none") == ()
    assert parse_augment(" flip , scale") == ("flip", "scale")
    with pytest.raises(ValueError):
        parse_augment("scale,blur")


@pytest.mark.parametrize("angle", [0.0, 10.0, -35.0, 45.0, 80.0])
def test_inscribed_rectangle_is_the_largest_that_fits(angle):
    theta = np.deg2rad(angle)
    for width, height in [(600, 225), (100, 100), (300, 900)]:
        w, h = geometry.inscribed_rectangle(width, height, theta)
        corners = geometry.crop_corners(width / 2, height / 2, w, h, theta)
        assert corners[..., 0].min() >= -1e-6 and corners[..., 0].max() <= width + 1e-6
        assert corners[..., 1].min() >= -1e-6 and corners[..., 1].max() <= height + 1e-6
        # Brute force over aspect ratios: nothing that fits is larger.
        s, c = abs(np.sin(theta)), abs(np.cos(theta))
        ratios = np.exp(np.linspace(-5, 5, 20001))
        t = np.minimum(width / (ratios * c + s), height / (ratios * s + c))
        assert w * h >= (t * t * ratios).max() * (1 - 1e-4)
