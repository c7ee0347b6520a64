"""The GAN trainers' shared pieces: gradient penalty, generator, simultaneous updates, image grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mono.learning.errors import UserError
from mono.learning.models import Generator
from mono.trainers.bigan import update_both
from mono.trainers.monogan import gradient_penalty
from mono.trainers.sample import image_grid, write_image_grid
from mono.trainers.utils import MixedPrecision, non_finite


def test_gradient_penalty_of_a_linear_critic_is_known_exactly():
    # f(x) = w·x has gradient w everywhere: the penalty is λ(‖w‖ − 1)² whatever the interpolates.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(48, 1))
    with torch.no_grad():
        critic[1].weight.copy_(3 * critic[1].weight / critic[1].weight.norm())
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1), weight=10.0)
    assert penalty.item() == pytest.approx(10 * (3 - 1) ** 2, rel=1e-5)
    # It trains the critic: d/dw λ(‖w‖ − 1)² = 2λ(‖w‖ − 1) w/‖w‖.
    (grad,) = torch.autograd.grad(penalty, critic[1].weight)
    w = critic[1].weight.detach()
    torch.testing.assert_close(grad, 2 * 10 * (3 - 1) * w / 3, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_of_a_nonlinear_critic_matches_finite_differences():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    points = torch.randn(4, 3, 2, 2)
    # real == fake pins the interpolates to `points`; the reference differentiates numerically in float64.
    penalty = gradient_penalty(critic, points, points, torch.Generator().manual_seed(0), weight=10.0)
    reference = critic.double()
    eps, flat = 1e-6, points.double().flatten(1)
    norms = []
    for x in flat:
        steps = torch.eye(len(x), dtype=torch.float64) * eps
        with torch.no_grad():
            slope = (reference((x + steps).view(-1, 3, 2, 2)) - reference((x - steps).view(-1, 3, 2, 2))) / (2 * eps)
        norms.append(slope.norm().item())
    expected = 10 * np.mean((np.array(norms) - 1) ** 2)
    assert penalty.item() == pytest.approx(expected, rel=1e-4)


def test_gradient_penalty_interpolates_uniformly_between_real_and_fake():
    # D(x) = ½‖x‖²: the gradient norm at x̂ = α·v (real 0, fake v) is α‖v‖, so with α ~ U(0, 1) per
    # sample the penalty is E[(α‖v‖ − 1)²] = ‖v‖²/3 − ‖v‖ + 1.
    class HalfSquaredNorm(nn.Module):
        def forward(self, x):
            return 0.5 * x.flatten(1).pow(2).sum(1)

    n, length = 20_000, 4.0
    fake = torch.zeros(n, 2)
    fake[:, 0] = length
    penalty = gradient_penalty(HalfSquaredNorm(), torch.zeros(n, 2), fake, torch.Generator().manual_seed(0), weight=1.0)
    assert penalty.item() == pytest.approx(length**2 / 3 - length + 1, rel=0.02)


@pytest.mark.parametrize("size,latent_skip", [(32, False), (64, True)])
def test_generator_makes_images_and_is_rebuilt_from_its_arch_args(size, latent_skip):
    torch.manual_seed(0)
    generator = Generator(16, size, width=8, prior="uniform", latent_skip=latent_skip).eval()
    z = generator.sample_latent(6, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1
    images = generator(z)
    assert images.shape == (6, 3, size, size) and images.abs().max() < 1
    assert images[0].std() > 0 and not torch.equal(images[0], images[1])
    rebuilt = Generator(**generator.arch_args)
    rebuilt.load_state_dict(generator.state_dict())
    assert torch.equal(rebuilt.eval()(z), images)


def test_generator_refuses_sizes_it_cannot_make():
    with pytest.raises(UserError, match="4·2\\^n"):
        Generator(16, 48)
    with pytest.raises(UserError, match="prior"):
        Generator(16, 32, prior="cauchy")


def test_simultaneous_update_takes_every_gradient_before_any_step():
    # Two players on f = a·b: A minimises f over a, B minimises −f over b. From (2, 3) one simultaneous SGD
    # step (lr 1) gives a = 2 − 3 and b = 3 + 2; stepping A first would give b = 3 + (−1).
    a, b = nn.Parameter(torch.tensor(2.0)), nn.Parameter(torch.tensor(3.0))
    opt_a, opt_b = torch.optim.SGD([a], lr=1.0), torch.optim.SGD([b], lr=1.0)
    a.grad, b.grad = torch.tensor(100.0), torch.tensor(100.0)  # stale gradients of an earlier step
    update_both(MixedPrecision(torch.device("cpu")).scaler, (a * b, opt_a), (-(a * b), opt_b))
    assert (a.item(), b.item()) == (-1.0, 5.0)
    # Each player holds the gradient of its own loss only: d(ab)/da = 3, d(-ab)/db = -2, nothing stale or crossed.
    assert (a.grad.item(), b.grad.item()) == (3.0, -2.0)


def test_image_grid_places_images_row_by_row(tmp_path):
    images = torch.stack([torch.full((3, 2, 2), v) for v in (-1.0, 1.0, 0.0)])
    grid = image_grid(images, columns=2, padding=2)
    assert grid.shape == (2 + 2 * 4, 2 + 2 * 4, 3)
    assert (grid[2:4, 2:4] == 0).all() and (grid[2:4, 6:8] == 255).all() and (grid[6:8, 2:4] == 128).all()
    assert grid[0].max() == 0 and (grid[6:8, 6:8] == 0).all()  # padding and the empty cell stay black
    path = write_image_grid(images, tmp_path / "grid.png", columns=2)
    assert np.array_equal(np.asarray(Image.open(path)), grid)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left behind


def test_non_finite_names_the_module_whose_weights_broke():
    modules = {"head": nn.Linear(2, 2), "norm": nn.BatchNorm1d(2)}
    assert non_finite(modules) is None
    modules["norm"].running_var[1] = float("inf")  # buffers count too: they are saved
    assert non_finite(modules) == "norm"
