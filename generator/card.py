"""The files that tell other tools what a dataset is: the dataset card (README.md), whose front matter Hugging Face
`datasets` and the Hub read, and timm's `_info.json`. Both are functions of the manifest alone, so a copy made
from the manifest writes them again identically.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from . import atomic
from .dataset_dir import CARD, MANIFEST, METADATA, TIMM_INFO
from .manifest import FFCV, WEBDATASET, formats_of, timm_info, with_timm

# A sample's `.json` member as shardwriter._JSON writes it, with the types Hugging Face `datasets` reads it into.
_FLOAT = "float64"
SAMPLE_FIELDS = {
    "index": "int64",
    "source": "int64",
    "source_name": "string",
    "angle": _FLOAT,
    "crop": {"cx": _FLOAT, "cy": _FLOAT, "w": _FLOAT, "h": _FLOAT},
    "area": _FLOAT,
    "aspect": _FLOAT,
    "flip": "bool",
    "brightness": _FLOAT,
    "contrast": _FLOAT,
    "saturation": _FLOAT,
    "hue": _FLOAT,
    "order": "string",  # since mono-gen/2 (torchvision's colour jitter)
}


def sample_fields(manifest: dict) -> dict:
    """The fields of the samples' JSON in this dataset (datasets of mono-gen/1 have no `order`)."""
    if manifest["config"]["algorithm"] == "mono-gen/1":
        return {k: v for k, v in SAMPLE_FIELDS.items() if k != "order"}
    return dict(SAMPLE_FIELDS)


def class_names(manifest: dict) -> list[str]:
    """The label names: the source images' names, made unique (a class label needs distinct names)."""
    names, seen = [], set()
    for source in manifest["sources"]:
        name = source["name"]
        if name in seen:
            name = f"{name} ({source['index']})"
        seen.add(name)
        names.append(name)
    return names


def _q(text: str) -> str:
    """A YAML double-quoted scalar: JSON's string syntax, ASCII only, is one."""
    return json.dumps(text)


def yaml_features(fields: dict, indent: str) -> list[str]:
    """A `datasets` feature list in the YAML of a dataset card: `- name: …` with `dtype` or `struct`."""
    lines = []
    for name, kind in fields.items():
        lines.append(f"{indent}- name: {name}")
        if isinstance(kind, dict):
            lines.append(f"{indent}  struct:")
            lines += yaml_features(kind, indent + "  ")
        elif isinstance(kind, list):  # a class label: its names
            lines += [f"{indent}  dtype:", f"{indent}    class_label:", f"{indent}      names:"]
            lines += [f"{indent}        '{i}': {_q(n)}" for i, n in enumerate(kind)]
        else:
            lines.append(f"{indent}  dtype: {kind}")
    return lines


def front_matter(manifest: dict) -> str:
    """The card's YAML header for Hugging Face: the shards as the train split of a WebDataset, `cls` a class
    label named after the source images, `json` the augmentation parameters; so `load_dataset(DIR)` (or of
    an uploaded copy) gives named classes. Empty without shards: `datasets` cannot read a .beton."""
    if WEBDATASET not in formats_of(manifest):
        return ""
    size = sum(s["bytes"] for s in manifest["shards"])
    features = {"jpg": "image", "cls": class_names(manifest), "json": sample_fields(manifest), "__key__": "string"}
    title = f"Single-image dataset: {manifest['num_samples']:,} samples of {manifest['image_size']} px"
    lines = [
        "---",
        f"pretty_name: {_q(title)}",
        "tags:",
        "- webdataset",
        "- single-image",
        "- self-supervised-learning",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {_q('train-*.tar')}",
        "dataset_info:",
        "  features:",
        *yaml_features(features, "  "),
        "  splits:",
        "  - name: train",
        f"    num_bytes: {size}",
        f"    num_examples: {manifest['num_samples']}",
        f"  download_size: {size}",
        f"  dataset_size: {size}",
        "---",
        "",
    ]
    return "\n".join(lines) + "\n"


def card(manifest: dict, root: str | os.PathLike) -> str:
    """The dataset card: front matter, what it is, how it was made, how to load it, checksums. `root` is where
    the dataset is, for timm's command line."""
    cfg = manifest["config"]
    proto = cfg["protocol"]
    out = cfg["output"]
    sources = manifest["sources"]
    formats = formats_of(manifest)
    augment = ", ".join(proto["augment"]) or "none"
    if len(sources) == 1:
        what = f"one source image, `{sources[0]['name']}`"
    else:
        what = f"{len(sources)} source images (listed in manifest.json)"
    files = list(manifest["shards"]) if WEBDATASET in formats else []
    files += [manifest["timm"]] if WEBDATASET in formats and "timm" in manifest else []
    files += [manifest["ffcv"]] if FFCV in formats else []
    checksums = "\n".join(f"{f['sha256']}  {f['name']}" for f in files)
    loading = "\n\n".join(
        part
        for part in (
            _load_webdataset(manifest) if WEBDATASET in formats else "",
            _load_ddp(manifest) if WEBDATASET in formats else "",
            _load_timm(manifest, root) if WEBDATASET in formats and "timm" in manifest else "",
            _load_huggingface(manifest) if WEBDATASET in formats else "",
            _load_ffcv(manifest) if FFCV in formats else "",
        )
        if part
    )
    title = f"Single-image dataset: {manifest['num_samples']:,} samples of {out['size']}×{out['size']} px"
    return f"""{front_matter(manifest)}# {title}

Generated by mono-gen {manifest["generator"]["version"]} from {what}, with the augmentation protocol of
Asano, Rupprecht & Vedaldi, *A critical analysis of self-supervision, or what we can learn from a single
image* (ICLR 2020), section 3.1: rotation before cropping (no pixel from outside the image), random crops
with area fraction in [{proto["beta"]}, 1] and aspect ratio in [{proto["aspect"]:.4g}, {1 / proto["aspect"]:.4g}],
left-right flips, colour jitter. Augmentations used: {augment}. Seed {out["seed"]}, JPEG quality {out["quality"]}.

Samples are spread evenly over the source images; a sample's label is the index of its source.

## How it was made

```
{manifest["command"]}
```

The same command (and mono-gen version) reproduces these files byte for byte; configuration hash
`{manifest["config_sha256"]}`. `mono-gen --from-manifest manifest.json --image-dir DIR --out DEST` makes
them again from this manifest alone, finding the source images in DIR by their SHA-256, and says whether
every file matches its checksum below (it does with the numpy, OpenCV and Pillow versions recorded in
manifest.json). Published over HTTP(S), `mono-shards pull URL DEST` copies this directory, checking every
file against its checksum and resuming an interrupted download.

## Loading it

The snippets run from this directory.

{loading}

Scale pixels to the range your trainer expects (for GANs, (−1, 1)); they are stored as plain 8-bit RGB.
`mono-shards verify .` checks every file against this card's checksums.

## Checksums (SHA-256)

```
{checksums}
```
"""


def _load_webdataset(manifest: dict) -> str:
    pattern = manifest["shard_pattern"]
    shards = f"{len(manifest['shards'])} WebDataset shards, `{pattern}`; "
    return (
        shards
        + f"""each sample has `<key>.jpg` (the image), `<key>.cls` (the
source index) and `<key>.json` (its augmentation parameters). With plain webdataset:

```python
import webdataset as wds

dataset = wds.WebDataset("{pattern}", shardshuffle=False).decode("pil").to_tuple("jpg", "cls")
for image, label in dataset:
    ...
```"""
    )


def _workers(count: int) -> int:
    """DataLoader workers for one process: the most, up to 8, that divide the `count` shards evenly."""
    return max(w for w in range(1, 9) if count % w == 0)


def _load_ddp(manifest: dict) -> str:
    count = len(manifest["shards"])
    return f"""Under DDP (torchrun), each rank reads its own shards (`split_by_node`), its DataLoader workers split
those, and `with_epoch` makes an epoch exactly the rank's samples, each once. Ranks × workers should divide
the {count:,} shards: a worker without a shard stops webdataset with `No samples found`.

```python
import json
import warnings

import torch.distributed as dist
import webdataset as wds

batch_size = 256
records = json.load(open("manifest.json"))["shards"]
rank, world_size = dist.get_rank(), dist.get_world_size()  # after dist.init_process_group()
num_workers = max((w for w in range(1, 9) if len(records) % (world_size * w) == 0), default=1)
if len(records) % (world_size * num_workers):
    warnings.warn(f"{{len(records)}} shards do not split evenly over {{world_size}} ranks × {{num_workers}} workers")
mine = records[rank::world_size]  # split_by_node's share, which split_by_worker deals out to the workers
batches = sum(-(-sum(r["count"] for r in mine[w::num_workers]) // batch_size) for w in range(num_workers))
dataset = (
    wds.WebDataset([r["name"] for r in records], shardshuffle=False, nodesplitter=wds.split_by_node)
    .decode("torchrgb8")
    .to_tuple("jpg", "cls")
)
loader = wds.WebLoader(dataset, batch_size=batch_size, num_workers=num_workers).with_epoch(batches)
for images, labels in loader:  # uint8 (B, 3, S, S), int64 (B,)
    ...
```

For training, where every rank must take as many steps, give all ranks the smallest rank's `batches`."""


def _load_timm(manifest: dict, root) -> str:
    count = len(manifest["shards"])
    workers = _workers(count)
    command = shlex.join(
        [
            "python",
            "train.py",
            "--dataset",
            f"wds/{os.path.basename(os.path.abspath(root)) or 'mono'}",
            "--data-dir",
            os.path.abspath(root),
            "--train-split",
            "train",
            "--val-split",
            "",
            "--num-classes",
            str(manifest["num_classes"]),
            "--workers",
            str(workers),
        ]
    )
    return f"""timm reads the shards with `{TIMM_INFO}` (timm ≥ 0.9.16); its `train.py`, from a checkout of
pytorch-image-models (there is no validation split: `--val-split ''`):

```
{command}
```

timm deals the {count:,} shards out to processes × `--workers`: keep that product a divisor of {count:,}
(with `torchrun --nproc-per-node P`, at most {count:,}/P workers each), or some workers get no shard and the
epoch covers only part of the data."""


def _load_huggingface(manifest: dict) -> str:
    return """Hugging Face `datasets` reads this card's front matter: `cls` is a class label named after the source
images, `json` the augmentation parameters.

```python
from datasets import load_dataset

dataset = load_dataset(".", split="train")  # or the name of an uploaded copy on the Hub
names = dataset.features["cls"].names  # the source images, by label
```"""


def _load_ffcv(manifest: dict) -> str:
    name = manifest["ffcv"]["name"]
    return f"""FFCV: `{name}`, fields `image` (the JPEG bytes of the shards, unchanged) and `label`; sample i of the
file is sample i of the shards. With plain ffcv (`drop_last=False`: every sample, the last batch smaller):

```python
from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcv.loader import Loader, OrderOption

loader = Loader("{name}", batch_size=256, order=OrderOption.RANDOM, drop_last=False,
                pipelines={{"image": [SimpleRGBImageDecoder()], "label": [IntDecoder()]}})
for images, labels in loader:  # uint8 (B, S, S, 3), int64 (B, 1), as numpy arrays
    ...
```"""


def folder_card(manifest: dict, with_params: bool) -> str:
    """An exported folder's card: front matter for Hugging Face's imagefolder (the images and metadata.jsonl, with
    `label` a class label named after the source images, which its own inference would make a plain int or,
    for a single class folder, leave out), then what the folder is and how to read it."""
    folder = manifest["folder"]
    prefix = f"{folder['split']}/" if "split" in folder else ""
    features = {"image": "image", "label": class_names(manifest)}
    if with_params:
        features.update(sample_fields(manifest))
    size = manifest["image_size"]
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: [{_q(prefix + '*/*.jpg')}, {_q(prefix + METADATA)}]",
        "  features:",  # imagefolder takes the features of the config, not those of dataset_info
        *yaml_features(features, "  "),
        "---",
        "",
    ]
    return (
        "\n".join(lines)
        + f"""
# Exported folder: {manifest["num_samples"]:,} samples of {size}×{size} px, {len(folder["classes"])} classes

The JPEG bytes of a dataset made by `{manifest["command"]}`, one file per sample:
`{prefix}<label>-<source>/<index>.jpg`, the class folders sorting in label order. `{prefix}{METADATA}` gives each
file's label and augmentation parameters.

- torchvision: `datasets.ImageFolder("{prefix or "."}")`
- Hugging Face: `load_dataset(".", split="train")`: `image`, `label` named after the source images, the parameters
- `sha256sum -c SHA256SUMS` or `mono-shards verify .` checks every image
"""
    )


def write_manifest(root: str | os.PathLike, manifest: dict) -> dict:
    """Write timm's `_info.json` (or remove it when there are no shards), the card, then `manifest.json`, last:
    a directory that has a manifest is complete. Returns the manifest written."""
    root = Path(root)
    manifest = with_timm(manifest)
    info = root / TIMM_INFO
    if "timm" in manifest:
        atomic.write_bytes(info, timm_info(manifest))
    else:
        info.unlink(missing_ok=True)
    atomic.write_text(root / CARD, card(manifest, root))
    atomic.write_json(root / MANIFEST, manifest)
    return manifest
