"""How much compute a reproduction spends: the data size, the GAN's training length, the probes' epochs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    # The paper's Table 3 (--table 3): every method is shown the same number of training images (None: each
    # trainer's own schedule), in batches of table3_batch (None: each trainer's default), with further options.
    table3_images: int | None = None
    table3_batch: int | None = None
    table3_options: dict[str, tuple] = field(default_factory=dict)

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
        table3_images=64,
        table3_batch=16,
        table3_options={
            "deepcluster": ("--k", "8", "--pca", "16"),
            "monogan": ("--gen-width", "16"),
            "supervised": ("--lr", "0.01"),  # its 0.1 is for batch 128; at 16 it diverges (docs/protocol.md)
        },
    ),
    # About 20 minutes on a 2-core CPU: the full CIFAR-like dataset, the full probe protocol, and the MonoGAN run with
    # the most gain over random per CPU-hour at conv1 and conv2 on the measured learning curve (docs/results.md,
    # "MonoGAN's learning curve"): 1 epoch (781 critic steps, 156 generator steps) at lr 3e-4, about 5 minutes.
    # Table 3: 100,000 training images per method (2 passes over CIFAR-10's 50,000 or Image B's 50,000 samples);
    # MonoGAN and the GAN at a learning rate of 3e-4 with Adam beta1 0.5 (docs/results.md, "A MonoGAN recipe for
    # a CPU": at a short schedule the paper's 1e-4 leaves the critic below random).
    # Estimate: RotNet costs 0.0035 CPU-seconds per image and MonoGAN 0.0054 (measured on a loaded 2-core machine:
    # `mono-train rotnet --arch monogan --data cifar10/train --epochs 1 --steps-per-epoch 2|12 --batch-size 128
    # --workers 0`, and monogan with 5|30 steps of 64, the difference of their user times), so the 7 training runs
    # take under 45 CPU-minutes; the 8 probes about 50 minutes (6.5 each, as above); at most 3 h in all.
    # Measured (docs/results.md, "The paper's Table 3 at CPU scale"): training 104-361 s per row, probes about
    # 3 minutes each, about 50 minutes in all on a free 2-core machine.
    "cpu": Budget(
        "cpu",
        50_000,
        1,
        64,
        36,
        None,
        None,
        "about 20 minutes on a 2-core CPU (Table 3: about 50 minutes)",
        ("--lr", "3e-4"),
        table3_images=100_000,
        table3_options={"monogan": ("--lr", "3e-4", "--beta1", "0.5")},
    ),
    # One GPU session (issue 13): the full dataset and probe protocol; the GAN's length is planned from a measured
    # throughput so that everything fits in about 9 minutes (bench/gpu_run.sh passes --gan-epochs). 64 epochs
    # (10,000 generator steps) is the fallback when no plan is given.
    "gpu": Budget(
        "gpu",
        50_000,
        64,
        64,
        36,
        None,
        None,
        "one short GPU session: as many generator steps as fit (bench/gpu_run.sh plans them)",
        ("--lr", "3e-4", "--log-every", "500"),
    ),
    # The paper: WGAN-GP's 200,000 generator iterations (1,280 epochs of 50,000 images at batch 64).
    # Table 3: each trainer's own schedule (RotNet and supervised 200 epochs, DeepCluster 200, MonoGAN 1280).
    "paper": Budget("paper", 50_000, 1280, 64, 36, None, None, "the paper's schedule; a GPU and about a day"),
}
