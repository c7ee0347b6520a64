"""BiGAN (Donahue, Krähenbühl & Darrell, ICLR 2017): learn an encoder E that inverts a generator G.

A joint discriminator D(x, z) tells pairs (x, E(x)) of a real image and its code from pairs (G(z), z) of a
generated image and the noise it came from; E and G learn together to fool it, which drives E towards G's
inverse. E is the probed AlexNet-BN trunk with LeakyReLU followed by a linear map of its conv5 activations
to z. This is the "generalized" BiGAN of the paper's ImageNet experiments (jeffdonahue/bigan,
train_imagenet_highres_encoder.sh): E sees 112×112 random crops (flipped with p = ½) of 128 px images,
while G makes, and D compares, 64 px images: the crop shrunk to 64. z ~ U(-1, 1)^200. Optimisation as the
original's `train_gan.py`: Adam with lr 2e-4, β = (0.5, 0.999), L2 weight decay 2.5e-5 (not on
BatchNorm scales), batch 128, D and (E, G) updated simultaneously on the same batch, 100 epochs: 50 at the
full rate, then 50 with the rate decayed exponentially to 1% of it. Every choice and its source: docs/protocol.md.

    mono-train bigan --data shards/ameyoko --out runs/bigan-A
    torchrun --nproc-per-node=8 -m mono.trainers.bigan --data shards/ameyoko --out runs/bigan-A
    mono-train sample runs/bigan-A        # a grid of G's images
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mono.learning.data import Loader
from mono.learning.models import GAN_NORMALIZATION, LEAKY_RELU_SLOPE, Generator, Trunk, build_trunk, parse_arch_args
from mono.trainers import utils

EXAMPLES = """examples:
  mono-train bigan --data shards/ameyoko --out runs/bigan-A
  torchrun --nproc-per-node=8 -m mono.trainers.bigan --data shards/ameyoko --out runs/bigan-A
  mono-train bigan --data shards/ameyoko --out runs/bigan-A --epochs 200   # again, longer: continues
  mono-train sample runs/bigan-A -o bigan-A.png
  mono-train bigan --arch monogan --data shards/animals32 --out runs/bigan-B   # the paper's 32 px encoder
  mono-train plot runs/bigan-A   # its curves from metrics.csv, as runs/bigan-A/metrics.png
"""

# The images each trunk sees: AlexNet as the original (112 px crops of 128 px images, 64 px for G and D); the
# 32 px encoder the whole 32 px image (mirrored with p = 1/2), which G makes and D judges at the same size.
DEFAULTS = {
    "alexnet": {"image_size": 128, "crop": 112, "gen_size": 64},
    "monogan": {"image_size": 32, "crop": 32, "gen_size": 32},
}
ENCODER_LAYER = {"alexnet": "conv5", "monogan": "conv4"}
"""The trunk's last convolution, before any pooling: the original's encoder ends at conv5."""

LATENT_PROJECTION_STD = 0.02 * 5**2
"""The original scales the init of z's per-layer projections by the layer's kernel area (net.py apply_cond)."""


def get_args_parser():
    parser = utils.get_args_parser(
        "mono-train bigan",
        "BiGAN: an encoder learns to invert a generator, judged by a joint discriminator D(x, z).",
        epochs=100,
        batch_size=128,
        lr=2e-4,
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("BiGAN")
    method.add_argument(
        "--arch",
        choices=list(DEFAULTS),
        default="alexnet",
        help="the encoder's trunk: AlexNet (LeakyReLU) or the paper's 32 px encoder (default alexnet)",
    )
    method.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side the dataset's images are shrunk to (area averaging) before cropping "
        f"({utils.default_help(utils.per_arch(DEFAULTS, 'image_size'))})",
    )
    method.add_argument(
        "--crop",
        type=int,
        default=None,
        help=f"side of the encoder's random crops ({utils.default_help(utils.per_arch(DEFAULTS, 'crop'))})",
    )
    method.add_argument(
        "--gen-size",
        type=int,
        default=None,
        help="side of the generated images, and of the crops as D sees them "
        f"({utils.default_help(utils.per_arch(DEFAULTS, 'gen_size'))})",
    )
    utils.add_arch_args(method)
    method.add_argument("--latent-dim", type=int, default=200, help="dimension of z ~ U(-1, 1)^d (default 200)")
    method.add_argument(
        "--gen-width",
        type=int,
        default=64,
        help="width of the generator's last hidden layer; it doubles towards z (default 64)",
    )
    method.add_argument(
        "--disc-width",
        type=int,
        default=64,
        help="width of the discriminator's first layer; it doubles per layer (default 64)",
    )
    method.add_argument("--beta1", type=float, default=0.5, help="Adam β1 (default 0.5)")
    method.add_argument("--beta2", type=float, default=0.999, help="Adam β2 (default 0.999)")
    method.add_argument(
        "--weight-decay", type=float, default=2.5e-5, help="L2 weight decay, not on BatchNorm scales (default 2.5e-5)"
    )
    method.add_argument(
        "--decay-epochs",
        type=int,
        default=None,
        help="final epochs over which the rate decays exponentially (default: half of --epochs)",
    )
    method.add_argument(
        "--final-lr-mult", type=float, default=0.01, help="rate of the last epoch, as a fraction of --lr (default 0.01)"
    )
    method.add_argument("--log-every", type=int, default=50, help="steps between log rows (default 50)")
    return parser


class Encoder(nn.Module):
    """E(x): the probed trunk, then a linear map (no bias) of its last convolution's activations to z in (-1, 1).

    For AlexNet that is conv5, before its last max-pool: the original's encoder ends at conv5. The output is
    2·sigmoid − 1, the original's map of the encoder's logits onto the uniform prior's support.
    """

    def __init__(self, trunk: Trunk, crop: int, latent_dim: int):
        super().__init__()
        self.layer = ENCODER_LAYER[trunk.arch]
        channels, height, width = trunk.feature_shapes(crop)[self.layer]
        self.trunk = trunk
        self.to_latent = nn.Linear(channels * height * width, latent_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.trunk.forward_features(x, upto=self.layer)[self.layer]
        return 2 * torch.sigmoid(self.to_latent(features.flatten(1))) - 1


class JointDiscriminator(nn.Module):
    """D(x, z) -> a logit: four 5×5 stride-2 convolutions on x with LeakyReLU(0.2) (DCGAN's discriminator,
    the original's `convnet_64`), BatchNorm after all but the first; z joins every layer after the first as
    a learned linear projection added before the BatchNorm; a linear layer maps the last map to the logit."""

    arch = "bigan_joint_discriminator"

    def __init__(self, latent_dim: int, image_size: int, width: int = 64):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise utils.UserError(
                f"the discriminator halves its input four times: --gen-size must be a multiple of 16, not {image_size}"
            )
        self.arch_args = {"latent_dim": latent_dim, "image_size": image_size, "width": width}
        widths = [width * 2**i for i in range(4)]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 5, stride=2, padding=2, bias=False) for a, b in zip([3] + widths, widths)
        )
        self.latent_biases = nn.ModuleList(nn.Linear(latent_dim, w, bias=False) for w in widths[1:])
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths[1:])
        self.logit = nn.Linear(widths[-1] * (image_size // 16) ** 2, 1, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.convs[0](x), LEAKY_RELU_SLOPE)
        for conv, to_bias, norm in zip(self.convs[1:], self.latent_biases, self.norms):
            h = F.leaky_relu(norm(conv(h) + to_bias(z)[:, :, None, None]), LEAKY_RELU_SLOPE)
        return self.logit(h.flatten(1)).squeeze(1)


@torch.no_grad()
def normal_init(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN's initialisation: weights N(0, std), biases 0, BatchNorm at identity (apply with Module.apply)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def initialise(encoder: Encoder, generator: Generator, discriminator: JointDiscriminator) -> None:
    """The original's initialisation (jeffdonahue/bigan net.py, gan.py): every weight N(0, 0.02), BatchNorm at
    identity; z's per-layer projections N(0, 0.5); the discriminator's output layer at zero (D starts at ½)."""
    for module in (encoder, generator, discriminator):
        module.apply(normal_init)
    with torch.no_grad():
        for projection in [*generator.latent_biases, *discriminator.latent_biases]:
            projection.weight.normal_(0.0, LATENT_PROJECTION_STD)
        discriminator.logit.weight.zero_()


def adam(modules: Sequence[nn.Module], args) -> torch.optim.Adam:
    """Adam with the original's coupled L2 decay (added to the gradient, as torch's weight_decay), which
    skips BatchNorm scales (`--no_decay_gain`) but not biases."""
    scales = [
        m.weight for module in modules for m in module.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))
    ]
    scale_ids = {id(p) for p in scales}
    rest = [p for module in modules for p in module.parameters() if id(p) not in scale_ids]
    groups = [{"params": rest, "weight_decay": args.weight_decay}, {"params": scales, "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=args.lr, betas=(args.beta1, args.beta2))


def views(images: torch.Tensor, args, augment: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's view of a batch (a random --crop of the --image-size image, mirrored with p = ½) and
    the discriminator's (that crop shrunk to --gen-size by area averaging), both in [-1, 1]."""
    if images.shape[-1] != args.image_size:
        images = utils.downscale(images, args.image_size)
    crops = utils.random_crop(images, args.crop, augment, flip=True)
    small = crops if args.gen_size == args.crop else utils.downscale(crops, args.gen_size)
    return utils.normalize(crops, **GAN_NORMALIZATION), utils.normalize(small, **GAN_NORMALIZATION)


def losses(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D's loss, E and G's loss) from D's logits on (x, E(x)) and (G(z), z) pairs: D learns real -> 1,
    generated -> 0; E and G learn the same with the labels swapped (the original's non-saturating "opp"
    losses). Each loss averages its two halves."""
    d_loss = (F.softplus(-real).mean() + F.softplus(fake).mean()) / 2
    eg_loss = (F.softplus(real).mean() + F.softplus(-fake).mean()) / 2
    return d_loss, eg_loss


def update_both(scaler: torch.amp.GradScaler, *updates: tuple[torch.Tensor, torch.optim.Optimizer]) -> None:
    """The original's simultaneous update (train_gan.py `update_both`, k = 1): each optimiser steps on the
    gradient of its own loss with respect to its own parameters only, every gradient taken before any step.

    So D's loss leaves no gradient on E and G, nor theirs on D; the gradients are averaged over ranks
    (DistributedDataParallel does not fit a game of several players).
    """
    for _, optimizer in updates:
        optimizer.zero_grad(set_to_none=True)
    for i, (loss, optimizer) in enumerate(updates):
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        scaler.scale(loss).backward(inputs=parameters, retain_graph=i < len(updates) - 1)
        utils.all_reduce_gradients(parameters)
    for _, optimizer in updates:
        scaler.step(optimizer)
    scaler.update()


def learning_rate(args, epoch: int) -> float:
    """Constant, then over the last --decay-epochs exponentially down to --final-lr-mult of it, reached in
    the last epoch (train_gan.py set_lr)."""
    decay = args.epochs // 2 if args.decay_epochs is None else args.decay_epochs
    start = args.epochs - decay
    if epoch < start:
        return args.lr
    return args.lr * args.final_lr_mult ** ((epoch - start + 1) / decay)


def check_args(args, dataset_size: int | None) -> None:
    if dataset_size and dataset_size < args.image_size:
        crop = max(dataset_size * 7 // 8, min(utils.ALEXNET_SMALLEST, dataset_size))  # 112 of 128, as the defaults
        if args.arch == "alexnet" and dataset_size < utils.ALEXNET_SMALLEST:
            advice = f"alexnet needs at least {utils.ALEXNET_SMALLEST} px: use --arch monogan for such small images"
        else:
            advice = f"use --image-size {dataset_size} --crop {crop} (and --gen-size at most the crop)"
        raise utils.UserError(
            f"--image-size {args.image_size} is larger than the dataset's {dataset_size} px images; {advice}"
        )
    if not args.gen_size <= args.crop <= args.image_size:
        raise utils.UserError(
            f"need --gen-size <= --crop <= --image-size, got {args.gen_size}, {args.crop}, {args.image_size}"
        )
    if args.latent_dim < 1 or args.gen_width < 1 or args.disc_width < 1:
        raise utils.UserError("--latent-dim, --gen-width and --disc-width must be positive")
    if not 0 <= (args.decay_epochs or 0) <= args.epochs or not 0 < args.final_lr_mult <= 1:
        raise utils.UserError("need 0 <= --decay-epochs <= --epochs and 0 < --final-lr-mult <= 1")


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
        ["discriminator_loss", "encoder_generator_loss", "d_real", "d_fake", "lr", "images_per_s"],
        method="bigan",
        dataset_sha256=dataset_sha256,
        enabled=processes.is_main,
        resume_step=step,
        save_every=args.save_every,
    )
    check_args(args, dataset.image_size)

    # The three players: the encoder E (the probed trunk), the generator G and the joint discriminator D.
    # alexnet: RGB (no Sobel layer), LeakyReLU as the original; monogan: its calibrated defaults; --arch-args
    trunk_args = {"sobel": False, "activation": "leaky_relu"} if args.arch == "alexnet" else {}
    trunk = build_trunk(args.arch, **{**trunk_args, **parse_arch_args(args.arch_args)})
    encoder = Encoder(trunk, args.crop, args.latent_dim)
    generator = Generator(args.latent_dim, args.gen_size, args.gen_width, prior="uniform", latent_skip=True)
    discriminator = JointDiscriminator(args.latent_dim, args.gen_size, args.disc_width)
    initialise(encoder, generator, discriminator)
    encoder, generator, discriminator = (amp.to_device(m) for m in (encoder, generator, discriminator))
    optimizers = {"discriminator": adam([discriminator], args), "encoder_generator": adam([encoder, generator], args)}
    modules = {"encoder_head": encoder.to_latent, "generator": generator, "discriminator": discriminator}
    utils.restore(
        checkpoint,
        method="bigan",
        dataset_sha256=dataset_sha256,
        trunk=trunk,
        modules=modules,
        optimizers=optimizers,
        scaler=amp.scaler,
    )
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
    orientation = utils.Orientation("bigan", args, processes, amp, dataset, steps_per_epoch, start_epoch)
    orientation.header()

    for epoch in range(start_epoch, args.epochs):
        lr = learning_rate(args, epoch)
        for optimizer in optimizers.values():
            utils.set_learning_rate(optimizer, lr)
        loader.set_epoch(epoch)
        augment = utils.seeded_generator(args.seed, processes.rank, epoch, 0)
        noise = utils.seeded_generator(args.seed, processes.rank, epoch, 1)
        for module in (encoder, generator, discriminator):
            module.train()
        progress = utils.Progress(
            steps_per_epoch,
            f"epoch {epoch + 1}/{args.epochs}",
            enabled=processes.is_main and not args.quiet,
            clock=orientation,
        )
        metrics = utils.StepMetrics(device)
        for _, (images, _, _) in zip(range(steps_per_epoch), loader):
            x, x_small = (amp.inputs(v) for v in views(images, args, augment))
            z = generator.sample_latent(len(images), noise)
            with amp.autocast():
                real = discriminator(x_small, encoder(x)).float()
                fake = discriminator(generator(z), z).float()
            d_loss, eg_loss = losses(real, fake)
            step += 1  # this step's number, as metrics.csv counts
            metrics.add(
                step,
                discriminator_loss=d_loss,
                encoder_generator_loss=eg_loss,
                d_real=torch.sigmoid(real).mean(),
                d_fake=torch.sigmoid(fake).mean(),
            )

            update_both(amp.scaler, (d_loss, optimizers["discriminator"]), (eg_loss, optimizers["encoder_generator"]))

            if step % args.log_every == 0:  # the only synchronisation with the device inside an epoch
                values = metrics.latest(step, epoch, args.out)
                progress.update(len(images), d=values["discriminator_loss"], eg=values["encoder_generator_loss"])
                run.log(epoch, step, **values, lr=lr, images_per_s=progress.images_per_second)
            else:
                progress.update(len(images))
        progress.close()

        summary = metrics.means(epoch, args.out)
        row = {**summary, "lr": lr, "images_per_s": progress.images_per_second}
        # The checkpoint first, then the epoch's row: a row is only written for an epoch that is safely on disk.
        run.save(
            epoch + 1,
            step,
            trunk=trunk,
            normalization=GAN_NORMALIZATION,
            modules=modules,
            optimizers=optimizers,
            scaler=amp.scaler,
        )
        run.log(epoch, step, **row)
        if processes.is_main and not args.quiet and summary:
            print(
                f"bigan: epoch {epoch + 1}/{args.epochs} D loss {summary['discriminator_loss']:.4f}, "
                f"E+G loss {summary['encoder_generator_loss']:.4f}, D(real) {summary['d_real']:.3f}, "
                f"D(fake) {summary['d_fake']:.3f} ({row['images_per_s']:,.0f} img/s{orientation.eta()})",
                file=sys.stderr,
            )
    run.close()
    orientation.finish()


def main(argv: Sequence[str] | None = None) -> None:
    train(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    utils.run(main, "mono-train bigan")
