"""DeepCluster (Caron, Bojanowski, Joulin & Douze, ECCV 2018): cluster the features, learn to predict the clusters.

Each epoch: features of the whole dataset (centre crops) -> PCA to 256 dimensions with whitening, L2
normalisation -> k-means (k = 10,000) -> pseudo-labels; the top layer is re-initialised and the network is
trained to predict them on images sampled uniformly over the clusters. AlexNet-BN with the fixed Sobel
input layer; native augmentation: random resized crops to 224 (scale 0.08-1, ratio 3/4-4/3) and
horizontal flips. Optimisation as facebookresearch/deepcluster main.py: SGD, learning rate 0.05, momentum
0.9, weight decay 1e-5, batch 256, a separate plain SGD for the re-initialised top layer.

`--arch monogan` trains the paper's 32 px encoder instead, the same way at its scale (docs/protocol.md): RGB
input (the Sobel layer belongs to AlexNet), random resized crops to 32 px, features of the whole 32 px image,
fc6 and fc7 as wide as the trunk's 512 outputs, and k = 400 for a 50,000-image dataset (125 images per
cluster, about the 128 of the original's 10,000 clusters of ImageNet's 1.28 million).

The file holds the whole method, in the order of the original's main.py and clustering.py: the network, its
augmentation, the clustering step, then the training loop.

    mono-train deepcluster --data shards/ameyoko --out runs/deepcluster-A
    torchrun --nproc-per-node=8 -m mono.trainers.deepcluster --data shards/ameyoko --out runs/deepcluster-A --k 10000
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mono.learning.data import Loader
from mono.learning.models import IMAGENET_NORMALIZATION, build_trunk, parse_arch_args
from mono.trainers import utils

EXAMPLES = """examples:
  mono-train deepcluster --data shards/ameyoko --out runs/deepcluster-A
  torchrun --nproc-per-node=8 -m mono.trainers.deepcluster --data shards/ameyoko --out runs/deepcluster-A
  mono-train deepcluster --data shards/in-10 --out runs/dc-in10 --k 3000 --epochs 100
  mono-train deepcluster --arch monogan --data ../shared/datasets/cifar10/train --out runs/dc-cifar10
  mono-train plot runs/deepcluster-A   # its curves from metrics.csv, as runs/deepcluster-A/metrics.png
"""

# What depends on the trunk: the crop side, the width of fc6 and fc7, k and the Sobel layer (docs/protocol.md).
DEFAULTS = {
    "alexnet": {"crop": 224, "head_width": 4096, "k": 10_000, "sobel": True},
    "monogan": {"crop": 32, "head_width": 512, "k": 400, "sobel": False},
}


def get_args_parser():
    parser = utils.get_args_parser(
        "mono-train deepcluster",
        "DeepCluster: learn to predict k-means clusters of the network's own features.",
        epochs=200,
        batch_size=256,
        lr=0.05,
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("DeepCluster")
    method.add_argument(
        "--arch",
        choices=list(DEFAULTS),
        default="alexnet",
        help="the trunk: AlexNet-BN with the Sobel layer on 224 px crops, or the paper's 32 px encoder on RGB "
        "(default alexnet)",
    )
    method.add_argument(
        "--k",
        type=int,
        default=None,
        help=f"number of k-means clusters ({utils.default_help(utils.per_arch(DEFAULTS, 'k'))})",
    )
    method.add_argument("--nmb_cluster", dest="k", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    method.add_argument("--pca", type=int, default=256, help="dimensions kept by PCA before k-means (default 256)")
    method.add_argument(
        "--kmeans-iters",
        type=int,
        default=20,
        help="k-means iterations (default 20, as faiss' default in the original)",
    )
    method.add_argument(
        "--crop",
        type=int,
        default=None,
        help=f"side of the crops seen by the network ({utils.default_help(utils.per_arch(DEFAULTS, 'crop'))})",
    )
    method.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    method.add_argument(
        "--weight-decay",
        type=float,
        default=1e-5,
        help="weight decay (default 1e-5; the original gives its log10, -5)",
    )
    method.add_argument("--wd", dest="weight_decay", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    method.add_argument(
        "--reassign",
        type=float,
        default=1.0,
        help="epoch length as a multiple of the dataset, between two clusterings (default 1)",
    )
    method.add_argument(
        "--no-sobel",
        dest="sobel",
        action="store_false",
        default=None,
        help="alexnet: feed RGB instead of the fixed Sobel layer (monogan: always RGB)",
    )
    method.add_argument(
        "--head-width",
        type=int,
        default=None,
        help=f"width of fc6 and fc7 ({utils.default_help(utils.per_arch(DEFAULTS, 'head_width'))})",
    )
    utils.add_arch_args(method)
    method.add_argument("--log-every", type=int, default=50, help="steps between log rows (default 50)")
    return parser


# ---------------------------------------------------------------------------------------------------------------
# The network


def init_std(fan_in: int, arch: str) -> float:
    """The standard deviation of a fully connected layer's initial weights: the original's 0.01 on AlexNet; on
    the 32 px trunk 1/√fan_in, the rule 0.01 follows at fc6's 9,216 inputs (1/√9216 = 0.0104), which keeps the
    signal's scale through the narrower layers instead of shrinking it about fourfold at each."""
    return 0.01 if arch == "alexnet" else fan_in**-0.5


class Classifier(nn.Module):
    """DeepCluster's AlexNet classifier: dropout, fc6 4096, ReLU, dropout, fc7 4096, ReLU (the last ReLU
    is left out when features are computed for clustering, as in the original)."""

    def __init__(self, in_features: int, width: int = 4096, arch: str = "alexnet"):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(in_features, width),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(width, width),
        )
        for m in self.fc:
            if isinstance(m, nn.Linear):  # the original's init of its fully connected layers
                nn.init.normal_(m.weight, 0, init_std(m.in_features, arch))
                nn.init.zeros_(m.bias)

    def forward(self, x, final_relu: bool = True):
        x = self.fc(x)
        return torch.relu(x) if final_relu else x


class Network(nn.Module):
    """The trunk, then the classifier: one module for DistributedDataParallel to wrap, so that training calls
    the wrapper (whose forward synchronises the gradients) rather than reaching into it."""

    def __init__(self, trunk: nn.Module, classifier: Classifier):
        super().__init__()
        self.trunk = trunk
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(self.trunk(x))


def new_top_layer(width: int, k: int, seed: int, arch: str = "alexnet") -> nn.Linear:
    """A fresh last layer for this epoch's clusters, N(0, 0.01) weights (init_std) and zero bias, seeded for
    resuming."""
    layer = nn.Linear(width, k)
    with torch.no_grad():
        layer.weight.normal_(0, init_std(width, arch), generator=utils.seeded_generator(seed))
        layer.bias.zero_()
    return layer


# ---------------------------------------------------------------------------------------------------------------
# Augmentation: torchvision's RandomResizedCrop and RandomHorizontalFlip, for a whole batch where it is


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size×size window of each image (the features for clustering are computed on it)."""
    top = (images.shape[2] - size) // 2
    left = (images.shape[3] - size) // 2
    return images[:, :, top : top + size, left : left + size]


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
    attempts: int = 10,
) -> torch.Tensor:
    """(n, 4) boxes (top, left, h, w) drawn as torchvision's RandomResizedCrop draws them.

    Area fraction ~ U(scale), log aspect ~ U(log ratio); the first of `attempts` draws that fits is used,
    else the whole image with its aspect clamped to `ratio`, centred.
    """
    area = height * width
    target = area * _uniform(n * attempts, *scale, generator).view(attempts, n)
    log_r = _uniform(n * attempts, math.log(ratio[0]), math.log(ratio[1]), generator).view(attempts, n)
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.argmax(fits.to(torch.int8), dim=0)
    cols = torch.arange(n)
    w, h = w[first, cols], h[first, cols]
    # Fallback: centre crop of the whole image, aspect clamped (torchvision's rule).
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    missed = ~fits.any(dim=0)
    w = torch.where(missed, torch.full_like(w, fw), w)
    h = torch.where(missed, torch.full_like(h, fh), h)
    top = torch.floor(torch.rand(n, generator=generator, dtype=torch.float64) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=generator, dtype=torch.float64) * (width - w + 1))
    top = torch.where(missed, torch.div(height - h, 2, rounding_mode="floor"), top)
    left = torch.where(missed, torch.div(width - w, 2, rounding_mode="floor"), left)
    return torch.stack([top, left, h, w], dim=1)


def random_resized_crop(
    batch: torch.Tensor,
    size: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> torch.Tensor:
    """torchvision's RandomResizedCrop (+ RandomHorizontalFlip) for a whole batch, bilinear, as float in [0, 255]."""
    b, _, height, width = batch.shape
    boxes = resized_crop_boxes(b, height, width, scale, ratio, generator)
    top, left, h, w = boxes.unbind(1)
    sign = torch.ones(b, dtype=torch.float64)
    if flip:
        sign = torch.where(torch.rand(b, generator=generator) < 0.5, -sign, sign)
    # Output normalised coordinates [-1, 1] -> input normalised coordinates (align_corners=False).
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    source = batch.float()
    grid = F.affine_grid(theta.to(source), [b, 3, size, size], align_corners=False)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ---------------------------------------------------------------------------------------------------------------
# The clustering step (facebookresearch/deepcluster, clustering.py and util.py): features are reduced to 256
# dimensions by PCA with whitening, L2-normalised, clustered by faiss k-means (which splits large clusters to
# refill empty ones), and each epoch draws the same number of images from every non-empty cluster, with
# replacement where a cluster is small.


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


@torch.no_grad()
def compute_features(
    loader: Loader,
    trunk: nn.Module,
    classifier: Classifier,
    crop: int,
    side: int | None,
    amp: utils.MixedPrecision,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, fc7 features before their ReLU) of this rank's share of the dataset, on centre crops of the
    images at `side` px (the 32 px trunk's crop is the whole image)."""
    loader.set_epoch(0)
    trunk.eval()
    classifier.eval()
    indices, features = [], []
    bar = utils.Progress(len(loader), "features", enabled=progress)
    for images, _, idx in loader:
        if side and images.shape[-1] != side:
            images = utils.downscale(images, side)
        x = utils.normalize(centre_crop(images, crop), **IMAGENET_NORMALIZATION)
        with amp.autocast():
            f = classifier(trunk(amp.inputs(x)), final_relu=False)
        features.append(f.float().cpu().numpy())
        indices.append(idx.cpu().numpy())
        bar.update(len(images))
    bar.close()
    return np.concatenate(indices), np.concatenate(features).astype(np.float32)


def cluster(feature_dir: Path, world_size: int, size: int, args, epoch: int) -> tuple[np.ndarray, float]:
    """Gather every rank's features (`size` rows, in index order), cluster them: (assignments, k-means loss)."""
    features = None
    for rank in range(world_size):
        idx = np.load(feature_dir / f"indices-{rank}.npy")
        f = np.load(feature_dir / f"features-{rank}.npy")
        if features is None:
            features = np.zeros((size, f.shape[1]), np.float32)
        features[idx] = f
    x = preprocess_features(features, args.pca)
    result = kmeans(x, args.k, seed=utils.derive_seed(args.seed, epoch, 1), iterations=args.kmeans_iters)
    return result.assignments, result.loss


# ---------------------------------------------------------------------------------------------------------------
# Training: cluster, then learn to predict the clusters


def train(args) -> None:
    utils.arch_defaults(args, DEFAULTS)
    utils.check_args(args)
    processes = utils.init_distributed(args.device)
    device = processes.device
    amp = utils.MixedPrecision(device)
    if processes.is_main:
        utils.check_writable(args.out)
    dataset = utils.open_training_set(args.data, args.format)
    dataset_sha256 = utils.dataset_sha256(dataset)
    checkpoint = utils.find_resume(args)  # None: a fresh run
    start_epoch, step = utils.resume_position(checkpoint, args.epochs, announce=processes.is_main)
    utils.fix_random_seeds(args.seed)
    run = utils.RunDir(
        args.out,
        vars(args),
        ["loss", "clustering_loss", "nmi", "empty_clusters", "lr", "images_per_s"],
        method="deepcluster",
        dataset_sha256=dataset_sha256,
        enabled=processes.is_main,
        resume_step=step,
        save_every=args.save_every,
    )
    n = dataset.num_samples
    if args.k < 2:
        raise utils.UserError(f"--k {args.k} clusters: choose at least 2")
    if args.k > n:  # the paper's k = 10,000 on a small dataset: about 10 samples per cluster, as 1.28M / 10k is 128
        raise utils.UserError(
            f"--k {args.k} clusters need at least {args.k:,} samples; {args.data} has {n:,}: try --k {max(n // 10, 2)}"
        )
    # The 32 px trunk sees the images at its size (shrunk by area averaging if larger), AlexNet as they are.
    side = utils.image_side(dataset, 32 if args.arch == "monogan" else None)
    utils.check_crop(args.crop, side, args.arch, args.data)
    if args.reassign <= 0:
        raise utils.UserError("--reassign must be positive")

    # The network: AlexNet-BN (with the fixed Sobel layer) or the 32 px encoder, and the classifier, fc6 and fc7;
    # the top layer is made anew every epoch.
    sobel = {"sobel": args.sobel} if args.arch == "alexnet" else {}
    trunk = build_trunk(args.arch, **{**sobel, **parse_arch_args(args.arch_args)})
    channels, height, width = trunk.feature_shapes(args.crop)["output"]
    classifier = Classifier(channels * height * width, args.head_width, args.arch)
    trunk, classifier = amp.to_device(trunk), amp.to_device(classifier)
    optimizer = torch.optim.SGD(
        list(trunk.parameters()) + list(classifier.parameters()),
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
    )
    state = utils.restore(
        checkpoint,
        method="deepcluster",
        dataset_sha256=dataset_sha256,
        trunk=trunk,
        modules={"classifier": classifier},
        optimizers={"sgd": optimizer},
        scaler=amp.scaler,
    )
    previous = state.get("assignments")
    previous = previous.numpy() if previous is not None else None
    network = utils.ddp(Network(trunk, classifier), processes)
    options = dict(seed=args.seed, num_workers=args.workers, device=device)
    everything = Loader(dataset, args.batch_size, shuffle=False, drop_last=False, **options)  # for the features
    loader = Loader(dataset, args.batch_size, shuffle=True, drop_last=True, **options)
    loader = utils.recording(loader, args.record_samples, processes.rank)
    epoch_batches = int(args.reassign * n) // (args.batch_size * processes.world_size)  # samples over clusters
    steps_per_epoch = min(epoch_batches, args.steps_per_epoch or epoch_batches)
    utils.check_batches(steps_per_epoch, args, dataset, processes.world_size)
    orientation = utils.Orientation("deepcluster", args, processes, amp, dataset, steps_per_epoch, start_epoch)
    orientation.header()
    criterion = nn.CrossEntropyLoss()
    feature_dir = args.out / ".features"
    run.open()  # the features are cached in the run directory

    for epoch in range(start_epoch, args.epochs):
        # 1. Cluster the current features of the whole dataset (on the main process).
        if processes.is_main:
            feature_dir.mkdir(exist_ok=True)
        utils.barrier()
        indices, features = compute_features(  # no gradients: the modules themselves, not the DDP wrapper
            everything, trunk, classifier, args.crop, side, amp, progress=processes.is_main and not args.quiet
        )
        np.save(feature_dir / f"indices-{processes.rank}.npy", indices)
        np.save(feature_dir / f"features-{processes.rank}.npy", features)
        utils.barrier()
        if processes.is_main:
            assignments, clustering_loss = cluster(feature_dir, processes.world_size, dataset.layout.size, args, epoch)
            shutil.rmtree(feature_dir, ignore_errors=True)
        else:
            assignments, clustering_loss = None, None
        assignments, clustering_loss = utils.broadcast_object((assignments, clustering_loss))
        nmi = normalized_mutual_information(assignments, previous) if previous is not None else None
        empty = int(args.k - len(np.unique(assignments)))
        previous = assignments
        labels = torch.from_numpy(assignments).to(device)

        # 2. Sample uniformly over the clusters; a fresh top layer predicts them.
        seed = utils.derive_seed(args.seed, epoch, 2)
        loader.set_epoch(epoch, indices=uniform_over_clusters(assignments, int(args.reassign * n), seed, args.k))
        top = amp.to_device(
            new_top_layer(classifier.fc[-1].out_features, args.k, utils.derive_seed(args.seed, epoch, 3), args.arch)
        )
        top_optimizer = torch.optim.SGD(top.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        top_ddp = utils.ddp(top, processes)

        # 3. Train on the pseudo-labels.
        network.train()
        top_ddp.train()
        augment = utils.seeded_generator(args.seed, processes.rank, epoch, 0)
        total = min(len(loader), args.steps_per_epoch or len(loader))
        progress = utils.Progress(
            total, f"epoch {epoch + 1}/{args.epochs}", enabled=processes.is_main and not args.quiet, clock=orientation
        )
        sums = torch.zeros(2, device=device)
        metrics = utils.StepMetrics(device)
        for _, (images, _, idx) in zip(range(total), loader):
            if side and images.shape[-1] != side:
                images = utils.downscale(images, side)
            x = utils.normalize(random_resized_crop(images, args.crop, augment), **IMAGENET_NORMALIZATION)
            with amp.autocast():
                logits = top_ddp(network(amp.inputs(x)))
                loss = criterion(logits.float(), labels[idx])
            metrics.add(step + 1, loss=loss)

            optimizer.zero_grad(set_to_none=True)
            top_optimizer.zero_grad(set_to_none=True)
            amp.scaler.scale(loss).backward()
            amp.scaler.step(optimizer)
            amp.scaler.step(top_optimizer)
            amp.scaler.update()
            step += 1

            sums += torch.stack([loss.detach() * len(idx), torch.tensor(float(len(idx)), device=device)])
            if step % args.log_every == 0:  # the only synchronisation with the device inside an epoch
                values = metrics.latest(step, epoch, args.out)
                progress.update(len(images), loss=values["loss"])
                run.log(
                    epoch,
                    step,
                    loss=values["loss"],
                    clustering_loss=clustering_loss,
                    nmi=nmi,
                    empty_clusters=empty,
                    lr=args.lr,
                    images_per_s=progress.images_per_second,
                )
            else:
                progress.update(len(images))
        progress.close()

        metrics.means(epoch, args.out)  # a NaN since the last log step stops the run before its checkpoint
        loss_sum, count = utils.all_reduce_mean(sums).tolist()
        row = {
            "loss": loss_sum / max(count, 1),
            "clustering_loss": clustering_loss,
            "nmi": nmi,
            "empty_clusters": empty,
            "lr": args.lr,
            "images_per_s": progress.images_per_second,
        }
        # The checkpoint first, then the epoch's row: a row is only written for an epoch that is safely on disk.
        run.save(
            epoch + 1,
            step,
            trunk=trunk,
            normalization=IMAGENET_NORMALIZATION,
            modules={"classifier": classifier},
            optimizers={"sgd": optimizer},
            scaler=amp.scaler,
            state={"assignments": torch.from_numpy(assignments.astype(np.int32))},
        )
        run.log(epoch, step, **row)
        if processes.is_main and not args.quiet:
            nmi_text = f", NMI to previous {nmi:.3f}" if nmi is not None else ""
            print(
                f"deepcluster: epoch {epoch + 1}/{args.epochs} loss {row['loss']:.4f}, clustering loss "
                f"{clustering_loss:.4g}{nmi_text}, {empty} empty clusters{orientation.eta()}",
                file=sys.stderr,
            )
    run.close()
    orientation.finish()


def main(argv: Sequence[str] | None = None) -> None:
    train(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    utils.run(main, "mono-train deepcluster")
