"""docs/cli.md, checked: every command of the six tools, walked through click's and argparse's own descriptions
of their options, and the behaviours the convention promises (aliases, reruns, --ckpt RUN_DIR, -q)."""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

import click
import pytest

from helpers import REPO, TINY, assert_one_line_error, mono_gen, run_tool, tiny_dataset, train
from mono.learning.checkpoint import save_checkpoint
from mono.learning.models import GAN_NORMALIZATION, build_trunk

CLICK_TOOLS = {
    "mono-gen": ("mono.generator.cli", "mono_gen"),
    "mono-shards": ("mono.generator.shards_cli", "mono_shards"),
    "mono-probe": ("mono.probes.cli", "cli"),
    "mono-viz": ("mono.probes.viz_cli", "cli"),
    "mono-repro": ("mono.repro.cli", "cli"),
}
TRAINERS = ("rotnet", "deepcluster", "bigan", "monogan", "supervised")

# Commands that write a file or a directory of their own choosing: -o/--out. (mono-shards export and pull copy a
# dataset to a destination given like cp's; verify, info and finish write nothing or into their dataset.)
WRITERS = {
    "mono-gen", "mono-shards preview", "mono-probe linear", "mono-probe finetune", "mono-probe compare",
    "mono-probe filters", "mono-viz maximize", "mono-viz style", "mono-viz retrieve", "mono-repro cifar",
    *(f"mono-train {m}" for m in TRAINERS), "mono-train sample",
}  # fmt: skip
# Commands that show a progress bar: -q/--quiet.
PROGRESS = {
    "mono-gen", "mono-shards verify", "mono-shards export", "mono-shards finish", "mono-shards pull",
    "mono-probe linear", "mono-probe finetune", "mono-viz maximize", "mono-viz style", "mono-viz retrieve",
    "mono-repro cifar", *(f"mono-train {m}" for m in TRAINERS),
}  # fmt: skip
VIZ = ["--layer", "conv1", "--channels", "0", "-o", "a.png"]
# docs/cli.md's table of aliases: (command, old spelling, arguments with it, the same with the new spelling).
ALIASES = [
    ("mono-shards preview", "--output", ["DS", "--output", "a.png"], ["DS", "-o", "a.png"]),
    ("mono-train sample", "--n", ["RUN", "--n", "5"], ["RUN", "-n", "5"]),
    ("mono-gen", "--n", ["--n", "3", "-o", "D"], ["-N", "3", "-o", "D"]),
    ("mono-probe filters", "CKPT", ["run.pt", "-o", "a.png"], ["--ckpt", "run.pt", "-o", "a.png"]),
    ("mono-probe filters", "--scale", ["--scale", "4", "-o", "a.png"], ["--tile", "4", "-o", "a.png"]),
    ("mono-probe linear", "--no-progress", ["--no-progress", "-o", "D"], ["-q", "-o", "D"]),
    ("mono-viz maximize", "--no-progress", ["--no-progress", *VIZ], ["-q", *VIZ]),
    ("mono-train deepcluster", "--nmb_cluster", ["--nmb_cluster", "7"], ["--k", "7"]),
    ("mono-train deepcluster", "--wd", ["--wd", "0.1"], ["--weight-decay", "0.1"]),
]


def _click_commands():
    """(name, command) of every click command, subcommands included."""
    for tool, (module, attribute) in CLICK_TOOLS.items():
        root = getattr(importlib.import_module(module), attribute)
        if isinstance(root, click.Group):
            yield tool, root
            for name, command in root.commands.items():
                yield f"{tool} {name}", command
        else:
            yield tool, root


def _parsers():
    """(name, parser) of every mono-train command."""
    for method in TRAINERS:
        yield f"mono-train {method}", importlib.import_module(f"mono.trainers.{method}").get_args_parser()
    yield "mono-train sample", importlib.import_module("mono.trainers.sample").get_args_parser()


CLICK = dict(_click_commands())
PARSERS = dict(_parsers())


def _help_text(command: click.Command, name: str) -> str:
    with click.Context(command, info_name=name) as ctx:
        return command.get_help(ctx)


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name not in ("help", "version")]


def _has_default(option: click.Option) -> bool:
    default = option.default
    unset = default is None or type(default).__name__ == "Sentinel"
    return not unset and not (option.is_flag and default is False) and option.name != "help"


@pytest.mark.parametrize("name", sorted(CLICK))
def test_click_commands_follow_the_convention(name):
    command = CLICK[name]
    text = _help_text(command, name)
    assert "Example" in text, f"{name}: no example in --help"
    with click.Context(command, info_name=name) as ctx:
        for option in _options(command):
            if option.hidden:
                continue
            assert option.help, f"{name} {option.opts}: no help text"
            if _has_default(option):
                record = option.get_help_record(ctx)
                assert record and "default:" in record[1], f"{name} {option.opts}: the default is not shown"
    by_name = {opt: option for option in _options(command) for opt in option.opts + option.secondary_opts}
    if name in WRITERS:
        assert set(by_name["--out"].opts) == {"-o", "--out"}, f"{name}: the output is -o/--out"
    assert "--output" not in by_name or by_name["--output"].hidden
    if "--seed" in by_name:
        assert by_name["--seed"].default == 0 and by_name["--seed"].help
    if name in PROGRESS:
        assert set(by_name["--quiet"].opts) == {"-q", "--quiet"}, f"{name}: -q/--quiet"
    if "--workers" in by_name:
        workers = by_name["--workers"]
        assert set(workers.opts) == {"-j", "--workers"} and workers.show_default == "auto", name
        assert callable(workers.default), f"{name}: --workers defaults to auto, worked out when it runs"
    if "--tile" in by_name:
        assert by_name["--tile"].metavar == "PX"
    if "--out" in by_name:
        metavar = by_name["--out"].metavar
        assert metavar in ("DIR", "FILE.png"), f"{name}: -o/--out's metavar is DIR or FILE.png, not {metavar}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_mono_train_commands_follow_the_convention(name):
    parser = PARSERS[name]
    assert "example" in (parser.epilog or "").lower(), f"{name}: no example in --help"
    by_name = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        for opt in action.option_strings:
            by_name[opt] = action
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
        has_default = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if has_default:
            assert "default" in action.help, f"{name} {action.option_strings}: the default is not shown"
    assert set(by_name["--out"].option_strings) == {"-o", "--out"}
    assert by_name["--seed"].default == 0
    assert "(default 0)" in by_name["--seed"].help or "default 0" in by_name["--seed"].help
    if name != "mono-train sample":
        assert set(by_name["--quiet"].option_strings) == {"-q", "--quiet"}
        workers = by_name["--workers"]
        assert set(workers.option_strings) == {"-j", "--workers"}
        assert workers.default is None and "default auto" in workers.help
        assert "--resume" in by_name
    else:
        assert set(by_name["--count"].option_strings) == {"-n", "--count"} and by_name["--tile"].metavar == "PX"


def _parse(name: str, args: list[str]) -> dict:
    """The values a command would be called with, parsed the command's own way (nothing runs)."""
    if name in PARSERS:
        return vars(PARSERS[name].parse_args(args))
    command = CLICK[name]
    ctx = command.make_context(name, list(args), resilient_parsing=False)
    return dict(ctx.params)


@pytest.mark.parametrize("name, spelling, old, new", ALIASES, ids=[f"{n} {o}" for n, o, _, _ in ALIASES])
def test_the_old_spellings_are_hidden_aliases(name, spelling, old, new):
    table = (REPO / "docs" / "cli.md").read_text().split("## Aliases", 1)[1]
    rows = [line for line in table.splitlines() if name.split()[0] in line and _names(spelling, line)]
    assert rows, f"docs/cli.md's alias table lacks {name} {spelling}"
    if name == "mono-train deepcluster":
        old, new = ["--data", "D", "-o", "R", *old], ["--data", "D", "-o", "R", *new]
    with_old, with_new = _parse(name, old), _parse(name, new)
    if spelling == "--scale":  # screen pixels per filter pixel: the command converts it to a tile
        assert with_old["scale"] == 4 and with_new["scale"] is None
    elif spelling == "CKPT":  # a click argument cannot hide; the help names it as the old spelling
        assert Path(with_old["ckpt_argument"]) == Path(with_new["ckpt"])
        assert "positional CKPT, the old spelling" in _help_text(CLICK[name], name)
        return
    else:
        assert with_old == with_new
    if name in CLICK:
        assert spelling in {opt for p in _options(CLICK[name]) if p.hidden for opt in p.opts}
        assert not _names(spelling, _help_text(CLICK[name], name))
    else:
        assert not _names(spelling, PARSERS[name].format_help())


def _names(spelling: str, text: str) -> bool:
    """Whether `text` names option `spelling` (not merely a longer option that begins with it)."""
    return re.search(rf"{re.escape(spelling)}(?![\w-])", text) is not None


# ---------------------------------------------------------------------------------------------------------------
# Behaviour


def test_preview_output_and_out_write_the_same_picture(source_image, tmp_path):
    data = tmp_path / "data"
    mono_gen("--image", source_image, "--samples", 8, "--size", 16, "--shard-size", 8, "--out", data)
    old = run_tool("mono.generator.shards_cli", "preview", data, "--output", tmp_path / "old.png", "--count", 4)
    new = run_tool("mono.generator.shards_cli", "preview", data, "-o", tmp_path / "new.png", "-n", 4)
    assert old.returncode == 0 and new.returncode == 0, old.stderr + new.stderr
    assert (tmp_path / "old.png").read_bytes() == (tmp_path / "new.png").read_bytes()
    missing = run_tool("mono.generator.shards_cli", "preview", data)
    assert_one_line_error(missing, "mono-shards", "--out")


def test_gen_n_is_num_sources(source_images, tmp_path):
    mono_gen("--source", source_images, "--n", 2, "--samples", 4, "--size", 16, "--out", tmp_path / "old")
    mono_gen("--source", source_images, "-N", 2, "--samples", 4, "--size", 16, "--out", tmp_path / "new")
    old, new = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("old", "new"))
    assert old["config_sha256"] == new["config_sha256"]
    assert "--num-sources 2" in old["command"] and "--n " not in old["command"], "recorded under the new name"


def test_ckpt_takes_the_file_or_its_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(
        run / "checkpoint.pt",
        build_trunk("monogan"),
        arch="monogan",
        arch_args={},
        normalization=GAN_NORMALIZATION,
        method="monogan",
        dataset_manifest_sha256=None,
        epoch=0,
        meta={},
    )
    pictures = {}
    for name, args in {
        "file": ["--ckpt", run / "checkpoint.pt"],
        "directory": ["--ckpt", run],
        "positional": [run / "checkpoint.pt"],
    }.items():
        result = run_tool("mono.probes.cli", "filters", *args, "-o", tmp_path / f"{name}.png")
        assert result.returncode == 0, result.stderr
        pictures[name] = (tmp_path / f"{name}.png").read_bytes()
    assert pictures["file"] == pictures["directory"] == pictures["positional"]
    empty = run_tool("mono.probes.cli", "filters", "--ckpt", tmp_path, "-o", tmp_path / "x.png")
    assert_one_line_error(empty, "mono-probe", "checkpoint.pt")


@pytest.fixture(scope="module")
def data(source_image, tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("convention"), source_image)


def test_quiet_keeps_the_summary_and_hidden_options_stay_out_of_args_json(data, tmp_path):
    run = tmp_path / "run"
    result = run_tool(
        "mono.trainers.cli", "rotnet", "--data", data, "-o", run, *TINY, "--steps-per-epoch", 1,
        "--record-samples", tmp_path / "seen",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" not in result.stderr, "-q hides the per-epoch lines"
    assert f"mono-train rotnet: checkpoint: {run / 'checkpoint.pt'}" in result.stdout, "-q keeps the final summary"
    assert "next: mono-probe linear --ckpt" in result.stdout
    recorded = json.loads((run / "args.json").read_text())
    assert "record_samples" not in recorded and recorded["seed"] == 0 and recorded["workers"] == 0


def test_a_rerun_with_other_options_is_refused_naming_the_option(data, tmp_path):
    run = tmp_path / "run"
    common = ["--data", data, "--out", run, *TINY, "--steps-per-epoch", 1]
    train("rotnet", *common)
    other = run_tool("mono.trainers.cli", "rotnet", *common, "--epochs", 2, "--head-width", 128)
    assert_one_line_error(other, "mono-train rotnet", "--head-width 256, not 128", "choose another --out")
    train("rotnet", *common, "--epochs", 2, "--quiet", "--save-every", 1)  # how it runs may change
    assert (run / "checkpoint-epoch0002.pt").exists()


def test_mono_train_lists_its_methods_with_examples(capsys):
    from mono.trainers.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and all(method in text for method in TRAINERS)
