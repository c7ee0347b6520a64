"""What a mono-gen run will take before it starts: samples and shards left to write, their bytes and time measured
on this machine by rendering a few samples, and the free disk space, so that a run that cannot fit is refused
before it has written anything (or is only looked at, with --dry-run)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .config import DatasetConfig
from .dataset_dir import DatasetDir
from .manifest import FFCV, WEBDATASET, formats_of
from .render import Renderer
from .shardwriter import SourceBank, init_worker_threads, render_samples

CALIBRATION_SAMPLES = 32
CALIBRATION_SECONDS = 1.5
MARGIN = 1.05  # the estimate is an average: ask for a little more than it says

disk_usage = shutil.disk_usage  # a seam: tests replace it to play a full disk


@dataclass(frozen=True)
class Estimate:
    samples: int  # samples left to render
    shards: int  # shards left to render
    present: int  # shards on disk
    total_shards: int
    bytes: int  # bytes the run adds to the disk at its peak
    seconds: float
    free: int  # free bytes where the output goes
    where: Path  # the existing directory whose file system was asked

    @property
    def fits(self) -> bool:
        return self.bytes * MARGIN <= self.free

    def line(self, workers: int) -> str:
        if self.shards:
            head = (
                f"{self.samples:,} samples in {self.shards} of {self.total_shards} shards to write, "
                f"about {human_bytes(self.bytes)} and {human_seconds(self.seconds)} with {workers} "
                f"worker{'s' if workers != 1 else ''} (measured here)"
            )
        elif self.bytes:  # only the .beton is left to make, from the shards
            head = (
                f"no shard to render here ({self.present} of {self.total_shards} present); "
                f"the .beton will take about {human_bytes(self.bytes)}"
            )
        else:
            return f"nothing to render here ({self.present} of {self.total_shards} shards present)"
        return f"{head}; {human_bytes(self.free)} free in {self.where}"


def estimate(config: DatasetConfig, root: Path, formats: tuple[str, ...], shards: range, workers: int) -> Estimate:
    """The run `mono-gen` is about to make into `root` (which may not exist): only what is missing counts."""
    out = DatasetDir(root)
    existing = _manifest(out)
    wanted = set(formats) | set(formats_of(existing) if existing else ())
    beton_missing = FFCV in wanted and not (existing and FFCV in formats_of(existing) and out.beton.exists())
    needs_shards = WEBDATASET in wanted or beton_missing
    pending = [j for j in shards if not out.shard(j).exists()] if needs_shards else []
    samples = sum(len(config.output.shard_range(j)) for j in pending)
    measured = pending or beton_missing  # a .beton still to make from shards on disk also takes space
    per_second, per_sample, setup = calibrate(config, pending[0] if pending else 0) if measured else (0.0, 0, 0.0)
    written = samples * per_sample
    if beton_missing:  # made from the shards, which are all on disk then: it adds about as much again
        written += config.output.samples * per_sample
    parallel = max(1, min(workers, len(pending)))
    seconds = setup + samples * per_second / parallel
    where = existing_parent(root)
    free = disk_usage(where).free
    present = sum(out.shard(j).exists() for j in range(config.output.num_shards))
    total = config.output.num_shards
    return Estimate(samples, len(pending), present, total, int(written), seconds, free, where)


def calibrate(config: DatasetConfig, shard: int = 0) -> tuple[float, int, float]:
    """(seconds per sample, bytes per sample, setup seconds) from rendering the first samples of `shard` with the
    real pipeline, for at most about CALIBRATION_SECONDS. The first sample pays for decoding its source image
    (setup); the others are the rate."""
    init_worker_threads()
    bank = SourceBank(config)
    renderer = Renderer(config.output.size, config.output.quality)
    sizes, times = [], []
    started = time.perf_counter()
    for member in render_samples(config, shard, bank, renderer):
        sizes.append(len(member))
        times.append(time.perf_counter())
        if len(sizes) >= CALIBRATION_SAMPLES or times[-1] - started > CALIBRATION_SECONDS:
            break
    setup = times[0] - started
    per_second = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else setup
    return per_second, round(sum(sizes) / len(sizes)), setup


def existing_parent(path: Path) -> Path:
    """The nearest directory on the way to `path` that exists: whose file system the output will be on."""
    path = Path(path).expanduser().absolute()
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def _manifest(out: DatasetDir) -> dict | None:
    try:
        return json.loads(out.manifest.read_text())
    except (OSError, ValueError):
        return None


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s" if s >= 1 else "under 1 s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
