"""Generate a dataset directory: plan the shards, render the missing ones in parallel, finalise.

Resuming is a matter of rendering the shards that are not there yet: a shard file only appears,
by rename, once complete. The directory's run state (`.mono-gen/`) pins the configuration so that a
different configuration is refused instead of mixed in. The .beton is made from the finished shards,
so it resumes the same way: a run killed while writing it writes it again.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import atomic, export, lock, manifest
from .config import DatasetConfig
from .dataset_dir import STATE_DIR, DatasetDir
from .digest import file_sha256
from .errors import UserError
from .manifest import FFCV, FOLDER, WEBDATASET, formats_of
from .render import Renderer
from .samples import iter_shards
from .shardwriter import ShardRecord, SourceBank, init_worker_threads, write_shard


@dataclass
class Outcome:
    complete: bool
    generated: int  # shards rendered by this run
    present: int  # shards on disk now
    total: int
    seconds: float
    formats: tuple[str, ...] = (WEBDATASET,)  # what the directory holds once complete
    changed: bool = False  # whether this run wrote anything


def generate(
    config: DatasetConfig,
    root: Path,
    command: str,
    formats: tuple[str, ...] = (WEBDATASET,),
    shards: range | None = None,
    workers: int = 1,
    progress: bool = True,
    cache_bytes: int = 2 << 30,
    on_start: Callable[[int], None] = lambda pending: None,
) -> Outcome:
    """Render the missing shards, then write the other formats and the manifest once all shards exist.

    `formats` are added to those the directory already holds, never removed. Shards are the
    intermediate of the .beton: without webdataset among the formats they are deleted at the end.
    """
    out = DatasetDir(root)
    total = config.output.num_shards
    shards = range(total) if shards is None else shards
    if shards.start < 0 or shards.stop > total or shards.start >= shards.stop:
        raise UserError(f"--shards {shards.start}:{shards.stop} is outside the dataset's {total} shards (0:{total})")
    with lock.hold(out.root, "mono-gen") as created:
        return _generate(config, out, command, formats, shards, workers, progress, cache_bytes, on_start, created)


def _generate(config, out, command, formats, shards, workers, progress, cache_bytes, on_start, created) -> Outcome:
    root, total = out.root, config.output.num_shards
    existing = _prepare(out, config, created)
    wanted = set(formats) | set(formats_of(existing) if existing else ())
    formats = tuple(f for f in (WEBDATASET, FFCV) if f in wanted)
    started = time.monotonic()
    generated, changed = 0, False
    try:  # from here on, an interruption cleans up: a run with nothing to show leaves nothing behind
        pending = [j for j in shards if not out.shard(j).exists()] if _needs_shards(out, formats, existing) else []
        on_start(len(pending))
        if pending:
            generated = _run(config, out, pending, workers, progress, cache_bytes)
        present = sum(out.shard(j).exists() for j in range(total))
        complete = present == total or not _needs_shards(out, formats, existing)
        if complete:
            changed = _finalise(config, out, command, formats, existing, pending, progress)
            present = sum(out.shard(j).exists() for j in range(total))
    except BaseException as exc:
        _clean_up(out, created)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise UserError(f"{root}: no space left (or file size limit reached) while writing the dataset") from None
        if isinstance(exc, PermissionError):
            raise UserError(f"{root}: permission denied while writing the dataset") from None
        raise
    return Outcome(complete, generated, present, total, time.monotonic() - started, formats, changed or generated > 0)


def _needs_shards(out: DatasetDir, formats: tuple[str, ...], existing: dict | None) -> bool:
    """Shards are needed as output, or as the source of a .beton not yet made."""
    return WEBDATASET in formats or not _beton_done(out, existing)


def _beton_done(out: DatasetDir, existing: dict | None) -> bool:
    return existing is not None and FFCV in formats_of(existing) and out.beton.exists()


def _prepare(out: DatasetDir, config: DatasetConfig, created: bool) -> dict | None:
    """Reopen the directory (locked, and made by the lock if `created`); refuse one that holds something else.

    Returns its manifest if the dataset was complete already.
    """
    root = out.root
    existing = None
    if out.manifest.exists():
        existing = manifest.load(root)
        if FOLDER in formats_of(existing):
            raise UserError(f"{root}: holds an exported folder, not a dataset made by mono-gen; choose another --out")
        _check_same(config, existing["config_sha256"], out.manifest)
    elif out.state_config.exists() and not _holds_output(out):  # run state with nothing made: start afresh
        shutil.rmtree(out.state)
    elif out.state_config.exists():
        try:
            state = json.loads(out.state_config.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{out.state_config}: unreadable run state ({exc}); delete {root} to start over") from None
        _check_same(config, state.get("config_sha256"), out.state_config)
    elif any(p.name not in (STATE_DIR, lock.LOCK) for p in root.iterdir()):
        raise UserError(f"{root}: directory is not empty and holds no mono dataset; choose a new or empty directory")
    try:
        out.partial.mkdir(parents=True, exist_ok=True)
        out.done.mkdir(parents=True, exist_ok=True)
        if not out.state_config.exists():
            atomic.write_json(out.state_config, {"config_sha256": config.sha256(), "config": config.to_dict()})
    except OSError as exc:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise UserError(f"{root}: cannot write the output directory ({exc.strerror or exc})") from None
    # Temporary files of a run that was killed are garbage: their shard will be rendered again.
    for stale in out.partial.iterdir():
        stale.unlink(missing_ok=True)
    return existing


def _holds_output(out: DatasetDir) -> bool:
    """Whether the directory holds a shard or a .beton: something a different configuration must not mix with."""
    return out.beton.exists() or any(out.root.glob("*.tar"))


def _check_same(config: DatasetConfig, found: str | None, where: Path) -> None:
    if found != config.sha256():
        raise UserError(
            f"{where.parent}: holds a dataset with a different configuration ({where.name}); "
            "refusing to mix them: use another --out, or the original command to resume"
        )


def _run(config, out, pending, workers, progress, cache_bytes) -> int:
    bar = _progress_bar(config, pending, progress)
    try:
        if workers <= 1 or len(pending) == 1:
            init_worker_threads()
            bank = SourceBank(config, cache_bytes)
            renderer = Renderer(config.output.size, config.output.quality)
            for j in pending:
                write_shard(config, j, out, bank, renderer, bar.update)
        else:
            _run_pool(config, out, pending, min(workers, len(pending)), bar, cache_bytes)
    finally:
        bar.close()
    return len(pending)


def _run_pool(config, out, pending, workers, bar, cache_bytes) -> None:
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0, lock=True)
    pool = ctx.Pool(workers, initializer=_worker_init, initargs=(config, str(out.root), counter, cache_bytes))
    try:
        results = [pool.apply_async(_worker_shard, (j,)) for j in pending]
        seen = 0
        while True:
            done = all(r.ready() for r in results)
            for r in results:
                if r.ready() and not r.successful():
                    r.get()  # re-raises the worker's exception here
            value = counter.value
            bar.update(value - seen)
            seen = value
            if done:
                break
            time.sleep(0.2)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


_worker = {}


def _worker_init(config, root, counter, cache_bytes) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    init_worker_threads()
    _worker.update(
        config=config,
        out=DatasetDir(root),
        bank=SourceBank(config, cache_bytes),
        renderer=Renderer(config.output.size, config.output.quality),
        counter=counter,
    )


def _worker_shard(shard: int) -> dict:
    w = _worker

    def count(n: int) -> None:
        with w["counter"].get_lock():
            w["counter"].value += n

    return write_shard(w["config"], shard, w["out"], w["bank"], w["renderer"], count).to_dict()


def _progress_bar(config, pending, enabled):
    from tqdm import tqdm

    total = sum(len(config.output.shard_range(j)) for j in pending)
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        unit="samples",
        unit_scale=True,
        disable=not enabled,
        dynamic_ncols=True,
        smoothing=0.1,
        mininterval=0.2 if interactive else 30,  # in a log file, a line every 30 s rather than a flood
    )


def _finalise(
    config: DatasetConfig,
    out: DatasetDir,
    command: str,
    formats: tuple[str, ...],
    existing: dict | None,
    rendered: list[int],
    progress: bool,
) -> bool:
    """Write the .beton if wanted and missing, then the manifest and card; drop intermediate shards.

    Returns whether anything was written."""
    total = config.output.num_shards
    if existing is None:
        records = [_shard_record(config, out, j).to_dict() for j in range(total)]
    else:
        records = existing["shards"]
        for j in rendered:  # shards made again for a finished dataset must be the ones it lists
            if _shard_record(config, out, j).sha256 != records[j]["sha256"]:
                for k in rendered:  # leave the directory as it was
                    out.shard(k).unlink(missing_ok=True)
                raise UserError(
                    f"{out.shard(j)}: rendered again with different bytes than manifest.json lists "
                    "(another mono-gen or library version?); generate into a new directory instead"
                )
    ffcv = existing.get("ffcv") if _beton_done(out, existing) else None
    if FFCV in formats and ffcv is None:  # from shards whose bytes are those recorded when they were rendered
        if existing is None:
            samples = iter_shards(
                out.root,
                records,
                len(config.sources),
                recorded_in="its render record (.mono-gen/done)",
                remedy="delete it and run the same command again to render it again",
            )
        else:
            samples = iter_shards(out.root, records, len(config.sources))
        ffcv = export.write_beton(out.beton, samples, config.output.samples, config.output.size, progress)
    if existing is None:
        data = manifest.build(config, records, command, formats, ffcv)
    else:  # keep the record of how the samples were made; add the new formats
        data = {k: v for k, v in existing.items() if k != "ffcv"}
        data.update(formats=list(formats), command=manifest.command_with_formats(existing["command"], formats))
        if ffcv is not None:
            data["ffcv"] = ffcv
    if data != existing:
        atomic.write_text(out.card, manifest.card(data))
        atomic.write_json(out.manifest, data)
    if WEBDATASET not in formats:
        for j in range(total):
            out.shard(j).unlink(missing_ok=True)
    shutil.rmtree(out.state, ignore_errors=True)
    return data != existing


def _shard_record(config: DatasetConfig, out: DatasetDir, j: int) -> ShardRecord:
    """The shard's record as written when it was rendered, or recomputed (shards copied in by hand)."""
    try:
        return ShardRecord(**json.loads(out.done_record(j).read_text()))
    except (OSError, ValueError, TypeError):
        samples = config.output.shard_range(j)
        size, digest = file_sha256(out.shard(j))
        return ShardRecord(out.shard(j).name, samples.start, len(samples), size, digest)


def _clean_up(out: DatasetDir, created: bool) -> None:
    """Remove temporary files, and all run state if no shard is complete (the directory too if we made it)."""
    shutil.rmtree(out.partial, ignore_errors=True)
    if any(out.root.glob("*.tar")):
        return  # complete shards stay, with the run state that lets the same command resume
    shutil.rmtree(out.state, ignore_errors=True)
    if created:
        shutil.rmtree(out.root, ignore_errors=True)
