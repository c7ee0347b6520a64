"""Training state on disk: RUN_DIR/checkpoint.pt in the probes' checkpoint format, plus what resuming needs.

The trunk goes where `mono-probe` reads it; the method's heads, optimisers, loss scaler and any trainer
state go into the checkpoint's `extra` dict, with the architecture arguments of every module that states
them (e.g. a GAN's generator, which `mono-train sample` rebuilds from the checkpoint alone). A checkpoint is
written after every epoch (atomically), so a run killed at any moment resumes from its last completed epoch
with `--resume`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from learning import atomic
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
        "architectures": architectures(modules or {}),
        "optimizers": {name: o.state_dict() for name, o in (optimizers or {}).items()},
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "state": state or {},
    }
    path = Path(run_dir) / CHECKPOINT
    save_checkpoint(
        path,
        core,
        arch=core.arch,
        arch_args=core.arch_args,
        normalization=normalization,
        method=method,
        dataset_manifest_sha256=dataset_sha256,
        epoch=epoch,
        meta={"args": _plain(args)},
        extra=extra,
    )
    if keep_copy:
        copy = path.with_name(f"checkpoint-epoch{epoch:04d}.pt")
        atomic.write_bytes(copy, path.read_bytes())
    return path


def architectures(modules: dict[str, nn.Module]) -> dict[str, dict]:
    """`{name: {"arch", "arch_args"}}` for the modules that describe themselves (an `arch` name and the
    `arch_args` that rebuild them), so a checkpoint can rebuild them without the run's command line."""
    out = {}
    for name, module in modules.items():
        core = unwrap(module)
        if hasattr(core, "arch") and hasattr(core, "arch_args"):
            out[name] = {"arch": core.arch, "arch_args": dict(core.arch_args)}
    return out


def non_finite(modules: dict[str, nn.Module]) -> str | None:
    """The name of the first module whose parameters or buffers hold NaN or infinity, or None."""
    for name, module in modules.items():
        for tensor in unwrap(module).state_dict().values():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return name
    return None


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
            raise UserError(
                f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it or choose another --out"
            )
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
        raise UserError(
            f"--resume: {checkpoint.path} holds {checkpoint.arch} {checkpoint.arch_args}, "
            f"this run builds {core.arch} {core.arch_args}"
        )
    extra = checkpoint.extra or {}
    stored = extra.get("architectures") or {}
    for name, built in architectures(modules or {}).items():
        if name in stored and stored[name] != built:
            raise UserError(
                f"--resume: {checkpoint.path} holds a {name} {stored[name]['arch_args']}, "
                f"this run builds {built['arch_args']}"
            )
    core.load_state_dict(checkpoint.state_dict)
    for name, module in (modules or {}).items():
        if name not in (extra.get("modules") or {}):
            raise UserError(f"--resume: {checkpoint.path} holds no {name} weights")
        unwrap(module).load_state_dict(extra["modules"][name])
    for name, optimizer in (optimizers or {}).items():
        optimizer.load_state_dict(extra["optimizers"][name])
    if scaler is not None and extra.get("scaler"):
        scaler.load_state_dict(extra["scaler"])
    return dict(extra.get("state") or {})
