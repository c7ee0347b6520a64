"""How much compute a reproduction spends: the data size, the GAN's training length, the probes' epochs."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    samples: int  # d, the generated dataset's size
    gan_epochs: int  # MonoGAN epochs (one critic pass over the data each)
    gan_batch: int
    probe_epochs: int
    probe_train_limit: int | None  # CIFAR images used to train the probes (None: all)
    probe_val_limit: int | None
    description: str
    gan_options: tuple[str, ...] = ()  # further mono-train monogan options

    def to_dict(self) -> dict:
        return asdict(self)


BUDGETS = {
    # Seconds: checks that every step runs and the report is complete. Numbers mean nothing.
    "smoke": Budget(
        "smoke",
        256,
        1,
        16,
        1,
        300,
        100,
        "a few seconds per step; for tests",
        ("--steps-per-epoch", "4", "--gen-width", "16"),
    ),
    # Under an hour on a 2-core CPU: the full CIFAR-like dataset, a short GAN run, the full probe protocol.
    # About 0.4 s per critic step of 64 images on 2 cores: 6 epochs (4,686 critic steps, 937 generator
    # steps) take about 35 minutes, the two full probe runs about 13.
    "cpu": Budget("cpu", 50_000, 6, 64, 36, None, None, "under an hour on a 2-core CPU"),
    # The paper: WGAN-GP's 200,000 generator iterations (1,280 epochs of 50,000 images at batch 64).
    "paper": Budget("paper", 50_000, 1280, 64, 36, None, None, "the paper's schedule; a GPU and about a day"),
}
