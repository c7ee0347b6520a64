"""Run the tools one step at a time, as a user would type them, and skip what is already done.

Each step is a `python -m <tool> ...` command. Data and learning meet only through files (datasets,
checkpoints, probe results), so the reproduction imports none of the tools; every command it ran is
appended to RUN_DIR/commands.sh, which reruns the whole experiment by hand.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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
        self.timings: dict[str, float] = {}
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
        self.timings[name] = round(time.monotonic() - started, 1)
        if result.returncode != 0:
            raise UserError(
                f"step '{name}' failed (exit {result.returncode}); fix the cause and rerun mono-repro to continue"
            )

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"mono-repro: {text}", file=sys.stderr, flush=True)
