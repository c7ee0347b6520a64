"""Supervised training: the probed trunk and one linear classifier, cross-entropy on the dataset's own labels.

The paper's "fully supervised" row of Table 3 and the reference curve of its Figure 6: the upper bound a
self-supervised trunk is measured against. Any labelled dataset works; a folder dataset's labels are its class
folders (e.g. CIFAR-10's train/ split), a generated dataset's the source image of each sample. Two recipes, one
per trunk (--arch):

* monogan (the paper's 32 px encoder), as RotNet's CIFAR-10 supervised baseline (gidariss/FeatureLearningRotNet,
  config/CIFAR10_supervised_NIN.py with dataloader.py's augmentation): random 32×32 crops of the images padded by
  4 black pixels, with flips; CIFAR-10's channel statistics; SGD with Nesterov momentum 0.9, weight decay 5e-4,
  batch 128, 200 epochs, learning rate 0.1 multiplied by 0.2 at epochs 60, 120 and 160. The trunk has no
  BatchNorm, unlike the original's network: at smaller batches scale the learning rate down with the batch
  (batch 16 diverged at 0.1 and trains at 0.01; docs/protocol.md).
* alexnet, as torchvision's ImageNet classification reference (references/classification, the learning rate
  it gives AlexNet): random 224×224 crops with flips (Krizhevsky et al. 2012); ImageNet's channel statistics;
  SGD with momentum 0.9, weight decay 1e-4, batch 256, 90 epochs, learning rate 0.01 divided by 10 every 30.

The classifier is linear on the trunk's last feature map, flattened (the 32 px trunk's is 512×1×1).

    mono-train supervised --arch monogan --data ../shared/datasets/cifar10/train --out runs/supervised-cifar10
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
  mono-train supervised --arch monogan --data ../shared/datasets/cifar10/train --out runs/supervised-cifar10
  mono-train supervised --arch monogan --data cifar10/train --out runs/sup --epochs 30 --lr-steps 10,20,25
  mono-train supervised --arch alexnet --data imagenet-folder/train --out runs/supervised-in
  mono-train plot runs/sup   # its curves from metrics.csv, as runs/sup/metrics.png
"""

# The two recipes: RotNet's config/CIFAR10_supervised_NIN.py for the 32 px trunk, torchvision's ImageNet
# reference for AlexNet.
DEFAULTS = {
    "alexnet": {
        "epochs": 90,
        "batch_size": 256,
        "lr": 0.01,
        "lr_steps": "30,60",
        "lr_decay": 0.1,
        "weight_decay": 1e-4,
        "crop": 224,
    },
    "monogan": {
        "epochs": 200,
        "batch_size": 128,
        "lr": 0.1,
        "lr_steps": "60,120,160",
        "lr_decay": 0.2,
        "weight_decay": 5e-4,
        "crop": 32,
    },
}
NESTEROV = {"alexnet": False, "monogan": True}
PADDING = {"alexnet": 0, "monogan": 4}  # black pixels around each image before the random crop
NORMALIZATION = {"alexnet": IMAGENET_NORMALIZATION, "monogan": CIFAR10_NORMALIZATION}


def get_args_parser():
    parser = utils.get_args_parser(
        "mono-train supervised",
        "Supervised baseline: the trunk and a linear classifier, cross-entropy on the dataset's labels.",
        epochs=utils.per_arch(DEFAULTS, "epochs"),
        batch_size=utils.per_arch(DEFAULTS, "batch_size"),
        lr=utils.per_arch(DEFAULTS, "lr"),
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("supervised")
    method.add_argument(
        "--arch",
        choices=list(DEFAULTS),
        default="monogan",
        help="the trunk: the paper's 32 px encoder with the CIFAR-10 recipe, or AlexNet-BN on 224 px crops "
        "(default monogan)",
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
    method.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help=f"SGD weight decay ({utils.default_help(utils.per_arch(DEFAULTS, 'weight_decay'))})",
    )
    utils.add_arch_args(method)
    method.add_argument("--log-every", type=int, default=50, help="steps between log rows (default 50)")
    return parser


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
    if dataset.num_classes < 2:
        raise utils.UserError(f"{args.data}: supervised training needs labels of 2 classes or more, the dataset has 1")
    dataset_sha256 = utils.dataset_sha256(dataset)
    checkpoint = utils.find_resume(args)  # None: a fresh run
    start_epoch, step = utils.resume_position(checkpoint, args.epochs, announce=processes.is_main)
    utils.fix_random_seeds(args.seed)
    run = utils.RunDir(
        args.out,
        vars(args),
        ["loss", "accuracy", "lr", "images_per_s"],
        method="supervised",
        dataset_sha256=dataset_sha256,
        enabled=processes.is_main,
        resume_step=step,
        save_every=args.save_every,
    )
    # The 32 px trunk sees the images at its size (shrunk by area averaging if larger), AlexNet as they are.
    side = utils.image_side(dataset, 32 if args.arch == "monogan" else None)
    utils.check_crop(args.crop, side, args.arch, args.data, PADDING[args.arch])

    # The model: the trunk that the probes evaluate, and a linear classifier on its last feature map.
    trunk = build_trunk(args.arch, **parse_arch_args(args.arch_args))
    channels, height, width = trunk.feature_shapes(args.crop)["output"]
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, dataset.num_classes))
    model = amp.to_device(nn.Sequential(trunk, classifier))
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        nesterov=NESTEROV[args.arch],
    )
    utils.restore(
        checkpoint,
        method="supervised",
        dataset_sha256=dataset_sha256,
        trunk=trunk,
        modules={"classifier": classifier},
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
    orientation = utils.Orientation("supervised", args, processes, amp, dataset, steps_per_epoch, start_epoch)
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
        for _, (images, labels, _) in zip(range(steps_per_epoch), loader):
            # Augmentation: random crops (of padded images for the 32 px trunk) with flips.
            if side and images.shape[-1] != side:
                images = utils.downscale(images, side)
            crops = utils.random_crop(images, args.crop, augment, flip=True, padding=PADDING[args.arch])
            inputs, targets = utils.normalize(crops, **NORMALIZATION[args.arch]), labels.long()
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
            modules={"classifier": classifier},
            optimizers={"sgd": optimizer},
            scaler=amp.scaler,
            state={"classes": list(dataset.class_names)},
        )
        run.log(epoch, step, **row)
        if processes.is_main and not args.quiet:
            print(
                f"supervised: epoch {epoch + 1}/{args.epochs} loss {row['loss']:.4f} training accuracy "
                f"{100 * row['accuracy']:.1f}% ({row['images_per_s']:,.0f} img/s{orientation.eta()})",
                file=sys.stderr,
            )
    run.close()
    orientation.finish()


def main(argv: Sequence[str] | None = None) -> None:
    train(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    utils.run(main, "mono-train supervised")
