"""Training throughput: images/s per trainer and per loader format, and whether the model waits for data.

For each trainer and each on-disk format (FFCV, WebDataset, exported folder) it runs a short epoch
(--steps batches) and reads the training loop's images/s from the run's metrics.csv; it also times the
loader alone (read + decode + batch, no model) with the same settings. When the loader alone is much
faster than training, the accelerator is not data-starved.

    python bench/bench_training.py                       # CPU, small: 64 px crops of 72 px data, narrow heads
    python bench/bench_training.py --full --workers 12   # GPU, paper sizes: 224 px crops of 256 px data

Figures go to docs/benchmarks.md (with the device name).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FORMATS = ("ffcv", "webdataset", "folder")


def trainer_args(method: str, full: bool) -> list[str]:
    """Per-method options: the paper's sizes with --full, a CPU-sized variant otherwise."""
    if method == "monogan":
        return []
    if full:
        return {"deepcluster": ["--k", "1000"]}.get(method, [])
    small = {
        "rotnet": ["--crop", "64", "--head-width", "256"],
        "deepcluster": ["--crop", "64", "--head-width", "256", "--k", "32", "--pca", "32"],
        "bigan": ["--image-size", "72", "--crop", "64", "--gen-size", "32"],
    }
    return small.get(method, [])


def run(cmd: list[str], env: dict) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:6])}… failed:\n{result.stderr[-2000:]}")


def make_data(root: Path, size: int, samples: int, env: dict) -> Path:
    data = root / f"data-{size}"
    if not (data / "manifest.json").exists():
        image = REPO.parent / "shared" / "images" / "ameyoko.jpg"
        source = ["--image", str(image)] if image.exists() else []
        run(
            [
                sys.executable,
                "-m",
                "mono.generator.cli",
                *source,
                "--samples",
                str(samples),
                "--size",
                str(size),
                "--format",
                "both",
                "--quiet",
                "--out",
                str(data),
            ],
            env,
        )
        run(
            [
                sys.executable,
                "-m",
                "mono.generator.shards_cli",
                "export",
                str(data),
                "--to",
                "folder",
                str(root / f"folder-{size}"),
            ],
            env,
        )
    return data


def training_rate(method: str, data: str, fmt: str, args, env: dict, work: Path) -> float:
    out = work / f"run-{method}-{fmt}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        f"mono.trainers.{method}",
        "--data",
        data,
        "--out",
        str(out),
        "--epochs",
        "1",
        "--steps-per-epoch",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--workers",
        str(args.workers),
        "--quiet",
        *trainer_args(method, args.full),
    ]
    if fmt != "folder":
        cmd += ["--format", fmt]
    run(cmd, env)
    with open(out / "metrics.csv", newline="") as f:
        return float(list(csv.DictReader(f))[-1]["images_per_s"])


def loader_rate(data: str, fmt: str, args, env: dict) -> float:
    """Images/s of the loader alone: the ceiling the data pipeline puts on training.

    Measured in a fresh interpreter, so that one format's threads (FFCV's) are not alive when the next
    format's DataLoader forks its workers.
    """
    cmd = [
        sys.executable,
        __file__,
        "--measure-loader",
        data,
        fmt,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--workers",
        str(args.workers),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench: loader {fmt} on {data} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.split()[-1])


def measure_loader(data: str, fmt: str, args) -> float:
    from mono.learning.data import Loader, open_dataset

    dataset = open_dataset(data, format=None if fmt == "folder" else fmt)
    loader = Loader(dataset, args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True)
    loader.set_epoch(0)
    count, start, end = 0, None, None
    for i, (images, _, _) in enumerate(loader):
        if i == 1:
            start, count = time.perf_counter(), 0  # skip the first batch: worker start-up
        count += len(images)
        if i >= args.steps:
            end = time.perf_counter()  # before the loader winds down its workers or threads
            break
    return count / ((end or time.perf_counter()) - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="paper sizes (for a GPU machine)")
    parser.add_argument("--methods", default="rotnet,deepcluster,bigan,monogan")
    parser.add_argument("--steps", type=int, default=None, help="batches timed per run (default 8 small, 100 full)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 16 small, 256 full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=None, help="dataset size (default 1,000 small, 20,000 full)")
    parser.add_argument("--work", type=Path, default=None, help="keep datasets here between runs")
    parser.add_argument("--measure-loader", nargs=2, metavar=("DATA", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = args.steps or (100 if args.full else 8)
    args.batch_size = args.batch_size or (256 if args.full else 16)
    if args.measure_loader:
        print(measure_loader(*args.measure_loader, args))
        return
    samples = args.samples or (20_000 if args.full else 1_000)
    work = args.work or Path(tempfile.mkdtemp(prefix="mono-bench-train-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print(f"device: {device}; batch {args.batch_size}, {args.steps} steps, {args.workers} workers per process")
    big = make_data(work, 256 if args.full else 72, samples, env)
    small = make_data(work, 32, samples, env)
    print(f"{'trainer':<12} {'format':<11} {'train img/s':>12} {'loader img/s':>13}  data-starved?")
    for method in args.methods.split(","):
        data = small if method == "monogan" else big
        for fmt in FORMATS:
            location = str(data if fmt != "folder" else work / f"folder-{data.name.split('-')[1]}")
            train = training_rate(method, location, fmt, args, env, work)
            load = loader_rate(location, fmt, args, env)
            starved = "yes" if load < 1.2 * train else "no"
            print(f"{method:<12} {fmt:<11} {train:12,.1f} {load:13,.1f}  {starved}")


if __name__ == "__main__":
    main()
