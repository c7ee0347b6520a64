"""Run the tools one step at a time, as a user would type them, and skip what is already done.

Each step is a `python -m <tool> ...` command. Data and learning meet only through files (datasets,
checkpoints, probe results), so the reproduction imports none of the tools; every command it ran is
appended to RUN_DIR/commands.sh, which reruns the whole experiment by hand.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mono.learning import atomic
from mono.learning.errors import UserError

# Console names of the modules, for commands.sh.
CONSOLE = {
    "mono.generator.cli": "mono-gen",
    "mono.generator.shards_cli": "mono-shards",
    "mono.trainers.cli": "mono-train",
    "mono.probes.cli": "mono-probe",
}


class Pipeline:
    def __init__(self, run_dir: Path, quiet: bool = False):
        self.run_dir = run_dir
        self.quiet = quiet
        self.commands = run_dir / "commands.sh"
        # Wall seconds of every step that succeeded, kept across reruns: a run that fails later (or is killed)
        # still leaves the times of the steps it finished to the report of the run that completes it.
        self.timings_file = run_dir / "timings.json"
        self.timings: dict[str, float] = _read_timings(self.timings_file)
        if not self.commands.exists():
            self.commands.write_text(
                "#!/usr/bin/env bash\n# Every command mono-repro ran, in order.\nset -euo pipefail\n"
            )

    def run(self, name: str, module: str, args: list, done: Callable[[], bool] | None = None) -> None:
        """Run one tool unless `done()` says its output is complete; a failure stops the reproduction."""
        words = [str(a) for a in args]
        shown = shlex.join([CONSOLE.get(module, f"python -m {module}"), *words])
        if done is not None and done():
            self._say(f"[done] {name}")
            return
        self._say(f"[run ] {name}: {shown}")
        with open(self.commands, "a") as f:
            f.write(shown + "\n")
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", module, *words], stdout=subprocess.DEVNULL if self.quiet else None
        )
        if result.returncode != 0:
            raise UserError(
                f"step '{name}' failed (exit {result.returncode}); fix the cause and rerun mono-repro to continue"
            )
        self.timings[name] = round(time.monotonic() - started, 1)
        atomic.write_text(self.timings_file, json.dumps(self.timings, indent=2) + "\n")

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"mono-repro: {text}", file=sys.stderr, flush=True)


def _read_timings(path: Path) -> dict[str, float]:
    """The step times an earlier run recorded; none when the file is missing or is not a table of numbers."""
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {str(k): float(v) for k, v in recorded.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
