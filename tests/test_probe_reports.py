"""What probe reports tell a reader beside the numbers: the data, the evaluation size, the protocol and epochs,
chance, the paper's matching row, and whether the numbers mean anything; compare refuses or warns when runs
differ."""

from __future__ import annotations

import json

import pytest

from helpers import assert_one_line_error, run_tool
from mono.probes import paper
from mono.probes.results import annotate, compare_runs, plot_run, run_markdown

CIFAR = (61.234, 58.0, 52.5, 45.0)


def _results(
    top1=CIFAR,
    *,
    val_images=10_000,
    method=None,
    manifest=None,
    arch="monogan",
    protocol="cifar",
    classes=10,
    epochs=36,
    train_limit=None,
    val_limit=None,
    label="run",
):
    layers = {f"conv{i + 1}": {"top1": v, "top5": min(100.0, v + 30)} for i, v in enumerate(top1)}
    ckpt = (
        None
        if method is None
        else {"method": method, "dataset_manifest_sha256": manifest, "path": "c.pt", "sha256": "0" * 64, "epoch": 1}
    )
    return {
        "layers": layers,
        "label": label,
        "config": {
            "arch": arch,
            "arch_args": {},
            "random_init": method is None,
            "protocol": protocol,
            "input_size": 32,
            "resize": None,
            "augment": False,
            "seed": 0,
            "schedule": {
                "epochs": epochs,
                "lr": 0.01,
                "gamma": 0.2,
                "milestones": [5],
                "momentum": 0.9,
                "weight_decay": 0.0,
                "batch_size": 192,
            },
        },
        "checkpoint": ckpt,
        "dataset": {
            "source": "imagefolder",
            "train_path": "/d/cifar10/train",
            "val_path": "/d/cifar10/test",
            "num_classes": classes,
            "train_images": 50_000,
            "val_images": val_images,
            "train_limit": train_limit,
            "val_limit": val_limit,
        },
    }


def _write(tmp_path, name, results):
    path = tmp_path / name
    path.mkdir()
    (path / "results.json").write_text(json.dumps(results))
    return path


@pytest.mark.parametrize(
    ("kwargs", "row"),
    [
        ({}, "random"),
        ({"method": "supervised"}, "supervised"),
        ({"method": "rotnet"}, "rotnet"),
        ({"method": "monogan", "manifest": "a" * 64}, "monogan"),  # trained on a mono-gen dataset: Image B
        ({"method": "monogan"}, "gan"),  # trained on an image folder: CIFAR-10
        ({"method": "deepcluster"}, None),  # not in Table 3
        ({"classes": 100}, None),  # CIFAR-100
        ({"arch": "alexnet", "protocol": "imagenet", "classes": 1000}, None),  # Table 2 is not on this machine
    ],
)
def test_the_paper_row_follows_architecture_protocol_data_and_method(kwargs, row):
    found = paper.paper_row(_results(**kwargs))
    assert (found.row if found else None) == row
    if row:
        assert found.table == "Table 3" and found.layers["conv1"] == paper.TABLE3[row][0]


def test_table2_rows_are_used_for_alexnet_on_imagenet_once_filled_in(monkeypatch):
    monkeypatch.setitem(paper.TABLE2, "rotnet", (1.0, 2.0, 3.0, 4.0, 5.0))
    found = paper.paper_row(_results(method="rotnet", arch="alexnet", protocol="imagenet", classes=1000))
    assert found.table == "Table 2" and found.layers["conv5"] == 5.0


def test_run_report_names_data_evaluation_protocol_chance_and_the_paper():
    text = run_markdown(annotate(_results()))
    assert "cifar10, 10,000 evaluation images, protocol cifar, 36 epochs" in text
    assert "Chance (top-1): 10.0 %" in text
    assert "| conv1 |  | 61.23 | 91.23 | 57.8 |" in text  # ours, then Table 3's random row
    assert "Not meaningful" not in text


def test_run_plot_has_chance_line_paper_markers_and_axis_from_zero():
    fig = plot_run(_results())
    ax = fig.axes[0]
    chance = [line for line in ax.get_lines() if line.get_gid() == "chance"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [10.0, 10.0]
    (marks,) = [line for line in ax.get_lines() if line.get_gid() == "paper"]
    assert list(marks.get_ydata()) == list(paper.TABLE3["random"]) and marks.get_linestyle() == "--"
    assert ax.get_ylim()[0] == 0
    assert "10,000 evaluation images" in ax.get_title()


def test_a_smoke_sized_run_is_marked_and_printed_without_decimals():
    small = annotate(_results(val_images=100))
    assert small["meaningful"] is False
    text = run_markdown(small)
    assert "Not meaningful" in text and "| conv1 |  | 61 | 91 |" in text and "61.23" not in text
    assert annotate({**_results(), "meaningful": False})["meaningful"] is False  # mono-repro's smoke budget


def test_compare_refuses_runs_on_other_data_or_protocols(tmp_path):
    a = _write(tmp_path, "a", _results(label="a"))
    b = _write(
        tmp_path,
        "b",
        {
            **_results(label="b"),
            "dataset": {**_results()["dataset"], "val_path": "/x/stl/t", "train_path": "/x/stl/train"},
        },
    )
    c = _write(tmp_path, "c", _results(label="c", protocol="imagenet"))
    proc = run_tool("mono.probes.cli", "compare", a, b, "-o", tmp_path / "cmp")
    assert_one_line_error(proc, "mono-probe", "runs differ in dataset")
    proc = run_tool("mono.probes.cli", "compare", a, "--reference", c, "-o", tmp_path / "cmp")
    assert_one_line_error(proc, "mono-probe", "runs differ in protocol", "imagenet", "cifar")
    assert not (tmp_path / "cmp").exists()


def test_compare_takes_the_same_files_elsewhere_for_the_same_data(tmp_path):
    listed = {"train_listing_sha256": "1" * 64, "val_listing_sha256": "2" * 64}
    here = _results(label="here")
    here["dataset"].update(listed)
    there = _results(label="there")
    there["dataset"].update(listed, train_path="/copy/cifar10/train", val_path="/copy/cifar10/test")
    other = _results(label="other")
    other["dataset"].update(listed, val_listing_sha256="3" * 64)
    a, b, c = (_write(tmp_path, r["label"], r) for r in (here, there, other))
    assert compare_runs([a, b], tmp_path / "cmp")["warnings"] == []
    proc = run_tool("mono.probes.cli", "compare", a, c, "-o", tmp_path / "cmp2")
    assert_one_line_error(proc, "mono-probe", "runs differ in dataset", "listing 22222222", "listing 33333333")


def test_compare_warns_about_epochs_and_limits_and_lists_the_reference_once(tmp_path):
    ref = _write(tmp_path, "sup", _results(label="sup", method="supervised"))
    a = _write(tmp_path, "a", _results(label="a", epochs=1))
    b = _write(tmp_path, "b", _results(label="b", val_limit=500))
    proc = run_tool("mono.probes.cli", "compare", a, b, ref, "--reference", ref, "-o", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert any("warning: runs differ in epochs" in w and "a: 1" in w and "sup (reference): 36" in w for w in warnings)
    assert any("warning: runs differ in val limit" in w and "b: 500" in w for w in warnings)
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert table.count("| sup") == 1  # the reference once, not also as a run
    assert "| *paper, Table 3: supervised* | 66.5 |" in table and "| *paper, Table 3: random* | 57.8 |" in table
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [r["label"] for r in summary["runs"]] == ["a", "b"]


def test_compare_plot_axes_start_at_zero_with_chance(tmp_path):
    from matplotlib.figure import Figure

    captured = {}
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        captured["fig"] = self
        return original(self, *args, **kwargs)

    a = _write(tmp_path, "a", _results(top1=(80.0, 85.0, 90.0, 95.0), label="a"))
    ref = _write(tmp_path, "r", _results(top1=(40.0, 40.0, 40.0, 40.0), label="r", method="supervised"))
    Figure.savefig = keep
    try:
        compare_runs([a], tmp_path / "cmp", reference=ref)
    finally:
        Figure.savefig = original
    absolute, relative = captured["fig"].axes
    assert absolute.get_ylim() == (0, 100) and relative.get_ylim()[0] == 0 and relative.get_ylim()[1] >= 237
    assert [line for line in absolute.get_lines() if line.get_gid() == "chance"]
