"""Flips in the cifar protocol: features of both orientations cached, one of them picked per image and epoch."""

import torch

from mono.learning.models import build_trunk
from mono.probes.heads import build_probes
from mono.probes.loops import train_epoch_cached
from mono.probes.protocols import PROTOCOLS


def _setup(n=300):
    torch.manual_seed(0)
    trunk = build_trunk("monogan", widths=[4, 4, 4, 4]).eval()
    probes = build_probes(trunk, PROTOCOLS["cifar"], num_classes=3)
    shapes = trunk.feature_shapes()
    features = {name: torch.randn(n, *shapes[name]).half() for name in trunk.block_names}
    labels = torch.arange(n) % 3
    return probes, features, labels


def _train(probes, features, labels, flipped=None, seed=5):
    optimizer = torch.optim.SGD(probes.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    train_epoch_cached(probes, features, labels, optimizer, 32, generator, progress=False, flipped=flipped)
    return {k: v.clone() for k, v in probes.state_dict().items()}


def test_identical_mirrored_features_train_exactly_as_without_flips():
    probes, features, labels = _setup()
    start = {k: v.clone() for k, v in probes.state_dict().items()}
    plain = _train(probes, features, labels)
    probes.load_state_dict(start)
    mirrored = _train(probes, features, labels, flipped=features)
    assert all(torch.equal(plain[k], mirrored[k]) for k in plain)  # same order; only the view is drawn


def test_each_image_is_seen_once_per_epoch_in_one_orientation_about_half_mirrored():
    probes, features, labels = _setup()
    n = len(labels)
    # originals carry +index, mirrored copies -index, so each batch row says which image and view it is
    tagged = {name: torch.zeros_like(f, dtype=torch.float32) for name, f in features.items()}
    first = probes.layers[0]
    ids = torch.arange(1, n + 1, dtype=torch.float32).view(-1, 1, 1, 1)
    tagged[first] = ids.expand_as(tagged[first]).clone()
    mirrored = {name: -f for name, f in tagged.items()}
    seen = []
    classify = probes.classify

    def spy(reduced):
        seen.append(reduced[first][:, 0, 0, 0].clone())
        return classify(reduced)

    probes.classify = spy
    _train(probes, tagged, labels, flipped=mirrored)
    rows = torch.cat(seen)
    assert sorted(rows.abs().long().tolist()) == list(range(1, n + 1))
    assert 0.4 < (rows < 0).float().mean().item() < 0.6
