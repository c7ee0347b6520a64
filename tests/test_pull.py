"""mono-shards pull: a dataset published over HTTP (a local server on 127.0.0.1) becomes a verified copy; a
damaged file, a hostile manifest, an interruption and an unreachable host are handled as the command says."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import socket
import threading

import pytest

from helpers import assert_one_line_error, make_dataset, run_tool
from mono.generator.errors import UserError
from mono.generator.pull import STAGING, pull
from mono.generator.verify import verify


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory, with HTTP Range requests (which http.server lacks) unless `ranges` is off, and can
    cut the connection after `cut[name]` bytes of a file, as a dropped download does."""

    ranges = True
    cut: dict = {}
    log: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        type(self).log.append((name, self.headers.get("Range")))
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        wanted = self.headers.get("Range")
        if wanted and self.ranges:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if name in self.cut:
            body = body[: self.cut[name]]
            self.close_connection = True
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    """(served directory, its URL, the handler class: its settings and request log)."""
    served = tmp_path / "www"
    served.mkdir()
    handler = type("TestHandler", (Handler,), {"cut": {}, "log": [], "ranges": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def published(source_image, tmp_path_factory):
    """A small dataset with shards, _info.json and train.beton: 300 samples in 3 shards."""
    return make_dataset(tmp_path_factory.mktemp("pull") / "demo", source_image)


def files(root):
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def same(copy, original) -> bool:
    """The same files, but for the card, which names where the copy is."""
    mine, theirs = files(copy), files(original)
    return mine.pop("README.md", None) is not None and theirs.pop("README.md") and mine == theirs


def test_pull_makes_a_verified_copy_with_the_same_bytes(published, server, tmp_path):
    served, url, handler = server
    shutil.copytree(published, served / "demo")
    dest = tmp_path / "copy"
    downloaded = pull(f"{url}/demo/", dest, progress=False)
    original = files(published)
    assert {"manifest.json", "README.md", "_info.json", "train.beton", "train-000002.tar"} <= set(original)
    copy = files(dest)
    assert copy.pop("README.md").decode().count(f"--data-dir {dest}") == 1, "the card's timm line names the copy"
    assert copy == {n: d for n, d in original.items() if n != "README.md"}, "every file, manifest.json included"
    assert downloaded == sum(len(data) for name, data in original.items() if name not in ("manifest.json", "README.md"))
    assert handler.log[0] == ("manifest.json", None), "the manifest first"
    assert not (dest / STAGING).exists() and verify(dest).ok
    # Pulling again (here through the manifest's own URL) keeps what is there and downloads nothing.
    handler.log.clear()
    assert pull(f"{url}/demo/manifest.json", dest, progress=False) == 0
    assert [name for name, _ in handler.log] == ["manifest.json"]
    # The command: one summary line, and the copy verified.
    result = run_tool("mono.generator.shards_cli", "pull", f"{url}/demo", tmp_path / "cli")
    assert result.returncode == 0, result.stderr
    assert "300 samples" in result.stderr and "verified" in result.stderr
    assert files(tmp_path / "cli")["manifest.json"] == original["manifest.json"]


def test_an_interrupted_pull_resumes_where_it_stopped(published, server, tmp_path):
    served, url, handler = server
    shutil.copytree(published, served / "demo")
    handler.cut["train-000001.tar"] = 20_000
    dest = tmp_path / "copy"
    with pytest.raises(UserError, match=r"train-000001.tar: download failed .*run the same command again") as error:
        pull(f"{url}/demo", dest, progress=False)
    assert "\n" not in str(error.value)
    assert (dest / "train-000000.tar").exists() and not (dest / "train-000001.tar").exists()
    assert not (dest / "manifest.json").exists(), "no manifest until the copy is complete"
    assert (dest / STAGING / "partial" / "train-000001.tar").stat().st_size == 20_000
    handler.cut.clear()
    handler.log.clear()
    size = (published / "train-000001.tar").stat().st_size
    rest = sum(len(d) for n, d in files(published).items() if n not in ("manifest.json", "README.md"))
    rest -= (published / "train-000000.tar").stat().st_size + 20_000
    assert pull(f"{url}/demo", dest, progress=False) == rest
    assert ("train-000001.tar", "bytes=20000-") in handler.log
    assert "train-000000.tar" not in [name for name, _ in handler.log], "a complete file is not fetched again"
    assert same(dest, published) and verify(dest).ok
    # A server that ignores Range requests sends the whole file again: the copy starts over, still right.
    shutil.rmtree(dest)
    handler.cut["train-000001.tar"] = 5_000
    with pytest.raises(UserError, match="download failed"):
        pull(f"{url}/demo", dest, progress=False)
    handler.cut.clear()
    handler.ranges = False
    pull(f"{url}/demo", dest, progress=False)
    assert same(dest, published) and size > 5_000


def test_a_damaged_published_shard_is_refused_and_not_kept(published, server, tmp_path):
    served, url, _ = server
    shutil.copytree(published, served / "demo")
    shard = served / "demo" / "train-000002.tar"
    data = bytearray(shard.read_bytes())
    data[5000] ^= 0xFF
    shard.write_bytes(bytes(data))
    dest = tmp_path / "copy"
    with pytest.raises(UserError, match="train-000002.tar: the bytes downloaded differ from the manifest's SHA-256"):
        pull(f"{url}/demo", dest, progress=False)
    assert not (dest / "train-000002.tar").exists() and not (dest / "manifest.json").exists()
    assert not (dest / STAGING / "partial" / "train-000002.tar").exists()
    result = run_tool("mono.generator.shards_cli", "pull", f"{url}/demo", tmp_path / "cli", "-q")
    assert_one_line_error(result, "mono-shards", "train-000002.tar", "SHA-256")


@pytest.mark.parametrize(
    "name", ["../escape.tar", "/tmp/escape.tar", "pipe:touch escape", "http://elsewhere/x.tar", ".hidden", "a/b.tar"]
)
def test_a_manifest_naming_anything_but_plain_files_is_refused_before_any_download(published, server, tmp_path, name):
    served, url, handler = server
    shutil.copytree(published, served / "demo")
    path = served / "demo" / "manifest.json"
    manifest = json.loads(path.read_bytes())
    manifest["shards"][1]["name"] = name
    path.write_text(json.dumps(manifest))
    dest = tmp_path / "copy"
    with pytest.raises(UserError, match=r"malformed manifest: shards\[1\]\.name must be a plain file name"):
        pull(f"{url}/demo", dest, progress=False)
    assert [n for n, _ in handler.log] == ["manifest.json"], "nothing but the manifest was requested"
    assert not dest.exists() and not (tmp_path / "escape.tar").exists()


def test_a_manifest_that_renames_its_files_is_refused(published, server, tmp_path):
    served, url, handler = server
    shutil.copytree(published, served / "demo")
    path = served / "demo" / "manifest.json"
    for field, value, message in (
        ("ffcv", "manifest.json", "FFCV file is 'manifest.json'"),
        ("shards", "README.md", "shards differ"),
    ):
        manifest = json.loads((published / "manifest.json").read_bytes())
        if field == "ffcv":
            manifest["ffcv"]["name"] = value
        else:
            manifest["shards"][0]["name"] = value
        path.write_text(json.dumps(manifest))
        with pytest.raises(UserError, match=message):
            pull(f"{url}/demo", tmp_path / "copy", progress=False)
        assert not (tmp_path / "copy").exists()
    assert {n for n, _ in handler.log} == {"manifest.json"}


def test_mistakes_and_an_unreachable_host_are_one_line_errors(published, server, tmp_path):
    served, url, _ = server
    shutil.copytree(published, served / "demo")
    with socket.socket() as probe:  # a port nothing listens on: as offline as a test can be
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    other = tmp_path / "other"
    shutil.copytree(published, other)  # a finished dataset, but another one (its config hash differs)
    manifest = json.loads((other / "manifest.json").read_bytes())
    manifest["config_sha256"] = hashlib.sha256(b"another").hexdigest()
    (other / "manifest.json").write_text(json.dumps(manifest))
    cases = [
        ((f"http://127.0.0.1:{closed}/demo", tmp_path / "a"), ["cannot download the manifest"]),
        ((f"{url}/nothing-here", tmp_path / "b"), ["cannot download the manifest", "404"]),
        (("ftp://host/demo", tmp_path / "c"), ["not an http:// or https:// URL"]),
        ((str(published), tmp_path / "d"), ["not an http:// or https:// URL"]),
        ((f"{url}/demo", tmp_path / "full"), ["not empty"]),
        ((f"{url}/demo", other), ["holds another dataset"]),
    ]
    unfinished = tmp_path / "unfinished"  # a pull of another dataset, interrupted
    (unfinished / STAGING / "partial").mkdir(parents=True)
    (unfinished / STAGING / "manifest.json").write_text(json.dumps(manifest))
    (unfinished / "train-000000.tar").write_bytes(b"a shard of the other dataset")
    cases.append(((f"{url}/demo", unfinished), ["unfinished pull of another dataset"]))
    for args, fragments in cases:
        result = run_tool("mono.generator.shards_cli", "pull", *args, "-q")
        assert_one_line_error(result, "mono-shards", *fragments)
    for created in "abcd":
        assert not (tmp_path / created).exists(), "a refused pull leaves no directory behind"
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"], "a foreign directory untouched"
    assert (tmp_path / "unfinished" / "train-000000.tar").read_bytes() == b"a shard of the other dataset"
