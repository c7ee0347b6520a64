"""One linear-probe run: load or build the trunk, open the data, train every probe, write the reports.

The run directory holds ``probe_state.pt`` (rewritten after every epoch), so rerunning the same command
continues where it stopped; a larger ``--epochs`` extends a finished run. Everything random (a random trunk's
init, the probes' init, data order, augmentation) derives from ``seed``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mono.learning.checkpoint import atomic_torch_save
from mono.learning.device import choose_device
from mono.learning.errors import UserError
from mono.learning.schedules import set_learning_rate
from mono.learning.seeds import derive_seed, seeded_generator
from mono.probes.data import DataSpec, LabelledSplits, decode_split, iterate, make_loader, open_splits, with_transform
from mono.probes.features import extract_features, freeze_for_probing
from mono.probes.heads import ProbeSet, build_probes
from mono.probes.loops import (
    evaluate_cached,
    evaluate_streaming,
    train_epoch_cached,
    train_epoch_streaming,
)
from mono.probes.protocols import Protocol, Schedule, check_protocol, default_protocol, sized_for_protocol
from mono.probes.results import write_run_reports
from mono.probes.rundir import Timer, environment, load_state, peak_rss_mib, prepare_out
from mono.probes.sources import RANDOM_INIT_NORMALIZATION, TrunkSource, load_source
from mono.probes.transforms import Normalizer, eval_transform, train_transform

__all__ = ["RANDOM_INIT_NORMALIZATION", "LinearConfig", "run_linear"]

FLIP_DEFAULT = {"imagenet": True, "cifar": True}
"""Whether each protocol flips training images unless told otherwise (docs/protocol.md, "Calibration")."""

STATE_FILE = "probe_state.pt"
STATE_FORMAT = "mono-probe-state"
STATE_VERSION = 1


@dataclass(frozen=True)
class LinearConfig:
    """Everything a run needs. Give ``ckpt``, or ``arch`` (and ``arch_args``) for a random init."""

    out: Path
    data: DataSpec
    ckpt: Path | None = None
    arch: str | None = None
    arch_args: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    schedule: Schedule = field(default_factory=Schedule)
    seed: int = 0
    workers: int = 2
    threads: int | None = None
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"."""
    label: str | None = None
    flip: bool | None = None
    """Random horizontal flips of training images; None: the protocol's default (``FLIP_DEFAULT``)."""
    progress: bool = True
    resume: bool = False
    """Require a previous state in ``out`` (without it, a matching state is still picked up)."""


def _flips(cfg: LinearConfig, protocol: Protocol) -> bool:
    if protocol.augment and cfg.flip is False:
        raise UserError(f"the {protocol.name} protocol always flips its training crops; drop --no-flip")
    return FLIP_DEFAULT[protocol.name] if cfg.flip is None else cfg.flip


def _identity(cfg: LinearConfig, source: TrunkSource, protocol: Protocol, splits: LabelledSplits) -> dict[str, Any]:
    """What must be equal for a saved state to be continued (the epoch count may grow)."""
    data = {k: v for k, v in splits.description.items() if k not in ("root", "train_path", "val_path")}
    flips = {"flip": True} if protocol.caches_features and _flips(cfg, protocol) else {}  # absent in older states
    return {
        **flips,
        "arch": source.arch,
        "arch_args": source.arch_args,
        "checkpoint_sha256": source.checkpoint["sha256"] if source.checkpoint else None,
        "protocol": protocol.name,
        "schedule": {k: v for k, v in cfg.schedule.as_dict().items() if k != "epochs"},
        "seed": cfg.seed,
        "normalization": source.normalization,
        "dataset": data,
    }


def _log(cfg: LinearConfig, message: str) -> None:
    if cfg.progress:
        tqdm.write(message, file=sys.stderr)


def _epoch_line(epoch: int, epochs: int, lr: float, train: dict, val: dict | None) -> str:
    parts = [f"epoch {epoch}/{epochs} lr {lr:.2g}"]
    parts.append("train top1 " + " ".join(f"{k} {v['top1']:.1f}" for k, v in train.items()))
    if val:
        parts.append("val top1 " + " ".join(f"{k} {v['top1']:.1f}" for k, v in val.items()))
    return " | ".join(parts)


def run_linear(cfg: LinearConfig) -> dict[str, Any]:
    """Run (or continue) the linear probes of ``cfg`` and write results.json, results.md and accuracy.png."""
    started = time.perf_counter()
    timer = Timer()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    schedule = cfg.schedule
    if schedule.epochs < 1 or schedule.batch_size < 2 or schedule.lr <= 0:
        raise UserError("--epochs must be >= 1, --batch-size >= 2 and --lr > 0")
    device = choose_device(cfg.device)

    t = time.perf_counter()
    source = load_source(cfg.ckpt, cfg.arch, sized_for_protocol(cfg.arch, cfg.arch_args, cfg.protocol), cfg.seed)
    protocol = check_protocol(
        source.arch, cfg.protocol or default_protocol(source.arch, source.arch_args) or "", source.arch_args
    )
    trunk = freeze_for_probing(source.trunk)
    splits = open_splits(cfg.data)
    torch.manual_seed(derive_seed(cfg.seed, "probes"))
    probes = build_probes(trunk, protocol, len(splits.classes))
    trunk, probes = trunk.to(device), probes.to(device)
    optimizer = torch.optim.SGD(
        probes.parameters(), lr=schedule.lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay
    )
    identity = _identity(cfg, source, protocol, splits)
    prepare_out(cfg.out, STATE_FILE, "mono-probe")
    state = load_state(cfg.out / STATE_FILE, STATE_FORMAT, identity, schedule.epochs, cfg.resume)
    start_epoch, history, final = 0, [], None
    if state is not None:
        probes.load_state_dict(state["probes"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history, final = state["epoch"], list(state["history"]), state.get("final")
        _log(cfg, f"resuming {cfg.out} after epoch {start_epoch}")
    timer.add("setup", t)

    normalize = Normalizer(**source.normalization, device=device)
    done = final is not None and final.get("epoch") == schedule.epochs
    if not done:
        runner = _run_cached if protocol.caches_features else _run_streaming
        final = runner(
            cfg, protocol, trunk, probes, optimizer, splits, normalize, start_epoch, history, identity, timer
        )

    results = _results(
        cfg,
        source,
        protocol,
        probes,
        splits,
        history,
        final,
        timer,
        started,
        resumed_from=start_epoch if state is not None else None,
    )
    t = time.perf_counter()
    write_run_reports(cfg.out, results)
    timer.add("reports", t)
    results["timing"]["stages_s"] = timer.stages
    write_run_reports(cfg.out, results, json_only=True)
    return results


def _save_state(
    cfg: LinearConfig, identity: dict, epoch: int, probes: ProbeSet, optimizer, history: list, final: dict | None
) -> None:
    atomic_torch_save(
        {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "identity": identity,
            "epoch": epoch,
            "probes": probes.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history,
            "final": final,
        },
        cfg.out / STATE_FILE,
    )


def _run_cached(
    cfg, protocol, trunk, probes, optimizer, splits, normalize, start_epoch, history, identity, timer
) -> dict:
    """The cifar protocol: decode once, compute frozen features once, train every probe on the cache."""
    schedule = cfg.schedule
    # decode both splits before the feature cache exists, so the decoding workers fork from a small process
    images = {}
    for split, dataset in (("train", splits.train), ("val", splits.val)):
        t = time.perf_counter()
        images[split] = decode_split(
            dataset, protocol.input_size, cfg.workers, desc=f"decode {split}", progress=cfg.progress
        )
        timer.add(f"decode_{split}", t)
    flips = _flips(cfg, protocol)
    if flips:  # a flipped image's features are cached beside the original's; each epoch picks one per image
        images["train_flipped"] = images["train"].flip(-1)
    cached = {}
    for split in list(images):
        t = time.perf_counter()
        cached[split] = extract_features(
            trunk, probes, images.pop(split), normalize, desc=f"features {split}", progress=cfg.progress
        )
        timer.add(f"features_{split}", t)
    cache_bytes = sum(f.numel() * f.element_size() for feats in cached.values() for f in feats.values())
    timer.stages["feature_cache_mib"] = round(cache_bytes / 2**20, 1)
    cached = _on_gpu_if_it_fits(cached, cache_bytes, normalize.device)

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
        generator = seeded_generator(cfg.seed, "order", epoch)
        t = time.perf_counter()
        train = train_epoch_cached(
            probes,
            cached["train"],
            splits.train_labels,
            optimizer,
            schedule.batch_size,
            generator,
            progress=cfg.progress,
            flipped=cached.get("train_flipped"),
        )
        timer.add("train", t)
        t = time.perf_counter()
        val = evaluate_cached(probes, cached["val"], splits.val_labels)
        timer.add("eval", t)
        history.append({"epoch": epoch + 1, "lr": lr, "train": train, "val": val})
        # the reported accuracy is the last epoch's, never the best one (that would select on the val set)
        final = {"epoch": epoch + 1, "layers": val} if epoch + 1 == schedule.epochs else None
        _save_state(cfg, identity, epoch + 1, probes, optimizer, history, final)
        _log(cfg, _epoch_line(epoch + 1, schedule.epochs, lr, train, val))
    return {"epoch": schedule.epochs, "layers": history[-1]["val"]}


def _on_gpu_if_it_fits(cached: dict, cache_bytes: int, device: torch.device) -> dict:
    """The feature cache moved into the GPU's memory when it fits with room to spare (half the free memory):
    every probe step then indexes it there instead of copying a batch from the host."""
    if device.type != "cuda" or cache_bytes > torch.cuda.mem_get_info(device)[0] // 2:
        return cached
    return {split: {name: f.to(device) for name, f in feats.items()} for split, feats in cached.items()}


def _run_streaming(
    cfg, protocol, trunk, probes, optimizer, splits, normalize, start_epoch, history, identity, timer
) -> dict:
    """The imagenet protocol: augmented crops through the trunk every epoch, then a 10-crop evaluation."""
    schedule = cfg.schedule
    with_transform(splits.train, train_transform(protocol))
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
        torch.manual_seed(derive_seed(cfg.seed, "augment", epoch))
        generator = seeded_generator(cfg.seed, "order", epoch)
        loader = make_loader(
            splits.train,
            schedule.batch_size,
            cfg.workers,
            shuffle=True,
            generator=generator,
            pin_memory=normalize.device.type == "cuda",
        )
        t = time.perf_counter()
        train = train_epoch_streaming(
            trunk, probes, iterate(loader), normalize, optimizer, total=len(loader), progress=cfg.progress
        )
        timer.add("train", t)
        history.append({"epoch": epoch + 1, "lr": lr, "train": train})
        _save_state(cfg, identity, epoch + 1, probes, optimizer, history, None)
        _log(cfg, _epoch_line(epoch + 1, schedule.epochs, lr, train, None))

    with_transform(splits.val, eval_transform(protocol))
    crops_per_batch = 10 if protocol.ten_crop else 1
    loader = make_loader(
        splits.val,
        max(1, schedule.batch_size // crops_per_batch),
        cfg.workers,
        pin_memory=normalize.device.type == "cuda",
    )
    t = time.perf_counter()
    val = evaluate_streaming(
        trunk,
        probes,
        iterate(loader),
        normalize,
        total=len(loader),
        progress=cfg.progress,
        desc="eval (10 crops)" if protocol.ten_crop else "eval",
    )
    timer.add("eval", t)
    final = {"epoch": schedule.epochs, "layers": val}
    _save_state(cfg, identity, schedule.epochs, probes, optimizer, history, final)
    _log(cfg, "final val top1 " + " ".join(f"{k} {v['top1']:.2f}" for k, v in val.items()))
    return final


def _results(
    cfg,
    source: TrunkSource,
    protocol: Protocol,
    probes: ProbeSet,
    splits: LabelledSplits,
    history: list,
    final: dict,
    timer: Timer,
    started: float,
    resumed_from: int | None,
) -> dict[str, Any]:
    layers = {name: {"top1": round(m["top1"], 4), "top5": round(m["top5"], 4)} for name, m in final["layers"].items()}
    return {
        "layers": layers,
        "label": cfg.label or source.default_label,
        "config": {
            "arch": source.arch,
            "arch_args": source.arch_args,
            "random_init": source.checkpoint is None,
            "protocol": protocol.name,
            "input_size": protocol.input_size,
            "resize": protocol.resize,
            "augment": protocol.augment,
            "flip": _flips(cfg, protocol),
            "ten_crop": protocol.ten_crop,
            "feature_dims": {name: probe.in_features for name, probe in probes.probes.items()},
            "schedule": cfg.schedule.as_dict(),
            "seed": cfg.seed,
            "normalization": source.normalization,
            "workers": cfg.workers,
            "threads": torch.get_num_threads(),
            "device": str(next(probes.parameters()).device),
        },
        "checkpoint": source.checkpoint,
        "dataset": splits.description,
        "history": history,
        "timing": {
            "wall_s": round(time.perf_counter() - started, 2),
            "resumed_from_epoch": resumed_from,
            "peak_rss_mib": peak_rss_mib(),
            "stages_s": dict(timer.stages),
        },
        "environment": environment(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
