"""MonoGAN (Asano, Rupprecht & Vedaldi, ICLR 2020, section 4.2): a Wasserstein GAN with gradient penalty
(Gulrajani et al., NeurIPS 2017) on 32×32 images, whose critic is the paper's small `monogan` encoder.

The critic is the probed trunk (convolutions with kernels 7, 5, 3, 3 and strides 3, 2, 2, 1, no
normalisation, LeakyReLU 0.2) followed by one linear layer; the generator is DCGAN-style, as WGAN-GP's
CIFAR-10 script (igul222/improved_wgan_training, gan_cifar.py). The critic maximises
E[D(real)] − E[D(fake)] (the Wasserstein estimate) minus λ·E[(‖∇D(x̂)‖ − 1)²] at random interpolates x̂;
the generator maximises E[D(fake)]. WGAN-GP's settings: λ = 10, 5 critic steps per generator step,
z ~ N(0, 1)^128, batch 64, Adam with lr 1e-4 and β = (0, 0.9). No augmentation; images in [-1, 1].

An epoch is one pass of the critic over the dataset: d/B critic steps and d/(5B) generator steps. The
default 1280 epochs of a 50,000-image dataset are WGAN-GP's 200,000 generator iterations.

    mono-train monogan --data shards/ameyoko-32 --out runs/monogan-A
    mono-train sample runs/monogan-A       # a grid of the generator's images
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from torch import nn

from learning.errors import UserError
from learning.models import GAN_NORMALIZATION, Generator, Trunk, build_trunk, parse_arch_args
from learning.schedules import set_learning_rate
from trainers.common.options import run_main, run_trainer, trainer_parser
from trainers.common.runlog import Means
from trainers.common.session import Session
from trainers.gan import gradient_penalty, simultaneous_update, tflib_init
from trainers.utils import downscale, normalize

EXAMPLES = """examples:
  mono-train monogan --data shards/ameyoko-32 --out runs/monogan-A
  mono-train monogan --data shards/ameyoko-32 --out runs/monogan-A --resume
  mono-train sample runs/monogan-A -o monogan-A.png
"""


def get_args_parser():
    parser = trainer_parser(
        "mono-train monogan",
        "MonoGAN: WGAN-GP whose critic is the paper's small 32 px encoder.\n"
        "An epoch is one pass of the critic over the data (--steps-per-epoch counts critic steps);\n"
        "the default 1280 epochs of 50,000 images are WGAN-GP's 200,000 generator steps.",
        epochs=1280,
        batch_size=64,
        lr=1e-4,
        examples=EXAMPLES,
    )
    method = parser.add_argument_group("MonoGAN (WGAN-GP)")
    method.add_argument(
        "--image-size",
        type=int,
        default=32,
        help="side of the images, shrunk by area averaging if the dataset's are larger (default 32)",
    )
    method.add_argument("--latent-dim", type=int, default=128, help="dimension of z ~ N(0, 1)^d (default 128)")
    method.add_argument(
        "--gen-width",
        type=int,
        default=64,
        help="width of the generator's last hidden layer, WGAN-GP's DIM (default 64)",
    )
    method.add_argument("--n-critic", type=int, default=5, help="critic steps per generator step (default 5)")
    method.add_argument("--gp-lambda", type=float, default=10.0, help="weight λ of the gradient penalty (default 10)")
    method.add_argument("--beta1", type=float, default=0.0, help="Adam β1 (default 0)")
    method.add_argument("--beta2", type=float, default=0.9, help="Adam β2 (default 0.9)")
    method.add_argument("--log-every", type=int, default=50, help="critic steps between log rows (default 50)")
    method.add_argument(
        "--arch-args",
        default="",
        metavar="'KEY=VALUE ...'",
        help="the critic trunk's arguments other than the defaults, e.g. 'activation=relu init=torch' "
        "(widths, padding, activation, init; docs/probes.md)",
    )
    return parser


class Critic(nn.Module):
    """The probed trunk, flattened, then one linear layer to a real-valued score (no sigmoid: a WGAN critic)."""

    def __init__(self, trunk: Trunk, image_size: int):
        super().__init__()
        channels, height, width = trunk.feature_shapes(image_size)["output"]
        self.trunk = trunk
        self.head = nn.Linear(channels * height * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x).flatten(1)).squeeze(1)


def check_args(args, dataset_size: int | None) -> None:
    if dataset_size and dataset_size < args.image_size:
        raise UserError(f"--image-size {args.image_size} is larger than the dataset's {dataset_size} px images")
    if args.n_critic < 1 or args.latent_dim < 1 or args.gen_width < 1:
        raise UserError("--n-critic, --latent-dim and --gen-width must be positive")
    if args.gp_lambda < 0:
        raise UserError("--gp-lambda must not be negative")


def train(args) -> None:
    session = Session(
        args,
        "monogan",
        metrics=[
            "critic_loss",
            "generator_loss",
            "wasserstein",
            "gradient_penalty",
            "generator_steps",
            "lr",
            "images_per_s",
        ],
    )
    check_args(args, session.dataset.image_size)
    critic = Critic(build_trunk("monogan", **parse_arch_args(args.arch_args)), args.image_size)  # init: its own
    critic.head.apply(tflib_init)
    generator = Generator(args.latent_dim, args.image_size, args.gen_width, prior="normal")
    generator.apply(tflib_init)
    critic, generator = session.precision.prepare(critic), session.precision.prepare(generator)
    betas = (args.beta1, args.beta2)
    optimizers = {
        "critic": torch.optim.Adam(critic.parameters(), lr=args.lr, betas=betas),
        "generator": torch.optim.Adam(generator.parameters(), lr=args.lr, betas=betas),
    }
    modules = {"critic_head": critic.head, "generator": generator}
    state = session.restore(trunk=critic.trunk, modules=modules, optimizers=optimizers, scaler=session.precision.scaler)
    generator_steps = int(state.get("generator_steps", 0))
    loader = session.loader()
    step = session.resume_step  # critic steps

    for epoch in range(session.start_epoch, args.epochs):
        for optimizer in optimizers.values():
            set_learning_rate(optimizer, args.lr)
        loader.set_epoch(epoch)
        noise, mixing = session.generator(epoch, 1), session.generator(epoch, 2)
        critic.train()
        generator.train()
        total = session.steps(loader)
        progress = session.progress(total, epoch)
        means = Means()
        for _, (images, _, _) in zip(range(total), loader):
            if images.shape[-1] != args.image_size:
                images = downscale(images, args.image_size)
            real = session.precision.inputs(normalize(images, **GAN_NORMALIZATION))
            with torch.no_grad(), session.precision.autocast():
                fake = generator(generator.sample_latent(len(real), noise))
            with session.precision.autocast():
                scores = critic(torch.cat([real, fake.to(real.dtype)])).float()  # no BatchNorm: one pass for both
            wasserstein = scores[: len(real)].mean() - scores[len(real) :].mean()
            penalty = gradient_penalty(critic, real, fake, mixing, weight=args.gp_lambda)
            critic_loss = penalty - wasserstein
            step += 1  # this critic step's number, as metrics.csv counts
            values = session.check_finite(
                step, critic_loss=critic_loss, wasserstein=wasserstein, gradient_penalty=penalty
            )
            simultaneous_update(session.precision, (critic_loss, optimizers["critic"]))
            if step % args.n_critic == 0:
                with session.precision.autocast():
                    generator_loss = -critic(generator(generator.sample_latent(len(real), noise))).float().mean()
                values.update(session.check_finite(step, generator_loss=generator_loss))
                simultaneous_update(session.precision, (generator_loss, optimizers["generator"]))
                generator_steps += 1
            means.add(**values)
            progress.update(len(images), W=values["wasserstein"], gp=values["gradient_penalty"])
            if step % args.log_every == 0:
                session.log.log(
                    epoch,
                    step,
                    **values,
                    generator_steps=generator_steps,
                    lr=args.lr,
                    images_per_s=progress.images_per_second,
                )
        progress.close()
        summary = means.means()
        row = {**summary, "generator_steps": generator_steps, "lr": args.lr, "images_per_s": progress.images_per_second}
        session.end_epoch(
            epoch,
            step,
            row,
            trunk=critic.trunk,
            normalization=GAN_NORMALIZATION,
            modules=modules,
            optimizers=optimizers,
            state={"generator_steps": generator_steps},
        )
        if session.dist.is_main and not args.quiet and summary:
            print(
                f"monogan: epoch {epoch + 1}/{args.epochs} Wasserstein estimate {summary['wasserstein']:.4f}, "
                f"gradient penalty {summary['gradient_penalty']:.4f}, {generator_steps} generator steps "
                f"({progress.images_per_second:,.0f} img/s)",
                file=sys.stderr,
            )
    session.close()


def main(argv: Sequence[str] | None = None) -> None:
    run_trainer(get_args_parser, train, argv)


if __name__ == "__main__":
    run_main(main, None, "mono-train monogan")
