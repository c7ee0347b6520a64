"""mono-gen --from-manifest: a dataset made again from its manifest alone (a file, a directory or a URL), the
source images found by SHA-256, and the bytes compared with the recorded ones."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading

import pytest

from helpers import assert_one_line_error, mono_gen, run_tool

SMALL = ("--samples", 120, "--size", 24, "--shard-size", 50)


def files(root):
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def gen(*args):
    return run_tool("mono.generator.cli", *args, "--workers", 1)


@pytest.fixture(scope="module")
def original(source_images, tmp_path_factory):
    """Three source images (a folder), shards and train.beton; made with --out DIR, then moved to DIR.orig."""
    base = tmp_path_factory.mktemp("regen")
    mono_gen("--source", source_images, *SMALL, "--seed", 3, "--format", "both", "--out", base / "ds")
    (base / "ds").rename(base / "ds.orig")
    return base / "ds.orig"


def test_the_same_command_line_makes_the_same_directory_byte_for_byte(original, source_images):
    out = original.parent / "ds"  # the --out the manifest records
    result = gen("--from-manifest", original / "manifest.json", "--image-dir", source_images, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "all 5 files have the SHA-256" in result.stderr  # 3 shards, _info.json, train.beton
    assert files(out) == files(original), "manifest.json and the card included"
    again = gen("--from-manifest", original, "--image-dir", source_images, "--out", out, "-q")
    assert again.returncode == 0 and again.stderr.count("\n") == 2, "the summaries alone: nothing written, all checked"
    assert "already complete" in again.stderr
    assert "all 5 files have the SHA-256" in again.stderr
    shutil.rmtree(out)


@pytest.fixture
def served(original, tmp_path):
    """The manifest alone, over HTTP on 127.0.0.1: no shard, no .beton."""
    www = tmp_path / "www"
    (www / "demo").mkdir(parents=True)
    shutil.copy(original / "manifest.json", www / "demo")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www / "demo", f"http://127.0.0.1:{httpd.server_address[1]}/demo/"
    httpd.shutdown()
    httpd.server_close()


def test_a_manifest_url_and_renamed_images_give_the_recorded_bytes(original, source_images, served, tmp_path):
    renamed = tmp_path / "images" / "elsewhere"
    renamed.mkdir(parents=True)
    for i, image in enumerate(sorted(source_images.iterdir())):
        shutil.copy(image, renamed / f"copy-{i}{image.suffix}")  # found by SHA-256, not by name
    out = tmp_path / "copy"
    result = gen("--from-manifest", served[1], "--image-dir", tmp_path / "images", "--out", out)
    assert result.returncode == 0, result.stderr
    made, recorded = files(out), files(original)
    for name in ("train-000000.tar", "train-000001.tar", "train-000002.tar", "_info.json", "train.beton"):
        assert made[name] == recorded[name], name
    manifest, before = json.loads(made["manifest.json"]), json.loads(recorded["manifest.json"])
    assert manifest["config_sha256"] == before["config_sha256"] and manifest["shards"] == before["shards"]
    assert manifest["command"] == before["command"].replace(str(original.parent / "ds"), str(out))
    # --source takes a folder (or a list) to look in as well.
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(str(p) for p in sorted(renamed.iterdir())))
    result = gen("--from-manifest", served[1], "--source", listed, "--out", tmp_path / "from-list", "-q")
    assert result.returncode == 0, result.stderr
    assert files(tmp_path / "from-list")["train.beton"] == recorded["train.beton"]


def test_bytes_that_differ_from_the_recorded_ones_are_reported(source_images, served, tmp_path):
    path = served[0] / "manifest.json"
    manifest = json.loads(path.read_bytes())
    manifest["shards"][1]["sha256"] = hashlib.sha256(b"other bytes").hexdigest()  # as another opencv would make
    path.write_text(json.dumps(manifest))
    result = gen("--from-manifest", served[1], "--image-dir", source_images, "--out", tmp_path / "copy", "-q")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 2 and "Traceback" not in result.stderr  # -q: what was written, what differs
    assert "1 of 5 files differ from the SHA-256" in result.stderr and "(first: train-000001.tar)" in result.stderr
    assert "library versions that changed: none of numpy, opencv, pillow" in result.stderr


def test_missing_or_wrong_sources_and_mistakes_are_one_line_errors(original, source_images, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for image in source_images.iterdir():
        shutil.copy(image, wrong / image.name)
    (wrong / "stripes.png").write_bytes((source_images / "waves.png").read_bytes())  # the name, other bytes
    (tmp_path / "folder-export" / "x").mkdir(parents=True)
    export = json.loads((original / "manifest.json").read_bytes())
    export["formats"] = ["folder"]
    export["folder"] = {"classes": ["x"]}
    (tmp_path / "folder-export" / "manifest.json").write_text(json.dumps(export))
    edited = json.loads((original / "manifest.json").read_bytes())
    edited["config"]["output"]["seed"] = 4
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    hostile = json.loads((original / "manifest.json").read_bytes())
    hostile["shards"][0]["name"] = "../escape.tar"
    (tmp_path / "hostile.json").write_text(json.dumps(hostile))
    manifest = original / "manifest.json"
    cases = [
        (["--from-manifest", manifest, "--image-dir", wrong], ["'stripes.png'", "is not in", "has other bytes"]),
        (["--from-manifest", manifest, "--image-dir", tmp_path / "nothing"], ["source image", "is not in"]),
        (["--from-manifest", manifest], ["is not in nowhere", "--image-dir"]),
        (["--from-manifest", manifest, "--image-dir", source_images, "--seed", 5], ["--seed comes from the manifest"]),
        (["--from-manifest", manifest, "--source", source_images, "--format", "ffcv"], ["--format comes from"]),
        (["--from-manifest", tmp_path / "none.json", "--image-dir", source_images], ["no such manifest"]),
        (["--from-manifest", tmp_path / "folder-export", "--image-dir", source_images], ["an exported folder"]),
        (["--from-manifest", tmp_path / "edited.json", "--image-dir", source_images], ["config_sha256"]),
        (["--from-manifest", tmp_path / "hostile.json", "--image-dir", source_images], ["plain file name"]),
        (["--from-manifest", "http://127.0.0.1:9/demo/", "--image-dir", source_images], ["cannot download"]),
    ]
    for args, fragments in cases:
        out = tmp_path / "out"
        assert_one_line_error(gen(*args, "--out", out), "mono-gen", *fragments)
        assert not out.exists(), args


def test_the_embedded_default_image_is_found_without_being_given(tmp_path):
    mono_gen("--samples", 20, "--size", 16, "--shard-size", 10, "--out", tmp_path / "ds")
    result = gen("--from-manifest", tmp_path / "ds", "--out", tmp_path / "again", "-q")
    assert result.returncode == 0, result.stderr
    made, recorded = files(tmp_path / "again"), files(tmp_path / "ds")
    assert made["train-000000.tar"] == recorded["train-000000.tar"] and made["_info.json"] == recorded["_info.json"]
