"""Names of things in a dataset directory (specified in shards/README.md)."""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
CARD = "README.md"
SHARD_PREFIX = "train"
BETON = "train.beton"  # FFCV's dataset file
STATE_DIR = ".mono-gen"  # exists only while a dataset is incomplete: run state for resuming
KEY_DIGITS = 9


def shard_name(shard: int) -> str:
    return f"{SHARD_PREFIX}-{shard:06d}.tar"


def shard_pattern(num_shards: int) -> str:
    """The brace pattern webdataset expands, e.g. train-{000000..000049}.tar."""
    if num_shards == 1:
        return shard_name(0)
    return f"{SHARD_PREFIX}-{{{0:06d}..{num_shards - 1:06d}}}.tar"


def sample_key(index: int) -> str:
    return f"{index:0{KEY_DIGITS}d}"


class DatasetDir:
    """Paths inside one dataset directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def card(self) -> Path:
        return self.root / CARD

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def state_config(self) -> Path:
        return self.state / "config.json"

    @property
    def partial(self) -> Path:
        return self.state / "partial"

    @property
    def done(self) -> Path:
        return self.state / "done"

    @property
    def beton(self) -> Path:
        return self.root / BETON

    def shard(self, shard: int) -> Path:
        return self.root / shard_name(shard)

    def done_record(self, shard: int) -> Path:
        return self.done / (shard_name(shard) + ".json")
