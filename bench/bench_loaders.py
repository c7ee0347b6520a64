"""Loader benchmark: samples/s per core to read, decode and batch S=256 samples from WebDataset shards,
FFCV's train.beton and an exported folder: the same samples, read with mono.learning.data, in one run.

    python bench/bench_loaders.py                      # makes 5,000 samples of the paper's Image A, once
    python bench/bench_loaders.py --dataset DIR        # reuses a dataset (shards and train.beton)

"Per core" is samples per CPU-second: the user + system time of every process and thread that took
part (the main process, its threads, DataLoader workers, FFCV's threads), so it does not depend on
how many cores were free. Each figure is the median of --repeats epochs after one warm-up epoch
(which also compiles FFCV's pipeline and fills the page cache). A decode-only line (OpenCV, one
thread, no I/O) gives the ceiling that JPEG decoding puts on every format.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mono.learning.data import Loader, open_dataset

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished, reaped children (DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def epoch(dataset, batch: int, workers: int) -> tuple[int, float, float]:
    """(samples, wall seconds, CPU seconds) of one shuffled epoch with mono.learning.data."""
    loader = Loader(dataset, batch, shuffle=True, seed=0, num_workers=workers)
    loader.set_epoch(1)
    len(loader)  # plan the epoch before the clock starts, as a trainer's previous epoch would have
    return timed(loader)


def legacy_epoch(folder: Path, batch: int, workers: int) -> tuple[int, float, float]:
    """The same with what folder-reading code does by default: ImageFolder (PIL), DataLoader, collate."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    dataset = datasets.ImageFolder(str(folder), transform=transforms.PILToTensor())  # uint8, no float scaling
    return timed(
        DataLoader(dataset, batch, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(0))
    )


def timed(loader) -> tuple[int, float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), cpu_seconds()
    samples = 0
    for _, labels, *_ in loader:
        samples += len(labels)
    return samples, time.perf_counter() - wall, cpu_seconds() - cpu


def decode_only(root: Path, count: int) -> float:
    """Samples per CPU-second of OpenCV decoding JPEG bytes already in memory (the ceiling)."""
    import cv2
    import numpy as np

    from mono.learning.data.tar_reader import iter_samples

    cv2.setNumThreads(1)
    with open(next(root.glob("train-*.tar")), "rb") as f:
        jpegs = [jpeg for _, jpeg, _ in iter_samples(f, lambda i: True, "shard")][:count]
    cpu = cpu_seconds()
    for jpeg in jpegs:
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR_RGB)
    return len(jpegs) / (cpu_seconds() - cpu)


def gpu_decode(root: Path, batch: int, repeats: int) -> float | None:
    """Samples/s of torchvision's GPU JPEG decoder on batches of shard bytes, or None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    from torchvision.io import decode_jpeg

    from mono.learning.data.tar_reader import iter_samples

    with open(next(root.glob("train-*.tar")), "rb") as f:
        jpegs = [
            torch.frombuffer(bytearray(jpeg), dtype=torch.uint8)
            for _, jpeg, _ in iter_samples(f, lambda i: True, "shard")
        ]
    batches = [jpegs[k : k + batch] for k in range(0, len(jpegs) - batch + 1, batch)]
    decode_jpeg(batches[0], device="cuda")  # warm-up
    rates = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for b in batches:
            decode_jpeg(b, device="cuda")
        torch.cuda.synchronize()
        rates.append(len(batches) * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def ensure_data(args) -> tuple[Path, Path]:
    """The dataset (shards and train.beton) and its exported folder, made with the command-line tools."""
    root = Path(args.dataset) if args.dataset else Path(args.work) / f"a-{args.samples}-{args.size}"
    folder = Path(args.work) / f"{root.name}-folder"
    tool = [sys.executable, "-m"]
    env = dict(os.environ)
    if not args.dataset:
        image = args.image or str(REPO.parent / "shared" / "images" / "ameyoko.jpg")
        subprocess.run(
            [
                *tool,
                "mono.generator.cli",
                "--image",
                image,
                "--samples",
                str(args.samples),
                "--size",
                str(args.size),
                "--shard-size",
                "500",
                "--format",
                "both",
                "--out",
                str(root),
            ],
            check=True,
            env=env,
        )
    if not (root / "train.beton").exists():
        subprocess.run([*tool, "mono.generator.shards_cli", "export", str(root), "--to", "ffcv"], check=True, env=env)
    if not folder.exists():
        subprocess.run(
            [*tool, "mono.generator.shards_cli", "export", str(root), "--to", "folder", str(folder)],
            check=True,
            env=env,
        )
    return root, folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="an existing dataset directory (default: make one under --work)")
    parser.add_argument("--work", default=str(REPO / "shards" / "bench-loaders"), help="where data is made")
    parser.add_argument("--image", help="source image (default: the paper's Image A from ../shared/images)")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # as in DataLoader workers; the main process only copies FFCV's batches
    root, folder = ensure_data(args)
    sources = {"webdataset": root, "ffcv": root, "folder": folder, "ImageFolder": folder}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"# {root}: {open_dataset(root).num_samples:,} samples of {open_dataset(root).image_size} px, "
        f"batch {args.batch}"
    )
    print(f"{'reader':<24} {'workers':>7} {'samples/s':>10} {'per core':>9} {'CPU s':>7}")
    per_core: dict[tuple[str, int], float] = {}
    for workers in args.workers:
        for name, where in sources.items():
            if name == "ImageFolder":
                label, run = "torchvision ImageFolder", functools.partial(legacy_epoch, where, args.batch, workers)
            else:
                dataset = open_dataset(where, format=name)
                label, run = f"mono.learning.data {name}", functools.partial(epoch, dataset, args.batch, workers)
            run()  # warm-up
            runs = [run() for _ in range(args.repeats)]
            rate = statistics.median(n / wall for n, wall, _ in runs)
            per_core[name, workers] = statistics.median(n / cpu for n, _, cpu in runs)
            cpu = statistics.median(cpu for _, _, cpu in runs)
            print(f"{label:<24} {workers:>7} {rate:>10,.0f} {per_core[name, workers]:>9,.0f} {cpu:>7.2f}", flush=True)
    print(f"{'decode only (OpenCV)':<24} {1:>7} {'':>10} {decode_only(root, 2000):>9,.0f}")
    for workers in args.workers:
        ratio = {name: per_core[name, workers] / per_core["folder", workers] for name in sources}
        print(
            f"# per core, {workers} worker(s): WebDataset/folder {ratio['webdataset']:.2f} (target >= 1), "
            f"FFCV/folder {ratio['ffcv']:.2f} (target >= 2); "
            f"FFCV/ImageFolder {per_core['ffcv', workers] / per_core['ImageFolder', workers]:.2f}"
        )
    gpu = gpu_decode(root, args.batch, args.repeats)
    print("# GPU decoding (torchvision.io.decode_jpeg on cuda): " + (f"{gpu:,.0f} samples/s" if gpu else "no GPU here"))


if __name__ == "__main__":
    main()
