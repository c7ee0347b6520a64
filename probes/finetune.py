"""One fine-tuning run (``mono-probe finetune``): build the network, train it with labels, evaluate it, write
the reports; when conv1-conv2 were trained too (``--init``, or from scratch), export the trunk as a mono
checkpoint and run the linear probes on it, as the paper's Table 5 does.

Resumable like ``mono-probe linear``: ``finetune_state.pt`` is rewritten after every epoch and rerunning the
same command continues; everything random derives from ``seed``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mono.learning.checkpoint import atomic_torch_save, file_sha256, save_checkpoint
from mono.learning.device import choose_device
from mono.learning.errors import UserError
from mono.learning.schedules import set_learning_rate
from mono.learning.seeds import derive_seed, seeded_generator
from mono.probes.data import DataSpec, decode_split, iterate, make_loader, open_splits, with_transform
from mono.probes.finetune_model import FinetuneNet, build_network, describe_network
from mono.probes.linear import LinearConfig, run_linear
from mono.probes.loops import LayerMeter
from mono.probes.protocols import Protocol, Schedule, check_protocol, default_protocol, sized_for_protocol
from mono.probes.results import write_finetune_reports
from mono.probes.rundir import Timer, environment, load_state, peak_rss_mib, prepare_out
from mono.probes.sources import TrunkSource, load_source
from mono.probes.transforms import Normalizer, average_crops, eval_transform, train_transform

__all__ = ["SCHEDULES", "FinetuneConfig", "compressed", "crop_and_flip", "run_finetune"]

STATE_FILE = "finetune_state.pt"
STATE_FORMAT = "mono-finetune-state"
STATE_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
PROBES_DIR = "probes"

SCHEDULES = {
    # supervised AlexNet on ImageNet as pytorch/examples imagenet/main.py trains it: 90 epochs, lr divided by
    # 10 every 30 epochs, momentum 0.9, weight decay 1e-4, batch 256, and lr 0.01 for AlexNet (its README)
    "imagenet": Schedule(epochs=90, lr=0.01, milestones=(30, 60), gamma=0.1, weight_decay=1e-4, batch_size=256),
    # CIFAR: a short step schedule of the same form (lr / 10 at half and at five sixths of the epochs)
    "cifar": Schedule(epochs=30, lr=0.01, milestones=(15, 25), gamma=0.1, weight_decay=5e-4, batch_size=128),
}
CIFAR_CROP_PADDING = 4
"""The cifar protocol trains on random 32-px crops of the image padded by 4 px, flipped half the time
(the usual CIFAR augmentation, e.g. He et al. 2016); it evaluates the native images."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything a run needs: ``ckpt``, or ``arch`` for a random (or scattering) source; ``keep`` is
    "freeze", "init" or None (train from scratch), applied to conv1..``block``."""

    out: Path
    data: DataSpec
    ckpt: Path | None = None
    arch: str | None = None
    arch_args: dict[str, Any] = field(default_factory=dict)
    keep: str | None = None
    block: str | None = None
    protocol: str | None = None
    epochs: int | None = None
    """None: the protocol's schedule; otherwise the schedule compressed to this many epochs."""
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    probe_epochs: int = 36
    """Epochs of the linear probes run on a trunk whose conv1-conv2 were trained; 0 skips them."""
    seed: int = 0
    workers: int = 2
    threads: int | None = None
    device: str = "auto"
    label: str | None = None
    progress: bool = True
    resume: bool = False


def compressed(schedule: Schedule, epochs: int) -> Schedule:
    """``schedule`` over ``epochs`` epochs, its milestones moved in proportion (a 3-epoch CIFAR run decays
    after epochs 1 and 2, as the 30-epoch one after 15 and 25)."""
    if epochs == schedule.epochs:
        return schedule
    milestones = tuple(sorted({max(1, m * epochs // schedule.epochs) for m in schedule.milestones}))
    return replace(schedule, epochs=epochs, milestones=milestones)


def _schedule(cfg: FinetuneConfig, protocol: Protocol) -> Schedule:
    base = SCHEDULES[protocol.name]
    overrides = {
        k: v
        for k, v in (("lr", cfg.lr), ("weight_decay", cfg.weight_decay), ("batch_size", cfg.batch_size))
        if v is not None
    }
    schedule = compressed(replace(base, **overrides), cfg.epochs or base.epochs)
    if schedule.epochs < 1 or schedule.batch_size < 2 or schedule.lr <= 0:
        raise UserError("--epochs must be >= 1, --batch-size >= 2 and --lr > 0")
    return schedule


def crop_and_flip(images: torch.Tensor, generator: torch.Generator, padding: int = CIFAR_CROP_PADDING) -> torch.Tensor:
    """Random crops of the zero-padded uint8 batch, each flipped with probability 1/2, drawn from ``generator``."""
    n, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    out = torch.empty_like(images)
    for i, ((dy, dx), flip) in enumerate(zip(offsets, flips)):
        crop = padded[i, :, dy : dy + height, dx : dx + width]
        out[i] = crop.flip(-1) if flip else crop
    return out


def _log(cfg: FinetuneConfig, message: str) -> None:
    if cfg.progress:
        tqdm.write(message, file=sys.stderr)


def _device(net: FinetuneNet) -> torch.device:
    return next(net.head.parameters()).device


def _train_epoch(
    net: FinetuneNet,
    batches: Iterable,
    normalize: Normalizer,
    optimizer: torch.optim.Optimizer,
    total: int,
    progress: bool,
) -> dict[str, float]:
    net.train()
    meter = LayerMeter(["network"])
    for images, labels in tqdm(batches, total=total, desc="train", unit="batch", disable=not progress, leave=False):
        if len(labels) < 2:  # BatchNorm needs two samples; at most one image skipped per epoch
            continue
        labels = labels.to(_device(net))
        logits = net(normalize(images))
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        meter.update({"network": logits}, labels, {"network": loss.detach()})
    return meter.summary()["network"]


@torch.no_grad()
def _evaluate(
    net: FinetuneNet, batches: Iterable, normalize: Normalizer, total: int, progress: bool, desc: str = "eval"
) -> dict[str, float]:
    """Top-1/top-5 on batches of images ``(B, 3, H, W)`` or crops ``(B, crops, 3, H, W)`` (scores averaged)."""
    net.eval()
    meter = LayerMeter(["network"])
    for images, labels in tqdm(batches, total=total, desc=desc, unit="batch", disable=not progress, leave=False):
        crops = images.shape[1] if images.dim() == 5 else None
        logits = net(normalize(images.flatten(0, 1) if crops else images))
        if crops:
            logits = average_crops(logits, crops)
        meter.update({"network": logits}, labels.to(_device(net)))
    return meter.summary(with_loss=False)["network"]


def _tensor_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of decoded images: shuffled and augmented with ``generator``, in order without it."""
    order = torch.randperm(len(labels), generator=generator) if generator is not None else torch.arange(len(labels))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = images[idx]
        yield (crop_and_flip(batch, generator) if generator is not None else batch), labels[idx]


def _save_state(
    cfg: FinetuneConfig, identity: dict, epoch: int, net: FinetuneNet, optimizer, history: list, final: dict | None
) -> None:
    atomic_torch_save(
        {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "identity": identity,
            "epoch": epoch,
            "network": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history,
            "final": final,
        },
        cfg.out / STATE_FILE,
    )


def _train(
    cfg: FinetuneConfig,
    protocol: Protocol,
    schedule: Schedule,
    net: FinetuneNet,
    optimizer,
    splits,
    normalize: Normalizer,
    start_epoch: int,
    history: list,
    identity: dict,
    timer: Timer,
) -> dict:
    """Train the remaining epochs, evaluating after each (cifar) or once at the end (imagenet, 10 crops)."""
    decoded = {}
    if protocol.caches_features:  # native 32-px images: decode once, augment batches in memory
        for split, dataset in (("train", splits.train), ("val", splits.val)):
            t = time.perf_counter()
            decoded[split] = decode_split(
                dataset, protocol.input_size, cfg.workers, desc=f"decode {split}", progress=cfg.progress
            )
            timer.add(f"decode_{split}", t)
    else:
        with_transform(splits.train, train_transform(protocol))
    steps = -(-len(splits.train_labels) // schedule.batch_size)
    val_steps = -(-len(splits.val_labels) // 500)
    epochs = tqdm(
        range(start_epoch, schedule.epochs),
        initial=start_epoch,
        total=schedule.epochs,
        desc="epochs",
        unit="epoch",
        disable=not cfg.progress,
    )
    for epoch in epochs:
        lr = schedule.lr_at(epoch)
        set_learning_rate(optimizer, lr)
        torch.manual_seed(derive_seed(cfg.seed, "dropout", epoch))
        generator = seeded_generator(cfg.seed, "order", epoch)
        if decoded:
            batches = _tensor_batches(decoded["train"], splits.train_labels, schedule.batch_size, generator)
        else:
            torch.manual_seed(derive_seed(cfg.seed, "augment", epoch))
            batches = iterate(
                make_loader(
                    splits.train,
                    schedule.batch_size,
                    cfg.workers,
                    shuffle=True,
                    generator=generator,
                    pin_memory=normalize.device.type == "cuda",
                )
            )
        t = time.perf_counter()
        train = _train_epoch(net, batches, normalize, optimizer, steps, cfg.progress)
        timer.add("train", t)
        row = {"epoch": epoch + 1, "lr": lr, "train": train}
        if decoded:
            t = time.perf_counter()
            row["val"] = _evaluate(
                net, _tensor_batches(decoded["val"], splits.val_labels, 500, None), normalize, val_steps, cfg.progress
            )
            timer.add("eval", t)
        history.append(row)
        final = {"epoch": epoch + 1, **row["val"]} if decoded and epoch + 1 == schedule.epochs else None
        _save_state(cfg, identity, epoch + 1, net, optimizer, history, final)
        _log(
            cfg,
            f"epoch {epoch + 1}/{schedule.epochs} lr {lr:.2g} | train top1 {train['top1']:.1f} loss "
            f"{train['loss']:.3f}" + (f" | val top1 {row['val']['top1']:.1f}" if "val" in row else ""),
        )
    if decoded:
        return {"epoch": schedule.epochs, **history[-1]["val"]}
    with_transform(splits.val, eval_transform(protocol))
    loader = make_loader(
        splits.val, max(1, schedule.batch_size // 10), cfg.workers, pin_memory=normalize.device.type == "cuda"
    )
    t = time.perf_counter()
    val = _evaluate(net, iterate(loader), normalize, len(loader), cfg.progress, desc="eval (10 crops)")
    timer.add("eval", t)
    final = {"epoch": schedule.epochs, **val}
    _save_state(cfg, identity, schedule.epochs, net, optimizer, history, final)
    return final


def _identity(
    cfg: FinetuneConfig, source: TrunkSource, net: FinetuneNet, protocol: Protocol, schedule: Schedule, dataset: dict
) -> dict[str, Any]:
    """What must be equal for a saved state to be continued."""
    return {
        "mode": net.mode,
        "kept_blocks": net.kept,
        "arch": source.arch,
        "arch_args": source.arch_args,
        "checkpoint_sha256": source.checkpoint["sha256"] if source.checkpoint else None,
        "protocol": protocol.name,
        "schedule": schedule.as_dict(),
        "seed": cfg.seed,
        "normalization": source.normalization,
        "dataset": {k: v for k, v in dataset.items() if k not in ("root", "train_path", "val_path")},
    }


def _default_label(source: TrunkSource, net: FinetuneNet) -> str:
    if net.mode == "scattering":
        return f"{source.default_label} + {net.rest_arch} {net.trained[0]}-{net.trained[-1]}"
    if net.mode == "scratch":
        return f"{source.arch} trained from scratch"
    return f"{source.default_label}, {net.mode} {net.kept[0]}-{net.kept[-1]}"


def _export(
    cfg: FinetuneConfig, source: TrunkSource, net: FinetuneNet, schedule: Schedule, final: dict, trained_now: bool
) -> Path | None:
    """Write the trained trunk as a mono checkpoint (once: a resumed, finished run keeps the one it wrote)."""
    path = cfg.out / CHECKPOINT_FILE
    trunk = net.export_trunk(source)
    if trunk is None or (path.exists() and not trained_now):
        return path if path.exists() else None
    meta = {
        "finetune": {
            "mode": net.mode,
            "kept_blocks": net.kept,
            "frozen_blocks": net.frozen,
            "source_checkpoint_sha256": source.checkpoint["sha256"] if source.checkpoint else None,
            "protocol": cfg.protocol,
            "epochs": schedule.epochs,
            "top1": round(final["top1"], 4),
        }
    }
    save_checkpoint(
        path,
        trunk,
        arch=source.arch,
        arch_args=source.arch_args,
        normalization=source.normalization,
        method="finetune",
        dataset_manifest_sha256=None,
        epoch=schedule.epochs,
        meta=meta,
    )
    return path


def run_finetune(cfg: FinetuneConfig) -> dict[str, Any]:
    """Run (or continue) the fine-tuning of ``cfg`` and write results.json, results.md and accuracy.png."""
    started = time.perf_counter()
    timer = Timer()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.keep not in (None, "freeze", "init") or (cfg.keep is None) != (cfg.block is None):
        raise UserError("keep must be 'freeze' or 'init' with a block, or neither")
    device = choose_device(cfg.device)

    t = time.perf_counter()
    source = load_source(cfg.ckpt, cfg.arch, sized_for_protocol(cfg.arch, cfg.arch_args, cfg.protocol), cfg.seed)
    protocol = check_protocol(
        source.arch, cfg.protocol or default_protocol(source.arch, source.arch_args) or "", source.arch_args
    )
    schedule = _schedule(cfg, protocol)
    splits = open_splits(cfg.data)
    torch.manual_seed(derive_seed(cfg.seed, "network"))
    net = build_network(source, cfg.keep, cfg.block, len(splits.classes)).to(device)
    optimizer = torch.optim.SGD(
        [p for p in net.parameters() if p.requires_grad],
        lr=schedule.lr,
        momentum=schedule.momentum,
        weight_decay=schedule.weight_decay,
    )
    identity = _identity(cfg, source, net, protocol, schedule, splits.description)
    prepare_out(cfg.out, STATE_FILE, "mono-probe finetune")
    state = load_state(cfg.out / STATE_FILE, STATE_FORMAT, identity, schedule.epochs, cfg.resume)
    start_epoch, history, final = 0, [], None
    if state is not None:
        net.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history, final = state["epoch"], list(state["history"]), state.get("final")
        _log(cfg, f"resuming {cfg.out} after epoch {start_epoch}")
    timer.add("setup", t)

    normalize = Normalizer(**source.normalization, device=device)
    trained_now = final is None
    if trained_now:
        final = _train(
            cfg, protocol, schedule, net, optimizer, splits, normalize, start_epoch, history, identity, timer
        )
    label = cfg.label or _default_label(source, net)
    exported = _export(cfg, source, net, schedule, final, trained_now)
    probes = None
    if exported is not None and cfg.probe_epochs > 0 and net.mode in ("init", "scratch"):
        t = time.perf_counter()
        _log(cfg, f"linear probes on the fine-tuned trunk ({cfg.probe_epochs} epochs) in {cfg.out / PROBES_DIR}")
        probes = run_linear(
            LinearConfig(
                out=cfg.out / PROBES_DIR,
                data=cfg.data,
                ckpt=exported,
                protocol=protocol.name,
                schedule=Schedule(epochs=cfg.probe_epochs),
                seed=cfg.seed,
                workers=cfg.workers,
                threads=cfg.threads,
                device=cfg.device,
                label=label,
                progress=cfg.progress,
            )
        )
        timer.add("linear_probes", t)

    results = {
        "label": label,
        "top1": round(final["top1"], 4),
        "top5": round(final["top5"], 4),
        "network": describe_network(net),
        "config": {
            "arch": source.arch,
            "arch_args": source.arch_args,
            "random_init": source.checkpoint is None,
            "protocol": protocol.name,
            "input_size": protocol.input_size,
            "augment": (
                "random 224 crops of images resized to 256, flips"
                if protocol.augment
                else f"random crops of the image padded by {CIFAR_CROP_PADDING} px, flips"
            ),
            "ten_crop": protocol.ten_crop,
            "schedule": schedule.as_dict(),
            "seed": cfg.seed,
            "normalization": source.normalization,
            "workers": cfg.workers,
            "threads": torch.get_num_threads(),
            "device": str(device),
        },
        "checkpoint": source.checkpoint,
        "exported_checkpoint": None
        if exported is None
        else {"path": str(exported.resolve()), "sha256": file_sha256(exported)},
        "probes": None
        if probes is None
        else {"dir": str((cfg.out / PROBES_DIR).resolve()), "epochs": cfg.probe_epochs, "layers": probes["layers"]},
        "dataset": splits.description,
        "history": history,
        "timing": {
            "wall_s": round(time.perf_counter() - started, 2),
            "resumed_from_epoch": start_epoch if state is not None else None,
            "peak_rss_mib": peak_rss_mib(),
            "stages_s": timer.stages,
        },
        "environment": environment(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_finetune_reports(cfg.out, results)
    return results
