"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): learn features by predicting image rotations.

Every image of a batch is shown at 0°, 90°, 180° and 270°, and a 4-way classifier on the AlexNet-BN
trunk learns to tell which. Native augmentation: random 224×224 crops of the 256 px images with
horizontal flips. Optimisation as the original ImageNet AlexNet config (gidariss/FeatureLearningRotNet,
config/ImageNet_RotNet_AlexNet.py): SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 192,
50 epochs, learning rate 0.01 divided by 10 at epochs 15, 30 and 45.

    mono-train rotnet --data shards/ameyoko --out runs/rotnet-A
    torchrun --nproc-per-node=8 -m trainers.rotnet --data shards/ameyoko --out runs/rotnet-A
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from torch import nn

from learning.errors import UserError
from learning.models import IMAGENET_NORMALIZATION, build_trunk
from learning.schedules import set_learning_rate, step_decay
from trainers.common.augment import normalize, random_crop, rotations
from trainers.common.distributed import all_reduce_mean
from trainers.common.options import run_main, run_trainer, trainer_parser
from trainers.common.session import Session

EXAMPLES = """examples:
  mono-train rotnet --data shards/ameyoko --out runs/rotnet-A
  torchrun --nproc-per-node=8 -m trainers.rotnet --data shards/ameyoko --out runs/rotnet-A
  mono-train rotnet --data shards/ameyoko --out runs/rotnet-A --resume
"""


def get_args_parser():
    parser = trainer_parser(
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


def learning_rate(args, epoch: int) -> float:
    return step_decay(args.lr, epoch, [int(s) for s in args.lr_steps.split(",") if s.strip()], args.lr_decay)


def train(args) -> None:
    session = Session(args, "rotnet", metrics=["loss", "accuracy", "lr", "images_per_s"])
    if session.dataset.image_size and session.dataset.image_size < args.crop:
        raise UserError(f"--crop {args.crop} is larger than the dataset's {session.dataset.image_size} px images")
    trunk = build_trunk("alexnet", sobel=False, activation="relu")
    channels, height, width = trunk.feature_shapes(args.crop)["output"]
    head = RotationHead(channels * height * width, args.head_width)
    model = session.precision.prepare(nn.Sequential(trunk, head))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, nesterov=True
    )
    session.restore(trunk=trunk, modules={"head": head}, optimizers={"sgd": optimizer}, scaler=session.precision.scaler)
    model = session.ddp(model)
    loader = session.loader()
    criterion = nn.CrossEntropyLoss()
    step = session.resume_step

    for epoch in range(session.start_epoch, args.epochs):
        lr = learning_rate(args, epoch)
        set_learning_rate(optimizer, lr)
        loader.set_epoch(epoch)
        generator = session.generator(epoch)
        model.train()
        total = session.steps(loader)
        progress = session.progress(total, epoch)
        sums = torch.zeros(3, device=session.device)  # loss, correct, count
        for _, (images, _, _) in zip(range(total), loader):
            crops = random_crop(images, args.crop, generator, flip=True)
            inputs, targets = rotations(normalize(crops, **IMAGENET_NORMALIZATION))
            with session.precision.autocast():
                logits = model(session.precision.inputs(inputs))
                loss = criterion(logits.float(), targets)
            correct = (logits.argmax(1) == targets).sum()
            values = session.check_finite(step + 1, loss=loss, accuracy=correct / len(targets))
            session.precision.step(loss, optimizer)
            step += 1
            sums += torch.stack(
                [
                    loss.detach() * len(targets),
                    correct.float(),
                    torch.tensor(float(len(targets)), device=session.device),
                ]
            )
            progress.update(len(images), loss=values["loss"])
            if step % args.log_every == 0:
                session.log.log(epoch, step, **values, lr=lr, images_per_s=progress.images_per_second)
        progress.close()
        loss_sum, correct, count = all_reduce_mean(sums).tolist()
        row = {
            "loss": loss_sum / max(count, 1),
            "accuracy": correct / max(count, 1),
            "lr": lr,
            "images_per_s": progress.images_per_second,
        }
        session.end_epoch(
            epoch,
            step,
            row,
            trunk=trunk,
            normalization=IMAGENET_NORMALIZATION,
            modules={"head": head},
            optimizers={"sgd": optimizer},
        )
        if session.dist.is_main and not args.quiet:
            print(
                f"rotnet: epoch {epoch + 1}/{args.epochs} loss {loss_sum / max(count, 1):.4f} "
                f"rotation accuracy {100 * correct / max(count, 1):.1f}% ({progress.images_per_second:,.0f} img/s)",
                file=sys.stderr,
            )
    session.close()


def main(argv: Sequence[str] | None = None) -> None:
    run_trainer(get_args_parser, train, argv)


if __name__ == "__main__":
    run_main(main, None, "mono-train rotnet")
