"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): learn features by predicting image rotations.

Every image of a batch is shown at 0°, 90°, 180° and 270°, and a 4-way classifier on the trunk learns to tell
which. Two recipes of the original code (gidariss/FeatureLearningRotNet), one per trunk (--arch):

* alexnet, as config/ImageNet_RotNet_AlexNet.py: random 224×224 crops of the 256 px images with horizontal
  flips; two 4096-wide fully connected layers and the 4-way layer on pool5; SGD with Nesterov momentum 0.9,
  weight decay 5e-4, batch 192, 50 epochs, learning rate 0.01 divided by 10 at epochs 15, 30 and 45.
* monogan (the paper's 32 px encoder), as config/CIFAR10_RotNet_NIN4blocks.py and dataloader.py: random 32×32
  crops of the images padded by 4 black pixels, with flips; CIFAR-10's channel statistics; global average
  pooling and one linear layer (the CIFAR network's classifier); the same SGD, batch 128, 200 epochs,
  learning rate 0.1 multiplied by 0.2 at epochs 60, 120 and 160 (0.03 here: the trunk has no batch norm).

    mono-train rotnet --data shards/ameyoko --out runs/rotnet-A
    mono-train rotnet --arch monogan --data shards/animals32 --out runs/rotnet-B
    torchrun --nproc-per-node=8 -m mono.trainers.rotnet --data shards/ameyoko --out runs/rotnet-A
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from torch import nn

from mono.learning.data import Loader
from mono.learning.models import CIFAR10_NORMALIZATION, IMAGENET_NORMALIZATION, build_trunk, parse_arch_args
from mono.trainers import utils

EXAMPLES = """examples:
  mono-train rotnet --data shards/ameyoko --out runs/rotnet-A
  mono-train rotnet --arch monogan --data ../shared/datasets/cifar10/train --out runs/rotnet-cifar10
  torchrun --nproc-per-node=8 -m mono.trainers.rotnet --data shards/ameyoko --out runs/rotnet-A
  mono-train rotnet --data shards/ameyoko --out runs/rotnet-A   # again after an interruption: continues
  mono-train plot runs/rotnet-A   # its curves from metrics.csv, as runs/rotnet-A/metrics.png
"""


# The original's two recipes: config/ImageNet_RotNet_AlexNet.py, and config/CIFAR10_RotNet_NIN4blocks.py with
# dataloader.py's CIFAR-10 augmentation (RandomCrop(32, padding=4), RandomHorizontalFlip) for the 32 px trunk.
DEFAULTS = {
    "alexnet": {"epochs": 50, "batch_size": 192, "lr": 0.01, "lr_steps": "15,30,45", "lr_decay": 0.1, "crop": 224},
    # lr 0.03, not the NIN's 0.1: our trunk has no batch norm, and 0.1 diverges on a single image's data
    # (docs/protocol.md, "Table 3 at 32 px").
    "monogan": {"epochs": 200, "batch_size": 128, "lr": 0.03, "lr_steps": "60,120,160", "lr_decay": 0.2, "crop": 32},
}
PADDING = {"alexnet": 0, "monogan": 4}  # black pixels around each image before the random crop
NORMALIZATION = {"alexnet": IMAGENET_NORMALIZATION, "monogan": CIFAR10_NORMALIZATION}


def get_args_parser():
    parser = utils.get_args_parser(
        "mono-train rotnet",
        "RotNet: predict which of four rotations an image shows.",
        epochs=utils.per_arch(DEFAULTS, "epochs"),
        batch_size=utils.per_arch(DEFAULTS, "batch_size"),
        lr=utils.per_arch(DEFAULTS, "lr"),
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("RotNet")
    method.add_argument(
        "--arch",
        choices=list(DEFAULTS),
        default="alexnet",
        help="the trunk: AlexNet-BN on 224 px crops, or the paper's 32 px encoder with the CIFAR-10 recipe "
        "(default alexnet)",
    )
    crop = utils.per_arch(DEFAULTS, "crop")
    method.add_argument("--crop", type=int, default=None, help=f"side of the random crops ({utils.default_help(crop)})")
    method.add_argument(
        "--lr-steps",
        default=None,
        help=f"epochs at which the learning rate is multiplied by --lr-decay "
        f"({utils.default_help(utils.per_arch(DEFAULTS, 'lr_steps'))})",
    )
    method.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        help=f"learning rate factor at each step ({utils.default_help(utils.per_arch(DEFAULTS, 'lr_decay'))})",
    )
    method.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    method.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (default 5e-4)")
    method.add_argument(
        "--head-width",
        type=int,
        default=4096,
        help="width of the alexnet classifier's hidden layers (default 4096; the 32 px trunk's head is linear)",
    )
    utils.add_arch_args(method)
    method.add_argument("--log-every", type=int, default=50, help="steps between log rows (default 50)")
    return parser


class RotationHead(nn.Module):
    """The original's classifier on pool5: two 4096-wide fully connected layers with BatchNorm, then 4 ways."""

    def __init__(self, in_features: int, width: int = 4096):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, width, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Linear(width, width, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Linear(width, 4),
        )

    def forward(self, x):
        return self.net(x)


def rotation_head(trunk: nn.Module, crop: int, width: int) -> nn.Module:
    """The original's classifier for each trunk: on AlexNet's pool5, two fully connected layers
    (architectures/AlexNet.py); on the 32 px encoder, global average pooling and one linear layer, the
    classifier of its CIFAR-10 network (architectures/NetworkInNetwork.py)."""
    channels, height, width_ = trunk.feature_shapes(crop)["output"]
    if trunk.arch == "alexnet":
        return RotationHead(channels * height * width_, width)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 4))


def rotations(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image at 0°, 90°, 180° and 270° (counter-clockwise), and the rotation labels 0..3."""
    turned = torch.cat([torch.rot90(batch, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=batch.device).repeat_interleave(batch.shape[0])
    return turned, labels


def learning_rate(args, epoch: int) -> float:
    """--lr multiplied by --lr-decay at each of --lr-steps."""
    return utils.step_decay(args.lr, epoch, [int(s) for s in args.lr_steps.split(",") if s.strip()], args.lr_decay)


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
        ["loss", "accuracy", "lr", "images_per_s"],
        method="rotnet",
        dataset_sha256=dataset_sha256,
        enabled=processes.is_main,
        resume_step=step,
        save_every=args.save_every,
    )
    # The 32 px trunk sees the images at its size (shrunk by area averaging if larger), AlexNet as they are.
    side = utils.image_side(dataset, 32 if args.arch == "monogan" else None)
    utils.check_crop(args.crop, side, args.arch, args.data, PADDING[args.arch])

    # The model: the trunk that the probes evaluate, and the rotation classifier on its last feature map.
    # alexnet: RGB (no Sobel layer), ReLU; monogan: its calibrated defaults; either changed by --arch-args
    trunk = build_trunk(args.arch, **parse_arch_args(args.arch_args))
    head = rotation_head(trunk, args.crop, args.head_width)
    model = amp.to_device(nn.Sequential(trunk, head))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, nesterov=True
    )
    utils.restore(
        checkpoint,
        method="rotnet",
        dataset_sha256=dataset_sha256,
        trunk=trunk,
        modules={"head": head},
        optimizers={"sgd": optimizer},
        scaler=amp.scaler,
    )
    model = utils.ddp(model, processes)
    loader = Loader(
        dataset,
        args.batch_size,
        shuffle=True,
        seed=args.seed,
        num_workers=args.workers,
        drop_last=True,
        device=device,
    )
    loader = utils.recording(loader, args.record_samples, processes.rank)
    steps_per_epoch = min(len(loader), args.steps_per_epoch or len(loader))
    utils.check_batches(steps_per_epoch, args, dataset, processes.world_size)
    orientation = utils.Orientation("rotnet", args, processes, amp, dataset, steps_per_epoch, start_epoch)
    orientation.header()
    criterion = nn.CrossEntropyLoss()

    for epoch in range(start_epoch, args.epochs):
        lr = learning_rate(args, epoch)
        utils.set_learning_rate(optimizer, lr)
        loader.set_epoch(epoch)
        augment = utils.seeded_generator(args.seed, processes.rank, epoch, 0)
        model.train()
        progress = utils.Progress(
            steps_per_epoch,
            f"epoch {epoch + 1}/{args.epochs}",
            enabled=processes.is_main and not args.quiet,
            clock=orientation,
        )
        sums = torch.zeros(3, device=device)  # loss, correct, count
        metrics = utils.StepMetrics(device)
        for _, (images, _, _) in zip(range(steps_per_epoch), loader):
            # Native augmentation: random crops (of padded images for the 32 px trunk) with flips; then every image
            # in its four rotations.
            if side and images.shape[-1] != side:
                images = utils.downscale(images, side)
            crops = utils.random_crop(images, args.crop, augment, flip=True, padding=PADDING[args.arch])
            inputs, targets = rotations(utils.normalize(crops, **NORMALIZATION[args.arch]))
            with amp.autocast():
                logits = model(amp.inputs(inputs))
                loss = criterion(logits.float(), targets)
            correct = (logits.argmax(1) == targets).sum()
            metrics.add(step + 1, loss=loss, accuracy=correct / len(targets))

            optimizer.zero_grad(set_to_none=True)
            amp.scaler.scale(loss).backward()
            amp.scaler.step(optimizer)
            amp.scaler.update()
            step += 1

            count = torch.tensor(float(len(targets)), device=device)
            sums += torch.stack([loss.detach() * len(targets), correct.float(), count])
            if step % args.log_every == 0:  # the only synchronisation with the device inside an epoch
                values = metrics.latest(step, epoch, args.out)
                progress.update(len(images), loss=values["loss"])
                run.log(epoch, step, **values, lr=lr, images_per_s=progress.images_per_second)
            else:
                progress.update(len(images))
        progress.close()

        metrics.means(epoch, args.out)  # a NaN since the last log step stops the run before its checkpoint
        loss_sum, correct, count = utils.all_reduce_mean(sums).tolist()
        row = {
            "loss": loss_sum / max(count, 1),
            "accuracy": correct / max(count, 1),
            "lr": lr,
            "images_per_s": progress.images_per_second,
        }
        # The checkpoint first, then the epoch's row: a row is only written for an epoch that is safely on disk.
        run.save(
            epoch + 1,
            step,
            trunk=trunk,
            normalization=NORMALIZATION[args.arch],
            modules={"head": head},
            optimizers={"sgd": optimizer},
            scaler=amp.scaler,
        )
        run.log(epoch, step, **row)
        if processes.is_main and not args.quiet:
            print(
                f"rotnet: epoch {epoch + 1}/{args.epochs} loss {row['loss']:.4f} rotation accuracy "
                f"{100 * row['accuracy']:.1f}% ({row['images_per_s']:,.0f} img/s{orientation.eta()})",
                file=sys.stderr,
            )
    run.close()
    orientation.finish()


def main(argv: Sequence[str] | None = None) -> None:
    train(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    utils.run(main, "mono-train rotnet")
