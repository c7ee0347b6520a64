"""The paper's published numbers (Asano, Rupprecht & Vedaldi, ICLR 2020), in one place, and which of them a
probe run can be read against.

Only numbers we could check are here. Table 3 (CIFAR-10 linear probes of the 32 px `monogan` trunk) is quoted
in docs/protocol.md and docs/results.md. Table 1 (the augmentation ablation) and Table 2 (AlexNet on ImageNet)
could not be read from this machine (docs/experiments.md, "The paper's numbers"); their rows are left empty
rather than quoted from memory. Fill them in from arXiv:1904.13132 (v3) and every report picks them up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PaperRow", "TABLE1", "TABLE2", "TABLE3", "chance", "paper_row", "row"]

CIFAR_LAYERS = ("conv1", "conv2", "conv3", "conv4")
IMAGENET_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")

# Table 3: CIFAR-10 linear probes, top-1 % at conv1-conv4. The paper has one RotNet row and does not name its
# training data beside it. "gan" is the GAN trained on CIFAR-10, "monogan" the one trained on Image B.
TABLE3: dict[str, tuple[float, ...]] = {
    "supervised": (66.5, 70.1, 72.4, 75.9),
    "random": (57.8, 55.5, 54.2, 47.3),
    "rotnet": (64.4, 65.6, 65.6, 59.1),
    "gan": (67.7, 73.0, 72.5, 69.2),
    "monogan": (68.1, 72.3, 70.8, 63.5),
}

# Table 1: MonoGAN on Image B with each combination of augmentations (keys as `mono-repro --ablation-rows`),
# CIFAR-10 top-1 % at conv1-conv4. Not read on this machine: empty until filled in from the paper.
TABLE1: dict[str, tuple[float, ...]] = {}

# Table 2: AlexNet linear probes on ImageNet, top-1 % at conv1-conv5, keyed by method ("supervised", "random",
# "rotnet", "bigan", "deepcluster"). Not read on this machine: empty until filled in from the paper.
TABLE2: dict[str, tuple[float, ...]] = {}

TABLE_NAMES = {"1": "Table 1", "2": "Table 2", "3": "Table 3"}


@dataclass(frozen=True)
class PaperRow:
    table: str  # "Table 3"
    row: str  # the row's key in that table
    layers: dict[str, float]

    @property
    def name(self) -> str:
        return f"paper, {self.table}: {self.row}"

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row, "layers": dict(self.layers)}


def row(table: str, key: str) -> PaperRow | None:
    """Row `key` of the paper's Table `table` ("1", "2" or "3"), or None where we do not have it."""
    values, layers = {"1": (TABLE1, CIFAR_LAYERS), "2": (TABLE2, IMAGENET_LAYERS), "3": (TABLE3, CIFAR_LAYERS)}[table]
    if key not in values:
        return None
    return PaperRow(TABLE_NAMES[table], key, dict(zip(layers, values[key])))


def chance(num_classes: int | None) -> float | None:
    """Top-1 accuracy (%) of guessing: 100 / classes."""
    return 100.0 / num_classes if num_classes else None


def _looks_like_cifar10(dataset: dict[str, Any]) -> bool:
    if dataset.get("num_classes") != 10:
        return False
    names = " ".join(str(dataset.get(k) or "") for k in ("name", "train_path", "val_path")).lower()
    return "cifar10" in names.replace("-", "").replace("_", "") or dataset.get("source") == "imagefolder"


def paper_row(results: dict[str, Any]) -> PaperRow | None:
    """The paper's row a linear-probe run (mono-probe's results.json) can be read against, or None.

    monogan trunk + cifar protocol + 10 classes: Table 3 by method (a GAN checkpoint trained on a mono-gen dataset,
    which records a manifest, is the MonoGAN row; one trained on an image folder the GAN row). alexnet + imagenet
    protocol: Table 2 by method. Methods the table lacks (DeepCluster and BiGAN in Table 3) get no row.
    """
    cfg, data = results.get("config") or {}, results.get("dataset") or {}
    ckpt = results.get("checkpoint") or {}
    if cfg.get("random_init") or not ckpt:
        method = "random"
    else:
        method = ckpt.get("method")
    arch, protocol = cfg.get("arch"), cfg.get("protocol")
    if arch == "monogan" and protocol == "cifar" and _looks_like_cifar10(data):
        if method == "monogan":
            method = "monogan" if ckpt.get("dataset_manifest_sha256") else "gan"
        return row("3", method) if method in ("supervised", "random", "rotnet", "gan", "monogan") else None
    if arch == "alexnet" and protocol == "imagenet" and (data.get("num_classes") in (None, 1000)):
        return row("2", method) if method else None
    return None
