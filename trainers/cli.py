"""mono-train: one entry point for the trainers; each is also runnable as `python -m mono.trainers.<method>`."""

from __future__ import annotations

import importlib
import sys

METHODS = {
    "rotnet": "RotNet (Gidaris et al. 2018): predict image rotations",
    "deepcluster": "DeepCluster (Caron et al. 2018): predict k-means clusters of the features",
    "bigan": "BiGAN (Donahue et al. 2017): adversarial feature learning",
    "monogan": "MonoGAN (Asano et al. 2020, section 4.2): WGAN-GP on 32 px data",
    "supervised": "the supervised baseline: trunk + linear classifier on a labelled dataset",
}
COMMANDS = {
    "sample": "write a grid of a GAN run's generated images (PNG)",
    "plot": "draw a run's curves from metrics.csv, and its probes' accuracy per epoch (PNG)",
}

USAGE = """usage: mono-train METHOD --data DIR -o RUN_DIR [options]
       mono-train sample RUN_DIR [-o grid.png]
       mono-train plot RUN_DIR [-o curves.png] [--probe PROBE_DIR]

Train a self-supervised method on a dataset directory (see shards/README.md). Every trainer is also
`python -m mono.trainers.METHOD` and runs under torchrun for several GPUs. `mono-train METHOD --help` lists
the method's options.

methods:
{methods}
other commands:
{commands}

examples:
  mono-train rotnet --data shards/ameyoko -o runs/rotnet-A      # the same command again continues the run
  mono-train monogan --data shards/animals32 -o runs/monogan-B -q && mono-train sample runs/monogan-B -o gan.png
"""


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {**METHODS, **COMMANDS}
    listing = lambda table: "\n".join(f"  {k:<12} {v}" for k, v in table.items())  # noqa: E731
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(methods=listing(METHODS), commands=listing(COMMANDS)))
        sys.exit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"mono-train: error: unknown method {name!r}; choose one of {', '.join(names)}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(f"mono.trainers.{name}")
    from mono.trainers import utils

    utils.run(module.main, f"mono-train {name}", rest)


if __name__ == "__main__":
    main()
