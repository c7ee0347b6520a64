"""DeepCluster's pipeline (PCA-whitening, L2, k-means, uniform sampling, NMI) on features with known clusters."""

from __future__ import annotations

import numpy as np
import pytest

from mono.trainers.deepcluster import kmeans, normalized_mutual_information, preprocess_features, uniform_over_clusters


@pytest.fixture(scope="module")
def clustered():
    """64 clusters spread over 48 dimensions, unequal sizes, a little noise."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, 48)) * 3
    weights = rng.dirichlet(np.ones(64) * 2)
    truth = rng.choice(64, size=4000, p=weights)
    return centres[truth] + rng.normal(size=(4000, 48)) * 0.5, truth


def test_preprocessing_whitens_reduces_and_normalises(clustered):
    x, _ = clustered
    y = preprocess_features(x, pca_dim=32)
    assert y.shape == (4000, 32) and y.dtype == np.float32
    assert np.allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)
    # Before normalisation the components are decorrelated with equal variance: check on the PCA part.
    import faiss

    pca = faiss.PCAMatrix(48, 32, -0.5)
    pca.train(x.astype(np.float32))
    z = pca.apply_py(x.astype(np.float32))
    cov = np.cov(z, rowvar=False)
    assert np.allclose(cov, np.eye(32) * cov[0, 0], atol=0.05 * cov[0, 0])


def test_kmeans_recovers_known_clusters(clustered):
    x, truth = clustered
    result = kmeans(preprocess_features(x, 32), 64, seed=0)
    assert normalized_mutual_information(truth, result.assignments) > 0.9
    again = kmeans(preprocess_features(x, 32), 64, seed=0)
    assert np.array_equal(result.assignments, again.assignments)  # seeded


def test_kmeans_refills_empty_clusters():
    # More clusters than distinct points' natural groups: faiss splits large clusters so none stays empty.
    rng = np.random.default_rng(1)
    x = np.repeat(rng.normal(size=(5, 8)), 40, axis=0) + rng.normal(size=(200, 8)) * 0.01
    result = kmeans(x.astype(np.float32), 20, seed=0)
    assert (result.sizes > 0).all()


def test_uniform_sampling_draws_every_cluster_equally():
    assignments = np.array([0] * 900 + [1] * 90 + [2] * 10 + [4] * 0)
    indices = uniform_over_clusters(assignments, 1000, seed=0, num_clusters=5)
    assert len(indices) == 1000
    counts = np.bincount(assignments[indices], minlength=5)
    assert counts[3] == counts[4] == 0  # empty clusters are skipped
    assert np.all(np.abs(counts[:3] - 1000 / 3) <= 2)
    # The big cluster is sampled without replacement, the small ones with.
    assert len(np.unique(indices[assignments[indices] == 0])) == counts[0]
    assert len(np.unique(indices[assignments[indices] == 2])) <= 10
    assert np.array_equal(indices, uniform_over_clusters(assignments, 1000, seed=0, num_clusters=5))


def test_nmi_reference_values():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert normalized_mutual_information(a, a) == pytest.approx(1.0)
    assert normalized_mutual_information(a, np.array([5, 5, 7, 7, 9, 9])) == pytest.approx(1.0)  # names do not matter
    assert normalized_mutual_information(a, np.zeros(6)) == pytest.approx(0.0)
    # By hand: I(a; b) = (2/3)·ln 2, H(a) = ln 3, H(b) = ln 2, normalised by the arithmetic mean.
    b = np.array([0, 0, 0, 1, 1, 1])
    expected = (2 / 3) * np.log(2) / ((np.log(3) + np.log(2)) / 2)
    assert normalized_mutual_information(a, b) == pytest.approx(expected, abs=1e-12)
