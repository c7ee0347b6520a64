"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): learn features by predicting image rotations.

Every image of a batch is shown at 0°, 90°, 180° and 270°, and a 4-way classifier on the AlexNet-BN
trunk learns to tell which. Native augmentation: random 224×224 crops of the 256 px images with
horizontal flips. Optimisation as the original ImageNet AlexNet config (gidariss/FeatureLearningRotNet,
config/ImageNet_RotNet_AlexNet.py): SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 192,
50 epochs, learning rate 0.01 divided by 10 at epochs 15, 30 and 45.

    mono-train rotnet --data shards/ameyoko --out runs/rotnet-A
    torchrun --nproc-per-node=8 -m mono.trainers.rotnet --data shards/ameyoko --out runs/rotnet-A
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from torch import nn

from mono.learning.data import Loader
from mono.learning.models import IMAGENET_NORMALIZATION, build_trunk
from mono.trainers import utils

EXAMPLES = """examples:
  mono-train rotnet --data shards/ameyoko --out runs/rotnet-A
  torchrun --nproc-per-node=8 -m mono.trainers.rotnet --data shards/ameyoko --out runs/rotnet-A
  mono-train rotnet --data shards/ameyoko --out runs/rotnet-A --resume
"""


def get_args_parser():
    parser = utils.get_args_parser(
        "mono-train rotnet",
        "RotNet: predict which of four rotations an image shows.",
        epochs=50,
        batch_size=192,
        lr=0.01,
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("RotNet")
    method.add_argument("--crop", type=int, default=224, help="side of the random crops (default 224)")
    method.add_argument(
        "--lr-steps", default="15,30,45", help="epochs at which the learning rate is divided (default 15,30,45)"
    )
    method.add_argument("--lr-decay", type=float, default=0.1, help="learning rate factor at each step (default 0.1)")
    method.add_argument("--momentum", type=float, default=0.9)
    method.add_argument("--weight-decay", type=float, default=5e-4)
    method.add_argument(
        "--head-width", type=int, default=4096, help="width of the classifier's hidden layers (default 4096)"
    )
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


def rotations(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image at 0°, 90°, 180° and 270° (counter-clockwise), and the rotation labels 0..3."""
    turned = torch.cat([torch.rot90(batch, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=batch.device).repeat_interleave(batch.shape[0])
    return turned, labels


def learning_rate(args, epoch: int) -> float:
    """--lr divided by 10 (--lr-decay) at each of --lr-steps."""
    return utils.step_decay(args.lr, epoch, [int(s) for s in args.lr_steps.split(",") if s.strip()], args.lr_decay)


def train(args) -> None:
    utils.check_args(args)
    processes = utils.init_distributed(args.device)
    device = processes.device
    amp = utils.MixedPrecision(device)
    if processes.is_main:
        utils.check_writable(args.out)
    dataset = utils.open_training_set(args.data, args.format)
    dataset_sha256 = utils.dataset_sha256(dataset)
    checkpoint = utils.find_resume(args.out, args.resume)  # None: a fresh run
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
    if dataset.image_size and dataset.image_size < args.crop:
        raise utils.UserError(f"--crop {args.crop} is larger than the dataset's {dataset.image_size} px images")

    # The model: the AlexNet-BN trunk that the probes evaluate, and the rotation classifier on its pool5.
    trunk = build_trunk("alexnet", sobel=False, activation="relu")
    channels, height, width = trunk.feature_shapes(args.crop)["output"]
    head = RotationHead(channels * height * width, args.head_width)
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
    criterion = nn.CrossEntropyLoss()

    for epoch in range(start_epoch, args.epochs):
        lr = learning_rate(args, epoch)
        utils.set_learning_rate(optimizer, lr)
        loader.set_epoch(epoch)
        augment = utils.seeded_generator(args.seed, processes.rank, epoch, 0)
        model.train()
        total = min(len(loader), args.steps_per_epoch or len(loader))
        progress = utils.Progress(
            total, f"epoch {epoch + 1}/{args.epochs}", enabled=processes.is_main and not args.quiet
        )
        sums = torch.zeros(3, device=device)  # loss, correct, count
        for _, (images, _, _) in zip(range(total), loader):
            # Native augmentation: random crops with flips; then every image in its four rotations.
            crops = utils.random_crop(images, args.crop, augment, flip=True)
            inputs, targets = rotations(utils.normalize(crops, **IMAGENET_NORMALIZATION))
            with amp.autocast():
                logits = model(amp.inputs(inputs))
                loss = criterion(logits.float(), targets)
            correct = (logits.argmax(1) == targets).sum()
            values = utils.finite_means(step + 1, epoch, args.out, loss=loss, accuracy=correct / len(targets))

            optimizer.zero_grad(set_to_none=True)
            amp.scaler.scale(loss).backward()
            amp.scaler.step(optimizer)
            amp.scaler.update()
            step += 1

            count = torch.tensor(float(len(targets)), device=device)
            sums += torch.stack([loss.detach() * len(targets), correct.float(), count])
            progress.update(len(images), loss=values["loss"])
            if step % args.log_every == 0:
                run.log(epoch, step, **values, lr=lr, images_per_s=progress.images_per_second)
        progress.close()

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
            normalization=IMAGENET_NORMALIZATION,
            modules={"head": head},
            optimizers={"sgd": optimizer},
            scaler=amp.scaler,
        )
        run.log(epoch, step, **row)
        if processes.is_main and not args.quiet:
            print(
                f"rotnet: epoch {epoch + 1}/{args.epochs} loss {row['loss']:.4f} rotation accuracy "
                f"{100 * row['accuracy']:.1f}% ({row['images_per_s']:,.0f} img/s)",
                file=sys.stderr,
            )
    run.close()


def main(argv: Sequence[str] | None = None) -> None:
    train(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    utils.run(main, "mono-train rotnet")
