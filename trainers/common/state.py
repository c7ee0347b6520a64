"""Training state on disk: RUN_DIR/checkpoint.pt in the probes' checkpoint format, plus what resuming needs.

The trunk goes where `mono-probe` reads it; the method's heads, optimisers, loss scaler and any trainer
state go into the checkpoint's `extra` dict. A checkpoint is written after every epoch (atomically), so a
run killed at any moment resumes from its last completed epoch with `--resume`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from learning.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from learning.errors import UserError

CHECKPOINT = "checkpoint.pt"


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def save_state(
    run_dir: Path,
    *,
    trunk: nn.Module,
    normalization: dict,
    method: str,
    dataset_sha256: str | None,
    epoch: int,
    args: dict,
    modules: dict[str, nn.Module] | None = None,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    state: dict[str, Any] | None = None,
    keep_copy: bool = False,
) -> Path:
    """Write the state after `epoch` completed epochs to RUN_DIR/checkpoint.pt (and a numbered copy if asked)."""
    core = unwrap(trunk)
    extra = {
        "modules": {name: unwrap(m).state_dict() for name, m in (modules or {}).items()},
        "optimizers": {name: o.state_dict() for name, o in (optimizers or {}).items()},
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "state": state or {},
    }
    path = Path(run_dir) / CHECKPOINT
    save_checkpoint(
        path, core, arch=core.arch, arch_args=core.arch_args, normalization=normalization, method=method,
        dataset_manifest_sha256=dataset_sha256, epoch=epoch, meta={"args": _plain(args)}, extra=extra,
    )  # fmt: skip
    if keep_copy:
        copy = path.with_name(f"checkpoint-epoch{epoch:04d}.pt")
        copy.write_bytes(path.read_bytes())
    return path


def _plain(args: dict) -> dict:
    """Arguments as storable values (paths become strings)."""
    out = {}
    for key, value in args.items():
        if isinstance(value, Path):
            value = str(value)
        if value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [str(v) if isinstance(v, Path) else v for v in value]
        else:
            out[key] = str(value)
    return out


def find_resume(run_dir: Path, resume: bool) -> Checkpoint | None:
    """The checkpoint to continue from, or None for a fresh run; refuses to overwrite a run silently."""
    path = Path(run_dir) / CHECKPOINT
    if not resume:
        if path.exists():
            raise UserError(f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it or choose another --out")
        return None
    if not path.exists():
        raise UserError(f"--resume: no {CHECKPOINT} in {run_dir} to continue from")
    return load_checkpoint(path)


def restore_state(
    checkpoint: Checkpoint,
    *,
    trunk: nn.Module,
    method: str,
    dataset_sha256: str | None,
    modules: dict[str, nn.Module] | None = None,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load a checkpoint's weights and optimiser state into a freshly built run; returns its trainer state."""
    if checkpoint.method != method:
        raise UserError(f"--resume: {checkpoint.path} is a {checkpoint.method} run, not {method}")
    if dataset_sha256 and checkpoint.dataset_manifest_sha256 not in (None, dataset_sha256):
        raise UserError(f"--resume: {checkpoint.path} was trained on another dataset (manifest hash differs)")
    core = unwrap(trunk)
    if (checkpoint.arch, checkpoint.arch_args) != (core.arch, core.arch_args):
        raise UserError(f"--resume: {checkpoint.path} holds {checkpoint.arch} {checkpoint.arch_args}, "
                        f"this run builds {core.arch} {core.arch_args}")  # fmt: skip
    extra = checkpoint.extra or {}
    core.load_state_dict(checkpoint.state_dict)
    for name, module in (modules or {}).items():
        unwrap(module).load_state_dict(extra["modules"][name])
    for name, optimizer in (optimizers or {}).items():
        optimizer.load_state_dict(extra["optimizers"][name])
    if scaler is not None and extra.get("scaler"):
        scaler.load_state_dict(extra["scaler"])
    return dict(extra.get("state") or {})
