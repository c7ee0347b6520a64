"""Benchmark: the complete CIFAR-10 linear-probe protocol for a random-init ``monogan`` encoder.

Decodes the CIFAR-10 ImageFolder copy, computes the frozen features of all 60,000 images once, trains the four
probes jointly for 36 epochs on the cached features and evaluates every epoch; prints wall time, peak RSS and
per-stage times. Target (issue #4): <= 10 minutes on a 2-core CPU.

    python bench/bench_probes.py                      # full protocol, ../shared/datasets/cifar10
    python bench/bench_probes.py --epochs 2 --train-limit 5000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "cifar10"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CIFAR-10 ImageFolder root (train/, test/)")
    parser.add_argument("--epochs", type=int, default=36)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--val-limit", type=int)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, help="keep the run directory here (default: a temporary one)")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args()
    if not (args.data / "train").is_dir():
        sys.exit(f"bench_probes: CIFAR-10 copy not found at {args.data}")

    started = time.perf_counter()
    load_before = _load()
    import torch

    from mono.probes.data import DataSpec
    from mono.probes.linear import LinearConfig, run_linear
    from mono.probes.protocols import Schedule

    imported = time.perf_counter()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-probes-"))
    if args.out is None or not (out / "probe_state.pt").exists():
        shutil.rmtree(out, ignore_errors=True)
    cfg = LinearConfig(
        out=out,
        data=DataSpec(
            train=args.data / "train", val=args.data / "test", train_limit=args.train_limit, val_limit=args.val_limit
        ),
        arch="monogan",
        schedule=Schedule(epochs=args.epochs),
        workers=args.workers,
        threads=args.threads,
        progress=args.progress,
    )
    results = run_linear(cfg)
    finished = time.perf_counter()
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)

    stages = results["timing"]["stages_s"]
    data = results["dataset"]
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"machine          {results['environment']['cpu']}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.workers} loader workers"
    )
    print(f"load average     before {load_before}; after {_load()}")
    print(
        f"protocol         cifar, random-init monogan, {args.epochs} epochs, "
        f"{data['train_images']} train / {data['val_images']} val images"
    )
    print(f"wall time        {finished - imported:8.1f} s  (run_linear; {finished - started:.1f} s with imports)")
    print(f"peak RSS         {peak_self:8.0f} MiB main process, {peak_children:.0f} MiB largest loader worker")
    print(f"feature cache    {stages.get('feature_cache_mib', 0):8.0f} MiB (float16)")
    for stage, seconds in stages.items():
        if stage != "feature_cache_mib":
            print(f"  {stage:<14} {seconds:8.1f} s")
    print("top-1 (%)        " + ", ".join(f"{k} {v['top1']:.2f}" for k, v in results["layers"].items()))


if __name__ == "__main__":
    main()
