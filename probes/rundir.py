"""What every resumable run directory needs: a state file that is continued only by the same
configuration, stage timings and a description of the machine for results.json."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch
import torchvision

from mono.learning.errors import UserError
from mono.probes import __version__

__all__ = ["Timer", "environment", "load_state", "peak_rss_mib", "prepare_out"]


def prepare_out(out: Path, state_file: str, tool: str) -> None:
    """Create ``out``, refusing a file or a non-empty directory that holds no ``state_file`` of ``tool``."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / state_file).exists():
        raise UserError(f"--out {out} is not empty and holds no {tool} run; choose a new directory")
    out.mkdir(parents=True, exist_ok=True)


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))


def load_state(
    path: Path, state_format: str, identity: dict[str, Any], epochs: int, require: bool
) -> dict[str, Any] | None:
    """The saved state at ``path`` if it was written by the same configuration (``identity``), else a
    UserError naming what differs; None when there is none and ``require`` is false."""
    out = path.parent
    if not path.exists():
        if require:
            raise UserError(f"nothing to resume: {path} does not exist")
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
        raise UserError(f"cannot read the saved state {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or state.get("format") != state_format:
        raise UserError(f"{path} is not a {state_format} file")
    diff = _differences(state.get("identity") or {}, identity)
    if diff:
        raise UserError(
            f"{out} holds a run with a different configuration (differs in: {', '.join(diff)}); use another --out"
        )
    if state["epoch"] > epochs:
        raise UserError(f"{out} has already trained {state['epoch']} epochs, more than --epochs {epochs}")
    return state


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (platform.processor() would fork a subprocess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def peak_rss_mib() -> dict[str, float]:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"main_process": round(self_kib / 1024, 1), "largest_worker": round(children_kib / 1024, 1)}


def environment() -> dict[str, Any]:
    """Versions and machine, for results.json."""
    return {
        "mono_probe": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }


class Timer:
    """Seconds spent per stage, summed over calls."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    def add(self, stage: str, since: float) -> None:
        self.stages[stage] = round(self.stages.get(stage, 0.0) + time.perf_counter() - since, 3)
