"""Render one shard and write it atomically. A shard is a pure function of (config, shard index)."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import atomic, tar_format
from .augmentation import Params, sample_params
from .config import DatasetConfig
from .dataset_dir import DatasetDir, sample_key, shard_name
from .errors import UserError
from .imageio import DEFAULT_MAX_PIXELS, decode_rgb
from .render import Pyramid, Renderer, RenderPlan, plan

BLOCK = 1024  # samples whose parameters are drawn together
FLUSH_BYTES = 1 << 20


class SourceBank:
    """Decoded pyramids of the source images, kept per process within a memory budget (LRU)."""

    def __init__(self, config: DatasetConfig, budget_bytes: int = 2 << 30, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.sources = config.sources
        self.budget = budget_bytes
        self.max_pixels = max_pixels
        self._cache: OrderedDict[int, Pyramid] = OrderedDict()
        self._bytes = 0

    def pyramid(self, j: int) -> Pyramid:
        if j in self._cache:
            self._cache.move_to_end(j)
            return self._cache[j]
        pyramid = Pyramid(self._load(j))
        while self._cache and self._bytes + pyramid.nbytes > self.budget:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.nbytes
        self._cache[j] = pyramid
        self._bytes += pyramid.nbytes
        return pyramid

    def _load(self, j: int) -> np.ndarray:
        source = self.sources[j]
        try:
            data = Path(source.path).read_bytes()
        except OSError as exc:
            raise UserError(f"{source.path}: cannot read source image ({exc.strerror or exc})") from None
        if hashlib.sha256(data).hexdigest() != source.sha256:
            raise UserError(f"{source.path}: source image changed since the dataset was configured")
        return decode_rgb(data, source.path, self.max_pixels)


_JSON = (
    '{"index":%d,"source":%d,"source_name":%s,"angle":%.4f,'
    '"crop":{"cx":%.3f,"cy":%.3f,"w":%.3f,"h":%.3f},"area":%.6f,"aspect":%.5f,"flip":%s,'
    '"brightness":%.5f,"contrast":%.5f,"saturation":%.5f,"hue":%.5f,"order":"%s"}'
)


def sample_jsons(p: Params, source_names: list[str]) -> list[bytes]:
    """Each sample's augmentation parameters as compact JSON, formatted deterministically."""
    columns = zip(
        p.index.tolist(),
        p.source.tolist(),
        p.angle.tolist(),
        p.cx.tolist(),
        p.cy.tolist(),
        p.w.tolist(),
        p.h.tolist(),
        p.area.tolist(),
        (p.w / p.h).tolist(),
        p.flip.tolist(),
        p.brightness.tolist(),
        p.contrast.tolist(),
        p.saturation.tolist(),
        p.hue.tolist(),
        p.order.tolist(),
    )
    out = []
    for i, src, angle, cx, cy, w, h, area, aspect, flip, b, c, s, hue, order in columns:
        out.append(
            (
                _JSON
                % (
                    i,
                    src,
                    source_names[src],
                    angle,
                    cx,
                    cy,
                    w,
                    h,
                    area,
                    aspect,
                    "true" if flip else "false",
                    b,
                    c,
                    s,
                    hue,
                    order,
                )
            ).encode()
        )
    return out


def plan_block(config: DatasetConfig, indices: np.ndarray) -> RenderPlan:
    params = sample_params(config.augmentation, config.output.seed, indices, config.sizes)
    return plan(
        params, config.sizes, config.output.size, config.augmentation.uses("jitter"), config.augmentation.colour
    )


def render_samples(config: DatasetConfig, shard: int, bank: SourceBank, renderer: Renderer) -> Iterator[bytes]:
    """The shard's tar members, sample by sample, in index order."""
    names = [json.dumps(s.name) for s in config.sources]
    samples = config.output.shard_range(shard)
    for start in range(samples.start, samples.stop, BLOCK):
        indices = np.arange(start, min(start + BLOCK, samples.stop))
        block = plan_block(config, indices)
        jsons = sample_jsons(block.params, names)
        labels = block.params.source.tolist()
        for k, bgr in renderer.render_plan(bank.pyramid, block):
            yield tar_format.sample(
                sample_key(start + k),
                [("jpg", renderer.encode(bgr)), ("cls", b"%d" % labels[k]), ("json", jsons[k])],
            )


@dataclass(frozen=True)
class ShardRecord:
    name: str
    first: int
    count: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return {"name": self.name, "first": self.first, "count": self.count, "bytes": self.bytes, "sha256": self.sha256}


def write_shard(
    config: DatasetConfig,
    shard: int,
    out: DatasetDir,
    bank: SourceBank,
    renderer: Renderer,
    on_samples: Callable[[int], None] = lambda n: None,
) -> ShardRecord:
    """Render shard `shard` into a temporary file in the run state, then rename it into place and record its hash."""
    digest = hashlib.sha256()
    size = 0
    with atomic.replacing(out.shard(shard), staging=out.partial) as f:
        pending, pending_bytes, pending_samples = [], 0, 0
        for record in render_samples(config, shard, bank, renderer):
            pending.append(record)
            pending_bytes += len(record)
            pending_samples += 1
            if pending_bytes >= FLUSH_BYTES:
                size += _flush(f, digest, pending)
                on_samples(pending_samples)
                pending, pending_bytes, pending_samples = [], 0, 0
        pending.append(tar_format.END_OF_ARCHIVE)
        size += _flush(f, digest, pending)
        on_samples(pending_samples)
    samples = config.output.shard_range(shard)
    record = ShardRecord(shard_name(shard), samples.start, len(samples), size, digest.hexdigest())
    atomic.write_json(out.done_record(shard), record.to_dict(), fsync=False)
    return record


def _flush(f, digest, chunks: list[bytes]) -> int:
    data = b"".join(chunks)
    digest.update(data)
    f.write(data)
    return len(data)


def init_worker_threads() -> None:
    """One OpenCV thread per process: parallelism comes from worker processes."""
    cv2.setNumThreads(1)
