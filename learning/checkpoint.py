"""mono's checkpoint format: the contract between the trainers, which write it, and the probes, which read it.

One file per checkpoint, written with :func:`torch.save` and read back with ``torch.load(weights_only=True)``
(no code runs on load), so every stored value is a tensor, dict, list, tuple, str, int, float, bool or None.
The file holds the architecture and its arguments, the trunk's weights, the input normalisation the trunk was
trained with (the probes apply the same), the training method, the training set's manifest hash, the epoch,
free-form metadata, and an ``extra`` dict for trainer state (optimizer, heads, generator). Format and field
reference: docs/checkpoints.md.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from mono.learning import atomic
from mono.learning.errors import UserError
from mono.learning.models import build_trunk, canonical_arch_args, stored_arch_args

__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "file_sha256",
    "load_checkpoint",
    "load_trunk",
    "save_checkpoint",
    "validate_normalization",
]

FORMAT = "mono-checkpoint"
VERSION = 1
"""Bumped when a field changes meaning or a required field is added; readers accept versions <= theirs."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Checkpoint:
    """A validated checkpoint: the weights match ``arch``/``arch_args`` and every field has its type."""

    path: Path
    arch: str
    arch_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    normalization: dict[str, list[float]]
    method: str
    dataset_manifest_sha256: str | None
    epoch: int
    meta: dict[str, Any]
    extra: dict[str, Any] | None = field(default=None, repr=False)
    version: int = VERSION


def validate_normalization(normalization: Any) -> dict[str, list[float]]:
    """``{"mean": [3 floats], "std": [3 positive floats]}`` for images scaled to [0, 1]; UserError otherwise."""
    if not isinstance(normalization, Mapping) or set(normalization) != {"mean", "std"}:
        raise UserError(f"normalization must be {{'mean': [3 floats], 'std': [3 floats]}}, not {normalization!r}")
    out = {}
    for key in ("mean", "std"):
        values = normalization[key]
        if (
            not isinstance(values, (list, tuple))
            or len(values) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        ):
            raise UserError(f"normalization {key} must be 3 finite numbers, not {values!r}")
        out[key] = [float(v) for v in values]
    if min(out["std"]) <= 0:
        raise UserError(f"normalization std must be positive, not {out['std']}")
    return out


def _check_storable(value: Any, where: str) -> None:
    """Reject values that ``torch.load(weights_only=True)`` could not read back, naming where they are."""
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_storable(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint {where} has a key of type {type(key).__name__}; use str or int keys")
            _check_storable(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"checkpoint {where} is a {type(value).__name__}; store only tensors, dicts, lists, "
        f"tuples, str, int, float, bool or None"
    )


def _weights_mismatch(arch: str, arch_args: Mapping[str, Any], state_dict: Mapping[str, Any]) -> str | None:
    """Why ``state_dict`` does not fit ``arch``, in one line, or None when it fits."""
    with torch.device("meta"):
        expected = build_trunk(arch, **arch_args).state_dict()
    problems = []
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
    for key, ref in expected.items():
        got = state_dict.get(key)
        if got is None:
            continue
        if not isinstance(got, torch.Tensor):
            problems.append(f"{key} is not a tensor")
        elif got.shape != ref.shape:
            problems.append(f"{key} has shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
        if len(problems) >= 3:
            break
    return "; ".join(problems) if problems else None


def save_checkpoint(
    path: str | os.PathLike,
    trunk: nn.Module,
    *,
    arch: str,
    arch_args: Mapping[str, Any],
    normalization: Mapping[str, Any],
    method: str,
    dataset_manifest_sha256: str | None,
    epoch: int,
    meta: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``trunk`` and its provenance to ``path`` atomically (temporary file, then rename).

    ``dataset_manifest_sha256`` is the training set manifest's hash (None if there is none, e.g. a random
    init); ``meta`` is free-form (JSON-like); ``extra`` holds trainer state and is returned as is on load.
    Raises UserError for values a user supplies (normalisation, a trunk that does not match ``arch``) and
    TypeError for values that could not be read back with ``weights_only=True``.
    """
    path = Path(path)
    arch_args = canonical_arch_args(arch, **dict(arch_args))
    normalization = validate_normalization(normalization)
    if not isinstance(method, str) or not method:
        raise UserError(f"method must be a non-empty string, not {method!r}")
    if dataset_manifest_sha256 is not None and not _SHA256.fullmatch(str(dataset_manifest_sha256)):
        raise UserError(
            f"dataset_manifest_sha256 must be 64 lowercase hex digits or None, not {dataset_manifest_sha256!r}"
        )
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise UserError(f"epoch must be a non-negative int, not {epoch!r}")
    state_dict = {k: v.detach().cpu().clone() for k, v in trunk.state_dict().items()}
    mismatch = _weights_mismatch(arch, arch_args, state_dict)
    if mismatch:
        raise UserError(f"the trunk does not match {arch} {arch_args}: {mismatch}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "arch_args": arch_args,
        "trunk": state_dict,
        "normalization": normalization,
        "method": method,
        "dataset_manifest_sha256": dataset_manifest_sha256,
        "epoch": epoch,
        "meta": dict(meta),
        "extra": None if extra is None else dict(extra),
    }
    _check_storable(payload["meta"], "meta")
    _check_storable(payload["extra"], "extra")
    atomic_torch_save(payload, path)
    return path


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through ``mono.learning.atomic.replacing``: readers never see half a file.

    A full disk is an OSError naming ``path`` (torch's writer reports it as a RuntimeError about zip
    offsets, with the OSError only as its context), which the command-line tools report in one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic.replacing(path) as f:
            torch.save(obj, f)
    except RuntimeError as exc:
        cause = exc.__cause__ or exc.__context__
        if not isinstance(cause, OSError):
            raise
        raise type(cause)(cause.errno, cause.strerror or str(cause), str(path)) from None


def _require(payload: Mapping[str, Any], key: str, types: type | tuple[type, ...], path: Path) -> Any:
    if key not in payload:
        raise UserError(f"{path}: mono checkpoint lacks the field {key!r}")
    value = payload[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise UserError(f"{path}: field {key!r} is a {type(value).__name__}, which this format does not allow")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint; a missing or foreign file, an unknown arch or mismatched weights
    raise :class:`UserError` with one clear line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise UserError(f"checkpoint is not a file: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means "not one of ours"
        raise UserError(
            f"{path} is not a mono checkpoint (torch.load(weights_only=True) failed: {_load_failure(exc)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a mono checkpoint (no format field {FORMAT!r}); see docs/checkpoints.md")
    version = _require(payload, "version", int, path)
    if version > VERSION:
        raise UserError(f"{path} has checkpoint format version {version}; this mono reads up to {VERSION}")
    arch = _require(payload, "arch", str, path)
    arch_args = _require(payload, "arch_args", dict, path)
    try:
        arch_args = stored_arch_args(arch, arch_args)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    state_dict = _require(payload, "trunk", dict, path)
    mismatch = _weights_mismatch(arch, arch_args, state_dict)
    if mismatch:
        raise UserError(f"{path}: weights do not match {arch} {arch_args}: {mismatch}")
    try:
        normalization = validate_normalization(_require(payload, "normalization", dict, path))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    manifest = payload.get("dataset_manifest_sha256")
    if manifest is not None and not (isinstance(manifest, str) and _SHA256.fullmatch(manifest)):
        raise UserError(f"{path}: dataset_manifest_sha256 is not a sha256 hex digest")
    epoch = _require(payload, "epoch", int, path)
    extra = payload.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise UserError(f"{path}: field 'extra' must be a dict or None")
    return Checkpoint(
        path=path,
        arch=arch,
        arch_args=arch_args,
        state_dict=state_dict,
        normalization=normalization,
        method=_require(payload, "method", str, path),
        dataset_manifest_sha256=manifest,
        epoch=epoch,
        meta=_require(payload, "meta", dict, path),
        extra=extra,
        version=version,
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _load_failure(exc: BaseException) -> str:
    """Why torch.load refused a file, as one complete line: the unpickler's own sentence when there is one
    (which global it would not run), else the message's first line, whole. torch's weights-only message is
    a page of advice whose first line is cut mid-sentence by any length limit."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip()
            end = reason.find(". ")
            return reason[: end + 1] if end >= 0 else reason
    if not lines:
        return type(exc).__name__
    return lines[0] if " " in lines[0] else f"{type(exc).__name__}: {lines[0]}"


def load_trunk(path: str | os.PathLike) -> tuple[nn.Module, Checkpoint]:
    """Load a checkpoint and build its trunk with the stored weights, in eval mode (call ``.train()`` to
    continue training it)."""
    ckpt = load_checkpoint(path)
    trunk = build_trunk(ckpt.arch, **ckpt.arch_args)
    trunk.load_state_dict(ckpt.state_dict, strict=True)
    return trunk.eval(), ckpt


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, to pin exactly which checkpoint a result came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
