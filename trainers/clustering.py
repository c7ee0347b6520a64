"""DeepCluster's clustering step: PCA-whitening, L2 normalisation, k-means, uniform sampling over clusters.

After Caron et al., ECCV 2018 (facebookresearch/deepcluster, clustering.py and util.py): features are
reduced to 256 dimensions by PCA with whitening, L2-normalised, clustered by faiss k-means (which splits
large clusters to refill empty ones), and each epoch draws the same number of images from every
non-empty cluster, with replacement where a cluster is small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def preprocess_features(features: np.ndarray, pca_dim: int = 256) -> np.ndarray:
    """PCA to `pca_dim` dimensions with whitening (eigenvalue power −½), then L2-normalised rows."""
    import faiss

    x = np.ascontiguousarray(features, dtype=np.float32)
    n, dim = x.shape
    out_dim = min(pca_dim, dim, n)
    pca = faiss.PCAMatrix(dim, out_dim, -0.5)
    pca.train(x)
    if not pca.is_trained:
        raise RuntimeError("PCA training failed")
    y = pca.apply_py(x)
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    return y / np.maximum(norms, 1e-12)


@dataclass
class KMeansResult:
    assignments: np.ndarray  # (n,) cluster of each sample
    centroids: np.ndarray  # (k, d)
    loss: float  # final k-means objective (sum of squared distances)

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.assignments, minlength=len(self.centroids))


def kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 20, threads: int | None = None) -> KMeansResult:
    """faiss k-means as DeepCluster runs it (20 iterations, no subsampling of the points)."""
    import faiss

    if threads is not None:
        faiss.omp_set_num_threads(threads)
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    if k > n:
        raise ValueError(f"{k} clusters for {n} samples: use --k at most the number of samples")
    clus = faiss.Clustering(dim, k)
    clus.seed = int(seed % 2**31)
    clus.niter = iterations
    clus.max_points_per_centroid = 10_000_000  # use every point, as the original
    clus.min_points_per_centroid = 1  # no warning spam for small test sets
    index = faiss.IndexFlatL2(dim)
    clus.train(x, index)
    distances, labels = index.search(x, 1)
    centroids = faiss.vector_to_array(clus.centroids).reshape(k, dim)
    return KMeansResult(labels.ravel().astype(np.int64), centroids, float(distances.sum()))


def uniform_over_clusters(
    assignments: np.ndarray, num_samples: int, seed: int, num_clusters: int | None = None
) -> np.ndarray:
    """The epoch's sample indices: `num_samples` drawn evenly from every non-empty cluster, shuffled.

    Each non-empty cluster contributes num_samples // (non-empty clusters) + 1 indices, with replacement
    only when the cluster is smaller than that; the shuffled list is cut to num_samples (DeepCluster's
    UnifLabelSampler).
    """
    rng = np.random.default_rng(seed)
    k = int(num_clusters if num_clusters is not None else assignments.max() + 1)
    order = np.argsort(assignments, kind="stable")
    bounds = np.searchsorted(assignments[order], np.arange(k + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(k)]
    non_empty = [m for m in members if len(m)]
    per_cluster = num_samples // len(non_empty) + 1
    picks = [rng.choice(m, per_cluster, replace=len(m) < per_cluster) for m in non_empty]
    indices = np.concatenate(picks)
    rng.shuffle(indices)
    return indices[:num_samples]


def normalized_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """NMI with the arithmetic-mean normalisation (scikit-learn's default), between two labellings."""
    a = np.unique(np.asarray(a), return_inverse=True)[1]
    b = np.unique(np.asarray(b), return_inverse=True)[1]
    n = len(a)
    joint = np.bincount(a * (b.max() + 1) + b, minlength=(a.max() + 1) * (b.max() + 1)).reshape(
        a.max() + 1, b.max() + 1
    )
    p = joint / n
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mutual = float((p[nz] * np.log(p[nz] / (pa[:, None] * pb[None, :])[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 and hb == 0:
        return 1.0
    return max(0.0, mutual / max((ha + hb) / 2, 1e-12))
