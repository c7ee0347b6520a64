"""mono-probe through a subprocess: bad inputs end with one line on stderr and exit code 2; compare works."""

import json

import pytest

from mono.learning.checkpoint import save_checkpoint
from mono.learning.models import build_trunk, canonical_arch_args


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mono-probe: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.fixture()
def folders(tmp_path):
    """Two tiny, valid ImageFolder trees (nothing is trained on them in these tests)."""
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
    return ["--train", tmp_path / "train", "--val", tmp_path / "val"]


def test_help_shows_examples(probe_cli):
    proc = probe_cli("linear", "--help")
    assert proc.returncode == 0
    assert "mono-probe linear --arch monogan --random-init" in proc.stdout
    assert "--protocol [imagenet|cifar]" in proc.stdout


def test_linear_run_from_the_command_line(probe_cli, labelled_images, tmp_path):
    proc = probe_cli(
        "linear",
        "--arch",
        "monogan",
        "--random-init",
        "--activation",
        "relu",
        "--train",
        labelled_images / "train",
        "--val",
        labelled_images / "test",
        "--train-limit",
        100,
        "--val-limit",
        50,
        "--epochs",
        1,
        "--batch-size",
        50,
        "--seed",
        3,
        "--workers",
        0,
        "--threads",
        1,
        "--label",
        "tiny",
        "--no-progress",
        "--out",
        tmp_path / "run",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tiny: conv1 ")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    config = results["config"]
    expected_args = canonical_arch_args("monogan", activation="relu")  # what the checkpoint would store
    assert (config["seed"], config["threads"], config["arch_args"]) == (3, 1, expected_args)
    assert config["schedule"]["batch_size"] == 50
    assert (results["dataset"]["train_images"], results["dataset"]["val_images"]) == (100, 50)
    assert (tmp_path / "run" / "results.md").is_file() and (tmp_path / "run" / "accuracy.png").is_file()


def test_missing_checkpoint_file(probe_cli, folders, tmp_path):
    proc = probe_cli("linear", "--ckpt", tmp_path / "nope.pt", *folders, "--out", tmp_path / "run")
    _assert_one_line_error(proc, "--ckpt file not found", "nope.pt")


def test_file_that_is_not_a_checkpoint(probe_cli, folders, tmp_path):
    junk = tmp_path / "notes.pt"
    junk.write_text("hello")
    proc = probe_cli("linear", "--ckpt", junk, *folders, "--out", tmp_path / "run")
    _assert_one_line_error(proc, "is not a mono checkpoint")


def test_alexnet_checkpoint_with_the_cifar_protocol(probe_cli, folders, tmp_path):
    ckpt = save_checkpoint(
        tmp_path / "alexnet.pt",
        build_trunk("alexnet"),
        arch="alexnet",
        arch_args={},
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3},
        method="rotnet",
        dataset_manifest_sha256=None,
        epoch=0,
        meta={},
    )
    proc = probe_cli("linear", "--ckpt", ckpt, "--protocol", "cifar", *folders, "--out", tmp_path / "run")
    _assert_one_line_error(proc, "alexnet needs the imagenet protocol")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arch", "alexnet", "--random-init", "--protocol", "cifar"], "alexnet needs the imagenet protocol"),
        (["--arch", "monogan", "--random-init", "--protocol", "imagenet"], "monogan needs the cifar protocol"),
        (["--arch", "monogan"], "add --random-init"),
        (["--random-init"], "give --ckpt PATH, or --arch"),
        (["--arch", "monogan", "--random-init", "--sobel"], "--sobel applies to alexnet only"),
    ],
)
def test_wrong_trunk_options(probe_cli, folders, tmp_path, args, fragment):
    proc = probe_cli("linear", *args, *folders, "--out", tmp_path / "run")
    _assert_one_line_error(proc, fragment)


def test_missing_data_and_options(probe_cli, tmp_path):
    proc = probe_cli(
        "linear",
        "--arch",
        "monogan",
        "--random-init",
        "--train",
        tmp_path / "absent",
        "--val",
        tmp_path,
        "--out",
        tmp_path / "run",
    )
    _assert_one_line_error(proc, "--train directory not found", "absent")
    proc = probe_cli("linear", "--arch", "monogan", "--random-init", "--out", tmp_path / "run")
    _assert_one_line_error(proc, "give the data")
    proc = probe_cli("linear", "--arch", "monogan", "--random-init", "--dataset", "cifar10")
    _assert_one_line_error(proc, "'--out'")
    proc = probe_cli("linear", "--arch", "resnet")
    _assert_one_line_error(proc, "Invalid value for '--arch'")


def test_torchvision_dataset_that_is_not_there(probe_cli, tmp_path):
    proc = probe_cli(
        "linear",
        "--arch",
        "monogan",
        "--random-init",
        "--dataset",
        "cifar10",
        "--data-root",
        tmp_path,
        "--out",
        tmp_path / "run",
    )
    _assert_one_line_error(proc, "no cifar10 found under", "never downloads")


def _fake_run(path, label, top1):
    path.mkdir()
    layers = {f"conv{i + 1}": {"top1": v, "top5": min(100.0, v + 30)} for i, v in enumerate(top1)}
    results = {"layers": layers, "label": label, "config": {"protocol": "cifar"}, "dataset": {"name": "cifar10"}}
    (path / "results.json").write_text(json.dumps(results))
    return path


def test_compare_writes_one_table_and_one_plot(probe_cli, tmp_path):
    ref = _fake_run(tmp_path / "sup", "supervised", [60.0, 70.0, 80.0, 80.0])
    a = _fake_run(tmp_path / "a", "rotnet 1 image", [60.0, 56.0, 40.0, 20.0])
    b = _fake_run(tmp_path / "b", "random", [30.0, 35.0])
    proc = probe_cli("compare", a, b, "--reference", ref, "-o", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| rotnet 1 image | 60.00 | 56.00 | 40.00 | 20.00 |" in table
    assert "| random | 30.00 | 35.00 | — | — |" in table
    assert "| rotnet 1 image | 100.00 | 80.00 | 50.00 | 25.00 |" in table  # % of the reference
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert summary["runs"][1]["relative"]["conv2"] == pytest.approx(50.0)
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 10_000


def test_compare_rejects_a_directory_without_results(probe_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = probe_cli("compare", tmp_path / "empty", "-o", tmp_path / "cmp")
    _assert_one_line_error(proc, "has no results.json")
