"""Small in-process helpers for generator tests."""

from __future__ import annotations

from pathlib import Path

from mono.generator.cli import main as mono_gen_main


def mono_gen(*args) -> None:
    """Run mono-gen in this process (quiet, one worker unless given); raise on a non-zero exit."""
    argv = [str(a) for a in args]
    if "--workers" not in argv and "-j" not in argv:
        argv += ["--workers", "1"]
    try:
        mono_gen_main(argv + ["--quiet"])
    except SystemExit as exc:
        if exc.code:
            raise AssertionError(f"mono-gen {' '.join(argv)} exited with {exc.code}") from None


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(root).glob("train-*.tar"))}
