"""End to end on a slice of a small labelled folder: reports, resume and extension, checkpoints, both protocols."""

import json
import os

import pytest
import torch
from PIL import Image

from mono.learning.checkpoint import file_sha256, save_checkpoint
from mono.learning.errors import UserError
from mono.learning.models import build_trunk
from mono.probes.data import DataSpec
from mono.probes.linear import LinearConfig, run_linear
from mono.probes.protocols import Schedule

TRAIN, VAL = 200, 80  # of the folder's 256 and 96 images, 4 classes


def _config(folder, out, epochs=2, **overrides):
    data = DataSpec(train=folder / "train", val=folder / "test", train_limit=TRAIN, val_limit=VAL)
    kwargs = dict(out=out, data=data, arch="monogan", schedule=Schedule(epochs=epochs), workers=1, progress=False)
    kwargs.update(overrides)
    return LinearConfig(**kwargs)


@pytest.fixture(scope="module")
def two_epoch_run(labelled_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "monogan-2ep"
    return out, run_linear(_config(labelled_images, out))


def test_run_writes_results_table_and_plot(two_epoch_run):
    out, results = two_epoch_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["layers"] == results["layers"]
    assert list(on_disk["layers"]) == ["conv1", "conv2", "conv3", "conv4"]
    for metrics in on_disk["layers"].values():
        assert set(metrics) == {"top1", "top5"}
        assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 100.0
    # 200 training images, 2 epochs: the colour and stripe classes are told apart well above the 25% of chance
    assert max(m["top1"] for m in on_disk["layers"].values()) > 50.0
    assert on_disk["checkpoint"] is None
    config = on_disk["config"]
    assert (config["arch"], config["protocol"], config["random_init"], config["seed"]) == ("monogan", "cifar", True, 0)
    assert config["feature_dims"] == {"conv1": 7744, "conv2": 4608, "conv3": 2304, "conv4": 512}
    assert config["flip"] is True  # the calibrated default of the cifar protocol
    assert config["schedule"]["epochs"] == 2 and config["schedule"]["milestones"] == [5, 15, 25]
    assert config["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
    dataset = on_disk["dataset"]
    assert (dataset["train_images"], dataset["val_images"], dataset["num_classes"]) == (TRAIN, VAL, 4)
    assert dataset["classes"][0] == "a-red-rows" and len(dataset["train_listing_sha256"]) == 64
    assert [h["epoch"] for h in on_disk["history"]] == [1, 2]
    table = (out / "results.md").read_text()
    # 80 evaluation images: labelled not meaningful, printed without decimals
    assert f"| conv3 | 2304 | {on_disk['layers']['conv3']['top1']:.0f} |" in table and "Not meaningful" in table
    assert on_disk["meaningful"] is False and on_disk["chance_top1"] == 25.0
    with Image.open(out / "accuracy.png") as img:
        assert img.format == "PNG" and img.width > 300
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.json", "results.md", "probe_state.pt"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_rerun_continues_and_extends_to_the_same_result(labelled_images, tmp_path, two_epoch_run):
    _, uninterrupted = two_epoch_run
    out = tmp_path / "run"
    first = run_linear(_config(labelled_images, out, epochs=1))
    assert first["timing"]["resumed_from_epoch"] is None
    extended = run_linear(_config(labelled_images, out, epochs=2))  # same command, more epochs: continues
    assert extended["timing"]["resumed_from_epoch"] == 1
    assert extended["layers"] == uninterrupted["layers"]
    assert extended["history"] == uninterrupted["history"]
    again = run_linear(_config(labelled_images, out, epochs=2, resume=True))  # finished: nothing to train
    assert again["layers"] == uninterrupted["layers"]
    assert "train" not in again["timing"]["stages_s"]


def test_rerun_with_another_configuration_is_refused(labelled_images, two_epoch_run):
    out, _ = two_epoch_run
    with pytest.raises(UserError, match=r"different configuration \(differs in: seed\)"):
        run_linear(_config(labelled_images, out, seed=1))
    with pytest.raises(UserError, match="already trained 2 epochs"):
        run_linear(_config(labelled_images, out, epochs=1))


def test_resume_needs_a_saved_state(labelled_images, tmp_path):
    with pytest.raises(UserError, match="nothing to resume"):
        run_linear(_config(labelled_images, tmp_path / "fresh", resume=True))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    with pytest.raises(UserError, match="holds no mono-probe run"):
        run_linear(_config(labelled_images, tmp_path / "other"))


def test_checkpoint_run_records_the_checkpoint_and_applies_its_normalization(labelled_images, tmp_path):
    torch.manual_seed(5)
    norm = {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}
    ckpt = save_checkpoint(
        tmp_path / "gan.pt",
        build_trunk("monogan"),
        arch="monogan",
        arch_args={},
        normalization=norm,
        method="monogan",
        dataset_manifest_sha256="0" * 64,
        epoch=4,
        meta={},
    )
    results = run_linear(_config(labelled_images, tmp_path / "run", epochs=1, arch=None, ckpt=ckpt))
    assert results["checkpoint"]["sha256"] == file_sha256(ckpt)
    assert results["checkpoint"]["method"] == "monogan" and results["checkpoint"]["epoch"] == 4
    assert results["config"]["normalization"] == norm
    assert results["label"] == "monogan monogan (epoch 4)"


def test_imagenet_protocol_on_upscaled_32px_images(labelled_images, tmp_path):
    data = DataSpec(train=labelled_images / "train", val=labelled_images / "test", train_limit=12, val_limit=4)
    cfg = LinearConfig(
        out=tmp_path / "alexnet",
        data=data,
        arch="alexnet",
        workers=1,
        progress=False,
        schedule=Schedule(epochs=1, batch_size=6),
    )
    results = run_linear(cfg)
    assert results["config"]["protocol"] == "imagenet" and results["config"]["ten_crop"]
    assert list(results["config"]["feature_dims"].values()) == [9600, 9216, 9600, 9600, 9216]
    assert list(results["layers"]) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert results["history"][0]["train"]["conv1"]["loss"] > 0
    assert (tmp_path / "alexnet" / "accuracy.png").is_file()


def test_cifar_protocol_refuses_images_of_another_size(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (64, 48)).save(tmp_path / split / cls / "0.png")
    cfg = LinearConfig(
        out=tmp_path / "run",
        data=DataSpec(train=tmp_path / "train", val=tmp_path / "val"),
        arch="monogan",
        workers=0,
        progress=False,
    )
    expected = r"train/a/0.png is 64x48; the cifar protocol feeds images at their native size, which must be 32x32"
    with pytest.raises(UserError, match=expected):
        run_linear(cfg)


def test_unavailable_device_is_a_user_error(labelled_images, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU
    with pytest.raises(UserError, match="CUDA is not available here"):
        run_linear(_config(labelled_images, tmp_path / "run", device="cuda"))
    with pytest.raises(UserError, match="unknown --device 'gpu0'"):
        run_linear(_config(labelled_images, tmp_path / "run", device="gpu0"))


def test_a_wrong_image_met_by_a_loader_worker_is_reported_in_one_line(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / split / cls / "0.png")
    Image.new("RGB", (40, 40)).save(tmp_path / "train" / "b" / "1.png")  # not the first: found by a worker
    cfg = LinearConfig(
        out=tmp_path / "run",
        data=DataSpec(train=tmp_path / "train", val=tmp_path / "val"),
        arch="monogan",
        workers=1,
        progress=False,
    )
    with pytest.raises(UserError) as info:
        run_linear(cfg)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(
        "train/b/1.png is 40x40; the cifar protocol feeds images at their native size, which must be 32x32"
    )
