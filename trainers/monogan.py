"""MonoGAN (Asano, Rupprecht & Vedaldi, ICLR 2020, section 4.2): a Wasserstein GAN with gradient penalty
(Gulrajani et al., NeurIPS 2017) on 32×32 images, whose critic is the paper's small `monogan` encoder.

The critic is the probed trunk (convolutions with kernels 7, 5, 3, 3 and strides 3, 2, 2, 1, no
normalisation, LeakyReLU 0.2) followed by one linear layer; the generator is DCGAN-style, as WGAN-GP's
CIFAR-10 script (igul222/improved_wgan_training, gan_cifar.py). The critic maximises
E[D(real)] − E[D(fake)] (the Wasserstein estimate) minus λ·E[(‖∇D(x̂)‖ − 1)²] at random interpolates x̂;
the generator maximises E[D(fake)]. WGAN-GP's settings: λ = 10, 5 critic steps per generator step,
z ~ N(0, 1)^128, batch 64, Adam with lr 1e-4 and β = (0.5, 0.9) as its gan_cifar.py (its paper's Algorithm 1
says β1 = 0; measured equal here, docs/results.md). No augmentation; images in [-1, 1].

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

from mono.learning.data import Loader
from mono.learning.models import GAN_NORMALIZATION, Generator, Trunk, build_trunk, parse_arch_args, wgan_gp_init
from mono.trainers import utils

EXAMPLES = """examples:
  mono-train monogan --data shards/ameyoko-32 --out runs/monogan-A
  mono-train monogan --data shards/ameyoko-32 --out runs/monogan-A   # again after an interruption: continues
  mono-train sample runs/monogan-A -o monogan-A.png
  mono-train plot runs/monogan-A   # its curves from metrics.csv, as runs/monogan-A/metrics.png
"""


def get_args_parser():
    parser = utils.get_args_parser(
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
    method.add_argument("--beta1", type=float, default=0.5, help="Adam β1 (default 0.5, WGAN-GP's gan_cifar.py)")
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


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator, weight: float = 10.0
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3): weight · E[(‖∇x̂ D(x̂)‖₂ − 1)²] at x̂ = real + α(fake − real),
    α ~ U(0, 1) per sample (drawn from `generator`). Differentiable with respect to the critic's weights.

    Computed in float32 even under autocast: it is a difference of gradient norms, then differentiated again.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    mixed = (real.detach().float() + alpha * (fake.detach().float() - real.detach().float())).requires_grad_(True)
    with torch.autocast(device_type=mixed.device.type, enabled=False):
        scores = critic(mixed)
        (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


def check_args(args, dataset_size: int | None) -> None:
    if dataset_size and dataset_size < args.image_size:
        raise utils.UserError(
            f"--image-size {args.image_size} is larger than the dataset's {dataset_size} px images; "
            f"use --image-size {dataset_size} or less"
        )
    if args.n_critic < 1 or args.latent_dim < 1 or args.gen_width < 1:
        raise utils.UserError("--n-critic, --latent-dim and --gen-width must be positive")
    if args.gp_lambda < 0:
        raise utils.UserError("--gp-lambda must not be negative")


def train(args) -> None:
    utils.check_args(args)
    processes = utils.init_distributed(args.device)
    device = processes.device
    amp = utils.MixedPrecision(device)
    if processes.is_main:
        utils.check_writable(args.out)
    dataset = utils.open_training_set(args.data, args.format)
    dataset_sha256 = utils.dataset_sha256(dataset)
    checkpoint = utils.find_resume(args)  # None: a fresh run
    start_epoch, step = utils.resume_position(checkpoint, args.epochs, announce=processes.is_main)  # critic steps
    utils.fix_random_seeds(args.seed)
    run = utils.RunDir(
        args.out,
        vars(args),
        ["critic_loss", "generator_loss", "wasserstein", "gradient_penalty", "generator_steps", "lr", "images_per_s"],
        method="monogan",
        dataset_sha256=dataset_sha256,
        enabled=processes.is_main,
        resume_step=step,
        save_every=args.save_every,
    )
    check_args(args, dataset.image_size)

    # The critic is the probed trunk (initialised its own way) and a linear score; the generator is DCGAN's.
    critic = Critic(build_trunk("monogan", **parse_arch_args(args.arch_args)), args.image_size)
    critic.head.apply(wgan_gp_init)
    generator = Generator(args.latent_dim, args.image_size, args.gen_width, prior="normal")
    generator.apply(wgan_gp_init)
    critic, generator = amp.to_device(critic), amp.to_device(generator)
    critic_parameters, generator_parameters = list(critic.parameters()), list(generator.parameters())
    betas = (args.beta1, args.beta2)
    optimizers = {
        "critic": torch.optim.Adam(critic_parameters, lr=args.lr, betas=betas),
        "generator": torch.optim.Adam(generator_parameters, lr=args.lr, betas=betas),
    }
    modules = {"critic_head": critic.head, "generator": generator}
    state = utils.restore(
        checkpoint,
        method="monogan",
        dataset_sha256=dataset_sha256,
        trunk=critic.trunk,
        modules=modules,
        optimizers=optimizers,
        scaler=amp.scaler,
    )
    generator_steps = int(state.get("generator_steps", 0))
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
    orientation = utils.Orientation("monogan", args, processes, amp, dataset, steps_per_epoch, start_epoch)
    orientation.header()

    for epoch in range(start_epoch, args.epochs):
        for optimizer in optimizers.values():
            utils.set_learning_rate(optimizer, args.lr)
        loader.set_epoch(epoch)
        noise = utils.seeded_generator(args.seed, processes.rank, epoch, 1)
        mixing = utils.seeded_generator(args.seed, processes.rank, epoch, 2)
        critic.train()
        generator.train()
        progress = utils.Progress(
            steps_per_epoch,
            f"epoch {epoch + 1}/{args.epochs}",
            enabled=processes.is_main and not args.quiet,
            clock=orientation,
        )
        metrics = utils.StepMetrics(device)
        for _, (images, _, _) in zip(range(steps_per_epoch), loader):
            if images.shape[-1] != args.image_size:
                images = utils.downscale(images, args.image_size)
            real = amp.inputs(utils.normalize(images, **GAN_NORMALIZATION))
            with torch.no_grad(), amp.autocast():
                fake = generator(generator.sample_latent(len(real), noise))
            with amp.autocast():
                scores = critic(torch.cat([real, fake.to(real.dtype)])).float()  # no BatchNorm: one pass for both
            wasserstein = scores[: len(real)].mean() - scores[len(real) :].mean()
            penalty = gradient_penalty(critic, real, fake, mixing, weight=args.gp_lambda)
            critic_loss = penalty - wasserstein
            step += 1  # this critic step's number, as metrics.csv counts
            metrics.add(step, critic_loss=critic_loss, wasserstein=wasserstein, gradient_penalty=penalty)

            # The critic steps on its own parameters' gradients (the penalty's interpolates are inputs, not weights);
            # DistributedDataParallel does not fit a penalty that differentiates gradients: they are averaged here.
            optimizers["critic"].zero_grad(set_to_none=True)
            amp.scaler.scale(critic_loss).backward(inputs=critic_parameters)
            utils.all_reduce_gradients(critic_parameters)
            amp.scaler.step(optimizers["critic"])
            amp.scaler.update()

            if step % args.n_critic == 0:  # one generator step per --n-critic critic steps
                with amp.autocast():
                    generator_loss = -critic(generator(generator.sample_latent(len(real), noise))).float().mean()
                metrics.add(step, generator_loss=generator_loss)

                optimizers["generator"].zero_grad(set_to_none=True)
                amp.scaler.scale(generator_loss).backward(inputs=generator_parameters)  # none left on the critic
                utils.all_reduce_gradients(generator_parameters)
                amp.scaler.step(optimizers["generator"])
                amp.scaler.update()
                generator_steps += 1

            if step % args.log_every == 0:  # the only synchronisation with the device inside an epoch
                values = metrics.latest(step, epoch, args.out)
                progress.update(len(images), W=values["wasserstein"], gp=values["gradient_penalty"])
                run.log(
                    epoch,
                    step,
                    **values,
                    generator_steps=generator_steps,
                    lr=args.lr,
                    images_per_s=progress.images_per_second,
                )
            else:
                progress.update(len(images))
        progress.close()

        summary = metrics.means(epoch, args.out)
        row = {**summary, "generator_steps": generator_steps, "lr": args.lr, "images_per_s": progress.images_per_second}
        # The checkpoint first, then the epoch's row: a row is only written for an epoch that is safely on disk.
        run.save(
            epoch + 1,
            step,
            trunk=critic.trunk,
            normalization=GAN_NORMALIZATION,
            modules=modules,
            optimizers=optimizers,
            scaler=amp.scaler,
            state={"generator_steps": generator_steps},
        )
        run.log(epoch, step, **row)
        if processes.is_main and not args.quiet and summary:
            print(
                f"monogan: epoch {epoch + 1}/{args.epochs} Wasserstein estimate {summary['wasserstein']:.4f}, "
                f"gradient penalty {summary['gradient_penalty']:.4f}, {generator_steps} generator steps "
                f"({row['images_per_s']:,.0f} img/s{orientation.eta()})",
                file=sys.stderr,
            )
    run.close()
    orientation.finish()


def main(argv: Sequence[str] | None = None) -> None:
    train(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    utils.run(main, "mono-train monogan")
