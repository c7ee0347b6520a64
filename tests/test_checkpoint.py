"""The checkpoint format: round trip, weights-only loading, atomic writes and clear rejections."""

import os

import pytest
import torch

from mono.learning.checkpoint import FORMAT, VERSION, file_sha256, load_checkpoint, load_trunk, save_checkpoint
from mono.learning.errors import UserError
from mono.learning.models import build_trunk

GAN_NORM = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
MANIFEST = "ab" * 32


def _save(path, trunk=None, **overrides):
    trunk = trunk if trunk is not None else build_trunk("monogan")
    kwargs = dict(
        arch="monogan",
        arch_args={"activation": "leaky_relu"},
        normalization=GAN_NORM,
        method="monogan",
        dataset_manifest_sha256=MANIFEST,
        epoch=7,
        meta={"note": "test"},
    )
    kwargs.update(overrides)
    return save_checkpoint(path, trunk, **kwargs)


def _rewrite(path, **changes):
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)


def test_round_trip_keeps_every_field_and_the_weights(tmp_path):
    torch.manual_seed(0)
    trunk = build_trunk("alexnet", sobel=True)
    trunk.blocks["conv2"].norm.running_mean.uniform_()
    head = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(list(trunk.parameters()) + list(head.parameters()))
    trunk(torch.randn(2, 3, 224, 224)).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "ckpt.pt",
        trunk,
        arch="alexnet",
        arch_args={"sobel": True},
        normalization={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        method="rotnet",
        dataset_manifest_sha256=MANIFEST,
        epoch=3,
        meta={"lr": 0.1, "tags": ["a", 1]},
        extra={"head": head.state_dict(), "optimizer": optimizer.state_dict()},
    )
    ckpt = load_checkpoint(path)
    assert (ckpt.arch, ckpt.method, ckpt.epoch, ckpt.version) == ("alexnet", "rotnet", 3, VERSION)
    assert ckpt.arch_args == {"sobel": True, "activation": "relu"}
    assert ckpt.dataset_manifest_sha256 == MANIFEST
    assert ckpt.meta == {"lr": 0.1, "tags": ["a", 1]}
    assert ckpt.extra["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(ckpt.extra["head"]["weight"], head.weight)

    loaded, _ = load_trunk(path)
    assert not loaded.training
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded(x), trunk.eval()(x))
    # readable by plain torch with weights_only=True: only plain containers, numbers, strings and tensors
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["version"] == VERSION


def test_write_is_atomic_and_overwrites(tmp_path):
    first = _save(tmp_path / "c.pt", epoch=1)
    digest = file_sha256(first)
    _save(tmp_path / "c.pt", epoch=2)
    assert load_checkpoint(tmp_path / "c.pt").epoch == 2
    assert file_sha256(first) != digest
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600


def test_missing_and_foreign_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a torch file")
    with pytest.raises(UserError, match="is not a mono checkpoint"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": build_trunk("monogan").state_dict()}, plain)
    with pytest.raises(UserError, match="no format field 'mono-checkpoint'"):
        load_checkpoint(plain)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": UserError("arbitrary object")}, path)
    with pytest.raises(UserError, match="weights_only") as error:
        load_checkpoint(path)
    # One complete line: which global torch refused, not a page of advice cut mid-sentence.
    message = str(error.value)
    assert message.endswith(
        "failed: Unsupported global: GLOBAL mono.learning.errors.UserError was not an allowed global by default.)"
    ), message
    assert "\n" not in message and "\x1b" not in message


def test_unknown_architecture_is_a_user_error(tmp_path):
    path = _save(tmp_path / "c.pt")
    _rewrite(path, arch="resnet50")
    with pytest.raises(UserError, match="unknown architecture 'resnet50'"):
        load_checkpoint(path)


def test_mismatched_weights_are_a_user_error(tmp_path):
    path = _save(tmp_path / "c.pt")
    payload = torch.load(path, weights_only=True)
    payload["trunk"]["blocks.conv2.conv.weight"] = torch.zeros(3, 3, 3, 3)
    del payload["trunk"]["blocks.conv4.conv.bias"]
    torch.save(payload, path)
    with pytest.raises(UserError, match=r"missing blocks.conv4.conv.bias.*conv2.conv.weight has shape \(3, 3, 3, 3\)"):
        load_checkpoint(path)
    # an alexnet's weights under a monogan label
    path = _save(tmp_path / "d.pt")
    _rewrite(path, trunk=build_trunk("alexnet").state_dict())
    with pytest.raises(UserError, match="weights do not match monogan"):
        load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path):
    path = _save(tmp_path / "c.pt")
    _rewrite(path, version=VERSION + 1)
    with pytest.raises(UserError, match=f"format version {VERSION + 1}"):
        load_checkpoint(path)


def test_save_rejects_what_could_not_be_read_back(tmp_path):
    with pytest.raises(UserError, match="normalization std"):
        _save(tmp_path / "a.pt", normalization={"mean": [0, 0, 0], "std": [1, 0, 1]})
    with pytest.raises(UserError, match="the trunk does not match monogan"):
        _save(tmp_path / "b.pt", trunk=build_trunk("alexnet"))
    with pytest.raises(UserError, match="dataset_manifest_sha256"):
        _save(tmp_path / "c.pt", dataset_manifest_sha256="not-a-hash")
    with pytest.raises(TypeError, match=r"meta\['when'\] is a set"):
        _save(tmp_path / "d.pt", meta={"when": {1, 2}})
    assert list(tmp_path.iterdir()) == []


def test_random_init_checkpoint_may_have_no_manifest(tmp_path):
    path = _save(tmp_path / "c.pt", dataset_manifest_sha256=None, epoch=0)
    assert load_checkpoint(path).dataset_manifest_sha256 is None
