"""DeepCluster (Caron, Bojanowski, Joulin & Douze, ECCV 2018): cluster the features, learn to predict the clusters.

Each epoch: features of the whole dataset (centre crops) -> PCA to 256 dimensions with whitening, L2
normalisation -> k-means (k = 10,000) -> pseudo-labels; the top layer is re-initialised and the network is
trained to predict them on images sampled uniformly over the clusters. AlexNet-BN with the fixed Sobel
input layer; native augmentation: random resized crops to 224 (scale 0.08-1, ratio 3/4-4/3) and
horizontal flips. Optimisation as facebookresearch/deepcluster main.py: SGD, learning rate 0.05, momentum
0.9, weight decay 1e-5, batch 256, a separate plain SGD for the re-initialised top layer.

    mono-train deepcluster --data shards/ameyoko --out runs/deepcluster-A
    torchrun --nproc-per-node=8 -m trainers.deepcluster --data shards/ameyoko --out runs/deepcluster-A --k 10000
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from learning.errors import UserError
from learning.models import IMAGENET_NORMALIZATION, build_trunk
from learning.seeds import derive_seed, seeded_generator
from trainers.clustering import kmeans, normalized_mutual_information, preprocess_features, uniform_over_clusters
from trainers.common.augment import normalize, random_resized_crop
from trainers.common.distributed import all_reduce_mean, barrier, broadcast_object
from trainers.common.options import run_main, run_trainer, trainer_parser
from trainers.common.session import Session

EXAMPLES = """examples:
  mono-train deepcluster --data shards/ameyoko --out runs/deepcluster-A
  torchrun --nproc-per-node=8 -m trainers.deepcluster --data shards/ameyoko --out runs/deepcluster-A
  mono-train deepcluster --data shards/in-10 --out runs/dc-in10 --k 3000 --epochs 100
"""


def get_args_parser():
    parser = trainer_parser(
        "mono-train deepcluster",
        "DeepCluster: learn to predict k-means clusters of the network's own features.",
        epochs=200,
        batch_size=256,
        lr=0.05,
        seed=31,
        workers=4,
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("DeepCluster")
    method.add_argument(
        "--k", "--nmb_cluster", dest="k", type=int, default=10_000, help="number of k-means clusters (default 10000)"
    )
    method.add_argument("--pca", type=int, default=256, help="dimensions kept by PCA before k-means (default 256)")
    method.add_argument(
        "--kmeans-iters",
        type=int,
        default=20,
        help="k-means iterations (default 20, as faiss' default in the original)",
    )
    method.add_argument("--crop", type=int, default=224, help="side of the crops seen by the network (default 224)")
    method.add_argument("--momentum", type=float, default=0.9)
    method.add_argument(
        "--weight-decay",
        "--wd",
        dest="weight_decay",
        type=float,
        default=1e-5,
        help="weight decay (default 1e-5; the original's --wd -5 is its log10)",
    )
    method.add_argument(
        "--reassign",
        type=float,
        default=1.0,
        help="epoch length as a multiple of the dataset, between two clusterings (default 1)",
    )
    method.add_argument(
        "--no-sobel", dest="sobel", action="store_false", help="feed RGB instead of the fixed Sobel layer"
    )
    method.add_argument("--head-width", type=int, default=4096, help="width of fc6 and fc7 (default 4096)")
    method.add_argument("--log-every", type=int, default=50, help="steps between log rows (default 50)")
    return parser


class Classifier(nn.Module):
    """DeepCluster's AlexNet classifier: dropout, fc6 4096, ReLU, dropout, fc7 4096, ReLU (the last ReLU
    is left out when features are computed for clustering, as in the original)."""

    def __init__(self, in_features: int, width: int = 4096):
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
                nn.init.normal_(m.weight, 0, 0.01)
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


def new_top_layer(width: int, k: int, seed: int) -> nn.Linear:
    """A fresh last layer for this epoch's clusters, N(0, 0.01) weights and zero bias, seeded for resuming."""
    layer = nn.Linear(width, k)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=seeded_generator(seed))
        layer.bias.zero_()
    return layer


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    top = (images.shape[2] - size) // 2
    left = (images.shape[3] - size) // 2
    return images[:, :, top : top + size, left : left + size]


@torch.no_grad()
def compute_features(session: Session, trunk, classifier, args, feature_dir: Path) -> None:
    """Every sample's fc7 features (before its ReLU), written per rank as (indices, features) .npy files."""
    loader = session.loader(shuffle=False, drop_last=False)
    loader.set_epoch(0)
    trunk.eval()
    classifier.eval()
    indices, features = [], []
    progress = session.progress(len(loader), -1)
    progress.bar.set_description("features")
    for images, _, idx in loader:
        x = normalize(centre_crop(images, args.crop), **IMAGENET_NORMALIZATION)
        with session.precision.autocast():
            f = classifier(trunk(session.precision.inputs(x)), final_relu=False)
        features.append(f.float().cpu().numpy())
        indices.append(idx.cpu().numpy())
        progress.update(len(images))
    progress.close()
    np.save(feature_dir / f"indices-{session.dist.rank}.npy", np.concatenate(indices))
    np.save(feature_dir / f"features-{session.dist.rank}.npy", np.concatenate(features).astype(np.float32))


def cluster(session: Session, args, feature_dir: Path, epoch: int) -> tuple[np.ndarray, float]:
    """Gather every rank's features in index order, cluster them, and return (assignments, k-means loss)."""
    n = session.dataset.layout.size
    features = None
    for rank in range(session.dist.world_size):
        idx = np.load(feature_dir / f"indices-{rank}.npy")
        f = np.load(feature_dir / f"features-{rank}.npy")
        if features is None:
            features = np.zeros((n, f.shape[1]), np.float32)
        features[idx] = f
    x = preprocess_features(features, args.pca)
    result = kmeans(x, args.k, seed=derive_seed(args.seed, epoch, 1), iterations=args.kmeans_iters)
    return result.assignments, result.loss


def train(args) -> None:
    session = Session(
        args, "deepcluster", metrics=["loss", "clustering_loss", "nmi", "empty_clusters", "lr", "images_per_s"]
    )
    n = session.dataset.num_samples
    if args.k < 2 or args.k > n:
        raise UserError(f"--k {args.k} clusters for {n} samples: choose 2 <= k <= the number of samples")
    if session.dataset.image_size and session.dataset.image_size < args.crop:
        raise UserError(f"--crop {args.crop} is larger than the dataset's {session.dataset.image_size} px images")
    if args.reassign <= 0:
        raise UserError("--reassign must be positive")
    trunk = build_trunk("alexnet", sobel=args.sobel, activation="relu")
    channels, height, width = trunk.feature_shapes(args.crop)["output"]
    classifier = Classifier(channels * height * width, args.head_width)
    trunk, classifier = session.precision.prepare(trunk), session.precision.prepare(classifier)
    optimizer = torch.optim.SGD(
        list(trunk.parameters()) + list(classifier.parameters()),
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
    )
    state = session.restore(
        trunk=trunk, modules={"classifier": classifier}, optimizers={"sgd": optimizer}, scaler=session.precision.scaler
    )
    previous = state.get("assignments")
    previous = previous.numpy() if previous is not None else None
    network = session.ddp(Network(trunk, classifier))
    loader = session.loader()
    criterion = nn.CrossEntropyLoss()
    feature_dir = session.run_dir / ".features"
    step = session.resume_step
    session.begin()  # the features are cached in the run directory

    for epoch in range(session.start_epoch, args.epochs):
        # 1. Cluster the current features of the whole dataset (on the main process).
        if session.dist.is_main:
            feature_dir.mkdir(exist_ok=True)
        barrier()
        compute_features(session, trunk, classifier, args, feature_dir)  # no gradients: the modules themselves
        barrier()
        if session.dist.is_main:
            assignments, clustering_loss = cluster(session, args, feature_dir, epoch)
            shutil.rmtree(feature_dir, ignore_errors=True)
        else:
            assignments, clustering_loss = None, None
        assignments, clustering_loss = broadcast_object((assignments, clustering_loss))
        nmi = normalized_mutual_information(assignments, previous) if previous is not None else None
        empty = int(args.k - len(np.unique(assignments)))
        previous = assignments
        labels = torch.from_numpy(assignments).to(session.device)

        # 2. Sample uniformly over the clusters; a fresh top layer predicts them.
        epoch_size = int(args.reassign * n)
        loader.set_epoch(
            epoch, indices=uniform_over_clusters(assignments, epoch_size, derive_seed(args.seed, epoch, 2), args.k)
        )
        top = session.precision.prepare(
            new_top_layer(classifier.fc[-1].out_features, args.k, derive_seed(args.seed, epoch, 3))
        )
        top_optimizer = torch.optim.SGD(top.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        top_ddp = session.ddp(top)

        # 3. Train on the pseudo-labels.
        network.train()
        top_ddp.train()
        augment = session.generator(epoch)
        total = session.steps(loader)
        progress = session.progress(total, epoch)
        sums = torch.zeros(2, device=session.device)
        for _, (images, _, idx) in zip(range(total), loader):
            x = normalize(random_resized_crop(images, args.crop, augment), **IMAGENET_NORMALIZATION)
            with session.precision.autocast():
                logits = top_ddp(network(session.precision.inputs(x)))
                loss = criterion(logits.float(), labels[idx])
            values = session.check_finite(step + 1, loss=loss)
            optimizer.zero_grad(set_to_none=True)
            top_optimizer.zero_grad(set_to_none=True)
            session.precision.scaler.scale(loss).backward()
            session.precision.scaler.step(optimizer)
            session.precision.scaler.step(top_optimizer)
            session.precision.scaler.update()
            step += 1
            sums += torch.stack([loss.detach() * len(idx), torch.tensor(float(len(idx)), device=session.device)])
            progress.update(len(images), loss=values["loss"])
            if step % args.log_every == 0:
                session.log.log(
                    epoch,
                    step,
                    loss=values["loss"],
                    clustering_loss=clustering_loss,
                    nmi=nmi,
                    empty_clusters=empty,
                    lr=args.lr,
                    images_per_s=progress.images_per_second,
                )
        progress.close()
        loss_sum, count = all_reduce_mean(sums).tolist()
        mean_loss = loss_sum / max(count, 1)
        row = {
            "loss": mean_loss,
            "clustering_loss": clustering_loss,
            "nmi": nmi,
            "empty_clusters": empty,
            "lr": args.lr,
            "images_per_s": progress.images_per_second,
        }
        session.end_epoch(
            epoch,
            step,
            row,
            trunk=trunk,
            normalization=IMAGENET_NORMALIZATION,
            modules={"classifier": classifier},
            optimizers={"sgd": optimizer},
            state={"assignments": torch.from_numpy(assignments.astype(np.int32))},
        )
        if session.dist.is_main and not args.quiet:
            nmi_text = f", NMI to previous {nmi:.3f}" if nmi is not None else ""
            print(
                f"deepcluster: epoch {epoch + 1}/{args.epochs} loss {mean_loss:.4f}, clustering loss "
                f"{clustering_loss:.4g}{nmi_text}, {empty} empty clusters",
                file=sys.stderr,
            )
    session.close()


def main(argv: Sequence[str] | None = None) -> None:
    run_trainer(get_args_parser, train, argv)


if __name__ == "__main__":
    run_main(main, None, "mono-train deepcluster")
