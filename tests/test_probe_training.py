"""Probe training on cached features: separable classes are learned, noise is not; top-k counting."""

import torch

from mono.probes.heads import LinearProbe, ProbeSet
from mono.probes.loops import evaluate_cached, topk_correct, train_epoch_cached


def _toy_features(n: int, centres: torch.Tensor, generator: torch.Generator):
    """Two 'layers' for 10 classes: one whose class means differ (separable), one of pure noise."""
    labels = torch.arange(n) % 10
    separable = centres[labels] + 0.8 * torch.randn(n, 8, 3, 3, generator=generator)
    noise = torch.randn(n, 8, 3, 3, generator=generator)
    return {"signal": separable.half(), "noise": noise.half()}, labels


def test_probes_learn_a_separable_problem_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 8, 3, 3, generator=generator)
    train, train_labels = _toy_features(2000, centres, generator)
    val, val_labels = _toy_features(1000, centres, generator)
    torch.manual_seed(0)
    probes = ProbeSet({"signal": LinearProbe((8, 3, 3), 10), "noise": LinearProbe((8, 3, 3), 10)})
    optimizer = torch.optim.SGD(probes.parameters(), lr=0.01, momentum=0.9)
    before = evaluate_cached(probes, val, val_labels)
    for _ in range(5):
        train_epoch_cached(probes, train, train_labels, optimizer, 64, generator, progress=False)
    after = evaluate_cached(probes, val, val_labels)
    assert after["signal"]["top1"] > 90.0  # chance is 10%
    assert after["signal"]["top1"] > before["signal"]["top1"] + 50.0
    assert after["noise"]["top1"] < 20.0
    assert set(after["signal"]) == {"top1", "top5"}


def test_topk_correct_counts_labels_among_the_highest_scores():
    logits = torch.tensor(
        [[0.9, 0.5, 0.1, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]
    )
    labels = torch.tensor([0, 1, 5])
    assert topk_correct(logits, labels) == {1: 1, 5: 2}
    assert topk_correct(logits[:, :3], torch.tensor([2, 2, 2])) == {1: 1, 5: 3}  # k capped at 3 classes
