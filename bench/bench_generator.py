"""Generator speed and memory: samples/s per core, cost relative to JPEG encoding, full-run estimate.

Prints, in one run on this machine:
  * samples/s per core at S=256 (quality 90) and at S=32 (CPU time of the whole pipeline in-process:
    parameters, warp, colour, JPEG, tar records, hashing, writing);
  * at S=256, the ratio of that CPU time per sample to the time it takes only to JPEG-encode the same
    S×S pixels at the same quality (the floor; target <= 3);
  * both for the default colour jitter (torchvision's semantics) and the fast linear map (--colour linear);
  * wall time of the real command for a slice of the ImageNet-like dataset with all cores, extrapolated to
    1,281,167 samples (target <= 20 min), and the bytes per sample;
  * peak RSS of a one-worker run at two dataset sizes (memory must be flat in d).

Timings on a shared VM are noisy: every figure is the median of --repeats runs.

    python bench/bench_generator.py                 # about 3 minutes
    python bench/bench_generator.py --full          # also generate all 1,281,167 samples for real (30+ GB)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mono.generator.augmentation import Augmentation
from mono.generator.config import DatasetConfig, OutputSpec
from mono.generator.dataset_dir import DatasetDir
from mono.generator.render import Renderer
from mono.generator.shardwriter import SourceBank, init_worker_threads, plan_block, write_shard
from mono.generator.sources import embedded_default, inspect

REPO = Path(__file__).resolve().parents[1]

IMAGENET_SAMPLES = 1_281_167


def source_image() -> Path:
    paper = REPO.parent / "shared" / "images" / "ameyoko.jpg"
    return paper if paper.is_file() else embedded_default()


def measure(config: DatasetConfig, repeats: int) -> tuple[list[float], list[float]]:
    """Per repeat: CPU s/sample of whole shards written to disk, and of JPEG-encoding the same pixels only.

    The two are interleaved so that both see the same machine conditions; their ratio is what counts.
    """
    bank = SourceBank(config)
    renderer = Renderer(config.output.size, config.output.quality)
    pipeline, encode_only = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = DatasetDir(tmp)
        out.partial.mkdir(parents=True)
        out.done.mkdir(parents=True)
        write_shard(config, 0, out, bank, renderer)  # warm-up: pyramid levels, caches
        for r in range(repeats):
            shard = 1 + r % (config.output.num_shards - 1)
            samples = config.output.shard_range(shard)
            start = time.process_time()
            write_shard(config, shard, out, bank, renderer)
            pipeline.append((time.process_time() - start) / len(samples))
            out.shard(shard).unlink()
            block = plan_block(config, np.arange(samples.start, samples.stop))
            pixels = [bgr for _, bgr in renderer.render_plan(bank.pyramid, block)]
            start = time.process_time()
            for bgr in pixels:
                cv2.imencode(".jpg", bgr, renderer.encode_params)
            encode_only.append((time.process_time() - start) / len(samples))
    return pipeline, encode_only


def run_cli(args: list[str]) -> tuple[float, int]:
    """Wall seconds and the peak RSS (KiB) of the largest child process."""
    env = dict(os.environ)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "mono.generator.cli", *args, "--quiet"], check=True, env=env)
    wall = time.monotonic() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def rss_of_run(image: Path, samples: int, tmp: Path) -> int:
    """Peak RSS of a fresh one-worker generation (a separate interpreter, so maxima do not mix)."""
    out = tmp / f"rss-{samples}"
    code = (
        "import resource, subprocess, sys;"
        f"subprocess.run([sys.executable, '-m', 'mono.generator.cli', '--image', '{image}', '--samples', '{samples}',"
        f" '--size', '256', '--workers', '1', '--quiet', '--out', '{out}'], check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    return int(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slice", type=int, default=20_000, help="samples of the ImageNet-like run to time")
    parser.add_argument("--full", action="store_true", help="generate the full 1,281,167-sample dataset once")
    parser.add_argument("--per-sample-only", action="store_true", help="only the in-process per-sample figures")
    parser.add_argument("--out", default=None, help="where the --full dataset goes (default: a temporary dir)")
    args = parser.parse_args()
    init_worker_threads()
    image = source_image()
    source = inspect(image, "file")
    cores = len(os.sched_getaffinity(0))
    print(f"source {image.name} {source.width}×{source.height}, {cores} cores, OpenCV {cv2.__version__}")
    results = {}

    for colour in ("torchvision", "linear"):
        for size, shard in ((256, 300), (32, 3000)):
            output = OutputSpec(samples=shard * (args.repeats + 1), size=size, shard_size=shard)
            pipeline, encode_only = measure(DatasetConfig(Augmentation(colour=colour), output, (source,)), args.repeats)
            per_sample = statistics.median(pipeline)
            ratio = statistics.median(p / e for p, e in zip(pipeline, encode_only))
            results[colour, size] = (per_sample, statistics.median(encode_only), ratio)
            print(
                f"--colour {colour:11s} S={size:3d}: {1 / per_sample:8,.0f} samples/s per core "
                f"({per_sample * 1e6:7.1f} µs CPU per sample); JPEG encoding alone "
                f"{results[colour, size][1] * 1e6:6.1f} µs; generator / encode-only = {ratio:.2f}"
            )
        print(
            f"targets, --colour {colour}: S=256 ratio <= 3: {'met' if results[colour, 256][2] <= 3 else 'NOT met'}; "
            f"S=32 >= 10,000 samples/s per core: {'met' if 1 / results[colour, 32][0] >= 10_000 else 'NOT met'}"
        )

    if args.per_sample_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "slice"
        wall, _ = run_cli(
            ["--image", str(image), "--samples", str(args.slice), "--workers", str(cores), "--out", str(out)]
        )
        size_on_disk = sum(p.stat().st_size for p in out.glob("*.tar"))
        per_sample_bytes = size_on_disk / args.slice
        estimate = wall / args.slice * IMAGENET_SAMPLES
        print(
            f"ImageNet-like slice: {args.slice:,} samples of 256 px in {wall:.1f} s with {cores} workers "
            f"({args.slice / wall:,.0f} samples/s); full {IMAGENET_SAMPLES:,} estimated {estimate / 60:.1f} min "
            f"(target <= 20), {per_sample_bytes / 1e3:.1f} kB per sample, "
            f"{per_sample_bytes * IMAGENET_SAMPLES / 1e9:.1f} GB in all"
        )
        shutil.rmtree(out)
        small, large = rss_of_run(image, 2_000, tmp), rss_of_run(image, 8_000, tmp)
        print(f"peak RSS, one worker: d=2,000 {small / 1024:.0f} MiB, d=8,000 {large / 1024:.0f} MiB (flat in d)")

    if args.full:
        target = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mono-full-"))
        wall, _ = run_cli(["--image", str(image), "--workers", str(cores), "--out", str(target / "imagenet-A")])
        size_on_disk = sum(p.stat().st_size for p in (target / "imagenet-A").glob("*.tar"))
        print(
            f"FULL: {IMAGENET_SAMPLES:,} samples in {wall / 60:.1f} min, "
            f"{size_on_disk / 1e9:.1f} GB on disk at {target}"
        )
    print(
        json.dumps(
            {
                f"{colour}-S{size}": {"us_per_sample": r[0] * 1e6, "encode_us": r[1] * 1e6, "ratio": r[2]}
                for (colour, size), r in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
