"""Run logs: a CSV file anyone can plot, TensorBoard events, and a progress bar with images/s."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from learning import atomic


class RunLog:
    """Appends metric rows to RUN_DIR/metrics.csv and RUN_DIR/tensorboard/ (main process only).

    The CSV columns are fixed when the log is made, so a resumed run appends to the same table.
    """

    def __init__(
        self,
        run_dir: Path,
        columns: list[str],
        enabled: bool = True,
        resume_step: int | None = None,
        prepare: Callable[[], None] | None = None,
    ):
        """`prepare` runs once, just before the first file is written (it makes the run directory).
        `resume_step`: rows after it, left by an earlier run, are dropped when the log opens (0: all)."""
        self.enabled = enabled
        self.columns = ["epoch", "step", "time"] + list(columns)
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.csv"
        self._resume_step = resume_step
        self._prepare = prepare
        self._writer = None
        self._started = time.time()

    def open(self) -> None:
        """Create the files (once); until then the run has written nothing."""
        if not self.enabled or self._writer is not None:
            return
        if self._prepare is not None:
            self._prepare()
        new = not self.path.exists()
        if not new and self._resume_step is not None:
            self._truncate_after(self._resume_step)
        self._file = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        if new:
            self._csv.writeheader()
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self._resume_step)

    def _truncate_after(self, step: int) -> None:
        """Drop rows a killed or failed run wrote after its last checkpoint (all of them when it left none), so
        the log of the run that continues has no duplicates; rewritten atomically."""
        kept = []
        if step > 0:
            with open(self.path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(kept)
        atomic.write_text(self.path, text.getvalue())

    def log(self, epoch: int, step: int, **metrics: float) -> None:
        if not self.enabled:
            return
        self.open()
        row = {"epoch": epoch, "step": step, "time": round(time.time() - self._started, 3)}
        row.update({k: (float(v) if v is not None else math.nan) for k, v in metrics.items()})
        self._csv.writerow(row)
        self._file.flush()
        for name, value in metrics.items():
            if value is not None:
                self._writer.add_scalar(name, float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._file.close()
            self._writer.close()
            self._writer = None


class Progress:
    """A per-epoch progress bar showing images/s and the latest losses (main process only)."""

    def __init__(self, total: int, epoch: int, epochs: int, enabled: bool):
        self.bar = tqdm(
            total=total,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
            disable=not enabled,
            dynamic_ncols=True,
            leave=False,
        )
        self.started = time.monotonic()
        self.images = 0

    def update(self, images: int, **metrics: float) -> None:
        self.images += images
        rate = self.images / max(time.monotonic() - self.started, 1e-9)
        self.bar.set_postfix({**{k: f"{v:.4g}" for k, v in metrics.items()}, "img/s": f"{rate:,.0f}"}, refresh=False)
        self.bar.update(1)

    @property
    def images_per_second(self) -> float:
        return self.images / max(time.monotonic() - self.started, 1e-9)

    def close(self) -> None:
        self.bar.close()


class Means:
    """Running means of per-step values (already averaged over ranks); each name keeps its own count,
    since some values are not produced every step (e.g. a GAN's generator loss)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, **values: float) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {name: total / self.counts[name] for name, total in self.sums.items()}
