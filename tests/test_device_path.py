"""The fast device path, tested on the CPU (the same code runs on a GPU): no host synchronisation inside a
training or probe step, the gradient penalty in float32 under bf16 autocast, divergence still caught before
a checkpoint."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from mono.learning.models import build_trunk
from mono.probes.loops import LayerMeter
from mono.trainers.monogan import gradient_penalty
from mono.trainers.utils import Diverged, StepMetrics


@contextlib.contextmanager
def no_host_sync(monkeypatch):
    """Any tensor-to-Python conversion (what makes the host wait for a GPU) raises inside the block."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("host synchronisation inside a step")

    with monkeypatch.context() as patch:
        for name in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy"):
            patch.setattr(torch.Tensor, name, refuse)
        yield


def test_step_metrics_add_without_synchronising_and_report_exact_means(monkeypatch, tmp_path):
    metrics = StepMetrics(torch.device("cpu"))
    losses = [0.5, 0.25, 2.0, 1.0]
    with no_host_sync(monkeypatch):
        for step, loss in enumerate(losses, 1):
            metrics.add(step, loss=torch.tensor(loss), accuracy=torch.tensor(step / 10))
            if step % 2 == 0:
                metrics.add(step, generator_loss=torch.tensor(-float(step)))
    assert metrics.latest(4, 0, tmp_path) == {"loss": 1.0, "accuracy": pytest.approx(0.4), "generator_loss": -4.0}
    assert metrics.latest(3, 0, tmp_path) == {}  # nothing was added at step 3 that was not replaced since
    means = metrics.means(0, tmp_path)
    assert means["loss"] == sum(losses) / 4 and means["generator_loss"] == -3.0  # each name over its own steps
    assert means["accuracy"] == pytest.approx(0.25)


def test_step_metrics_name_the_first_bad_step_when_they_synchronise(monkeypatch, tmp_path):
    metrics = StepMetrics(torch.device("cpu"))
    with no_host_sync(monkeypatch):
        metrics.add(1, loss=torch.tensor(1.0))
        metrics.add(2, loss=torch.tensor(float("nan")), accuracy=torch.tensor(0.5))  # the bad step runs on ...
        metrics.add(3, loss=torch.tensor(float("inf")), accuracy=torch.tensor(0.5))
    with pytest.raises(Diverged, match=r"diverged at step 2 \(loss nan\); no checkpoint had been written yet"):
        metrics.latest(3, 0, tmp_path)  # ... and is named at the next synchronisation
    with pytest.raises(Diverged, match=r"at step 2 .*last good checkpoint \(epoch 3\)"):
        metrics.means(3, tmp_path)


def test_probe_meter_updates_without_synchronising(monkeypatch):
    meter = LayerMeter(["conv1"])
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0]])
    labels = torch.tensor([0, 1, 1, 2])
    loss = nn.functional.cross_entropy(logits, labels)
    with no_host_sync(monkeypatch):
        meter.update({"conv1": logits}, labels, {"conv1": loss})
        meter.update({"conv1": logits}, labels, {"conv1": loss})
    summary = meter.summary()["conv1"]
    assert summary["top1"] == 75.0 and summary["top5"] == 100.0  # top-5 capped at the 3 classes
    assert summary["loss"] == pytest.approx(loss.item())


def test_gradient_penalty_is_the_float32_value_under_bf16_autocast():
    # The penalty is differentiated twice; computed in bf16 its value moves by about 1e-6 but the gradient it
    # gives the critic by about 1 % (measured on this trunk: 1.1–1.3 %), so it stays in float32 under autocast.
    torch.manual_seed(0)
    critic = nn.Sequential(build_trunk("monogan"), nn.Flatten(), nn.LazyLinear(1))
    real, fake = torch.randn(64, 3, 32, 32), torch.randn(64, 3, 32, 32).bfloat16()  # a generator's bf16 output
    critic(real)  # materialise the lazy layer
    weight = critic[2].weight
    reference = gradient_penalty(critic, real, fake.float(), torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1))
    assert mixed.dtype == torch.float32 and torch.equal(mixed, reference)
    (expected,) = torch.autograd.grad(reference, weight)
    assert torch.equal(torch.autograd.grad(mixed, weight)[0], expected)

    with torch.autocast("cpu", dtype=torch.bfloat16):  # the same penalty with autocast left on
        alpha = torch.rand(64, 1, 1, 1, generator=torch.Generator().manual_seed(1))
        points = (real + alpha * (fake.float() - real)).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
        in_bf16 = 10 * ((grad.float().flatten(1).norm(dim=1) - 1) ** 2).mean()
    (bf16_grad,) = torch.autograd.grad(in_bf16, weight)
    assert float((in_bf16 - reference).detach().abs() / reference.detach()) < 1e-4
    assert float((bf16_grad - expected).norm() / expected.norm()) > 3e-3
