"""Source images of every kind decode to the right RGB, and bad ones fail with one clear line."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import resource
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import assert_one_line_error, run_tool
from mono.generator.errors import UserError
from mono.generator.imageio import decode_rgb
from mono.generator.sources import PAPER_IMAGES


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_grey_palette_and_cmyk_become_rgb():
    grey = decode_rgb(encode(Image.new("L", (8, 6), 77), "PNG"), "g")
    assert grey.shape == (6, 8, 3) and np.all(grey == 77)
    palette = Image.new("RGB", (8, 6), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert np.all(decode_rgb(encode(palette, "PNG"), "p") == (10, 200, 30))
    cyan = decode_rgb(encode(Image.new("CMYK", (8, 6), (255, 0, 0, 0)), "JPEG", quality=100), "c")
    assert np.abs(cyan.astype(int) - (0, 255, 255)).max() <= 3


def test_sixteen_bit_grey_is_scaled_not_clipped():
    values = np.array([[0, 32768, 65535]], np.uint16)
    image = Image.fromarray(values)
    rgb = decode_rgb(encode(image, "PNG"), "16bit")
    assert rgb[0, :, 0].tolist() == [0, 128, 255]


def test_transparency_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)  # opaque red
    rgba[:, 2:] = (0, 0, 255, 0)  # fully transparent blue
    rgb = decode_rgb(encode(Image.fromarray(rgba), "PNG"), "rgba")
    assert np.all(rgb[:, :2] == (255, 0, 0)) and np.all(rgb[:, 2:] == (255, 255, 255))


def test_exif_orientation_is_honoured():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    rgb = decode_rgb(encode(image, "JPEG", exif=exif, quality=95), "exif")
    assert rgb.shape == (40, 20, 3)  # now portrait
    assert rgb[:20].mean() > 200 and rgb[20:].mean() < 50  # white half on top


def test_decompression_bombs_and_corrupt_files_are_refused():
    big = encode(Image.new("RGB", (200, 200)), "PNG")
    with pytest.raises(UserError, match="decompression bomb"):
        decode_rgb(big, "bomb", max_pixels=10_000)
    jpeg = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(UserError, match="corrupt or truncated"):
        decode_rgb(jpeg[: len(jpeg) // 2], "truncated")
    with pytest.raises(UserError, match="not an image"):
        decode_rgb(b"definitely not an image", "text")


@pytest.fixture
def image_files(tmp_path):
    files = {}
    files["rgba.png"] = Image.new("RGBA", (300, 200), (30, 60, 90, 255))
    files["grey16.png"] = Image.fromarray(np.full((200, 300), 40000, np.uint16))
    for name, image in files.items():
        image.save(tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("name,expected", [("rgba.png", (30, 60, 90)), ("grey16.png", (156, 156, 156))])
def test_unusual_modes_go_through_the_whole_generator(image_files, tmp_path, name, expected):
    out = tmp_path / "out"
    result = run_tool(
        "mono.generator.cli",
        "--image",
        image_files / name,
        "--samples",
        4,
        "--size",
        16,
        "--augment",
        "none",
        "--workers",
        1,
        "--quiet",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    import webdataset as wds

    images = [
        np.asarray(img)
        for (img,) in wds.WebDataset(str(out / "train-000000.tar"), shardshuffle=False).decode("rgb8").to_tuple("jpg")
    ]
    assert len(images) == 4
    assert np.abs(images[0].reshape(-1, 3).mean(0) - expected).max() < 3


def _bad_cases(tmp_path: Path):
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    Image.new("RGB", (3, 3)).save(tmp_path / "tiny.png")
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    Image.new("RGB", (300, 300)).save(tmp_path / "ok.png")
    jpeg = encode(Image.new("RGB", (256, 256), (9, 9, 9)), "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "afile").write_text("x")
    folder = tmp_path / "two"
    folder.mkdir()
    for k in range(2):
        Image.new("RGB", (64, 64), (k, k, k)).save(folder / f"{k}.png")
    ok = ["--image", tmp_path / "ok.png", "--samples", 10, "--size", 16]
    return {
        "missing file": (["--image", tmp_path / "nope.jpg", "--samples", 10], "no such file"),
        "directory as image": (["--image", tmp_path, "--samples", 10], "is a directory"),
        "corrupt image": (["--image", tmp_path / "corrupt.jpg", "--samples", 10], "corrupt"),
        "truncated image": (["--image", tmp_path / "truncated.jpg", "--samples", 10], "truncated"),
        "too small": (["--image", tmp_path / "tiny.png", "--samples", 10], "too small"),
        "bomb": (["--image", tmp_path / "big.png", "--samples", 10, "--max-pixels", 1000], "decompression bomb"),
        "N too large": (["--source", folder, "--n", 3, "--samples", 10], "more images than"),
        "zero samples": (ok[:2] + ["--samples", 0], "number of samples must be positive"),
        "negative size": (ok[:2] + ["--size", -4], "image size must be positive"),
        "beta zero": (ok + ["--beta", 0], "beta must be in (0, 1]"),
        "beta above one": (ok + ["--beta", 1.5], "beta must be in (0, 1]"),
        "hue NaN": (ok + ["--hue", "nan"], "--hue must be in [0, 0.5], got nan"),
        "brightness infinite": (ok + ["--brightness", "inf"], "--brightness must be in [0, 1), got inf"),
        "max angle NaN": (ok + ["--max-angle", "nan"], "--max-angle must be in [0, 90] degrees, got nan"),
        "flip probability infinite": (ok + ["--flip-prob", "-inf"], "--flip-prob must be in [0, 1], got -inf"),
        "unknown augmentation": (ok + ["--augment", "scale,blur"], "--augment"),
        "bad shard range": (ok + ["--shards", "3:1"], "outside"),
        "output is a file": (ok, "not a directory"),
        "output parent is a file": (ok, "cannot write"),
        "not a number": (ok[:2] + ["--samples", "many"], "not a valid integer"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "directory as image",
        "corrupt image",
        "truncated image",
        "too small",
        "bomb",
        "N too large",
        "zero samples",
        "negative size",
        "beta zero",
        "beta above one",
        "hue NaN",
        "brightness infinite",
        "max angle NaN",
        "flip probability infinite",
        "unknown augmentation",
        "bad shard range",
        "output is a file",
        "output parent is a file",
        "not a number",
    ],
)
def test_bad_input_gives_one_line_and_leaves_nothing(tmp_path, case):
    args, fragment = _bad_cases(tmp_path)[case]
    out = tmp_path / "out"
    if case == "output is a file":
        out = tmp_path / "afile"
    elif case == "output parent is a file":
        out = tmp_path / "afile" / "sub"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_tool("mono.generator.cli", *args, "--out", out, "--workers", 1)
    assert_one_line_error(result, "mono-gen", fragment)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere


def test_a_full_disk_fails_cleanly(tmp_path):
    Image.new("RGB", (300, 300), (5, 6, 7)).save(tmp_path / "ok.png")
    out = tmp_path / "out"

    def limit_file_size():  # files may not grow beyond 64 KiB: the first shard cannot be written
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    result = run_tool(
        "mono.generator.cli",
        "--image",
        tmp_path / "ok.png",
        "--samples",
        2000,
        "--size",
        32,
        "--workers",
        1,
        "--quiet",
        "--out",
        out,
        preexec_fn=limit_file_size,
    )
    assert_one_line_error(result, "mono-gen", "no space left")
    assert not out.exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def image_server(source_image, tmp_path):
    """A local HTTP server publishing a folder, as the authors' repository publishes the images."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "animals.png").write_bytes(source_image.read_bytes())
    (root / "sf.png").write_bytes(source_image.read_bytes())  # wrong content on purpose
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def pinned(tmp_path: Path, letter: str, data: bytes) -> dict:
    """Environment for a subprocess whose mono-gen takes `data` for the paper's image `letter`: its SHA-256
    is pinned in place of the real one, so that the download path runs without the paper's files."""
    hook = tmp_path / "pin"
    hook.mkdir(exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    (hook / "sitecustomize.py").write_text(
        "import mono.generator.sources as s\n"
        f"s.PAPER_IMAGES[{letter!r}] = (s.PAPER_IMAGES[{letter!r}][0], {digest!r})\n"
    )
    return {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}


def test_paper_image_is_downloaded_into_the_cache_and_verified(image_server, source_image, tmp_path):
    cache = tmp_path / "cache"
    served = (tmp_path / "www" / "animals.png").read_bytes()
    env = {
        "MONO_CACHE_DIR": str(cache),
        "MONO_IMAGE_URL": image_server,
        "MONO_IMAGE_DIR": "",
        **pinned(tmp_path, "B", served),
    }
    result = run_tool(
        "mono.generator.cli",
        "--image",
        "B",
        "--samples",
        8,
        "--size",
        16,
        "--workers",
        1,
        "--quiet",
        "--out",
        tmp_path / "out",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    cached = cache / "images" / "animals.png"
    assert cached.read_bytes() == served
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert hashlib.sha256(served).hexdigest() in manifest and '"origin": "paper:B"' in manifest

    # A server that serves the wrong bytes is caught by the hash, and nothing enters the cache.
    result = run_tool("mono.generator.cli", "--image", "C", "--samples", 8, "--out", tmp_path / "out2", env=env)
    assert_one_line_error(result, "mono-gen", "does not match the expected sha256")
    assert PAPER_IMAGES["C"][1][:12] in result.stderr, "the real image C's digest is checked"
    assert not (cache / "images" / "sf.png").exists() and not (tmp_path / "out2").exists()


def test_offline_without_the_image_says_where_to_put_it(tmp_path):
    env = {"MONO_CACHE_DIR": str(tmp_path / "cache"), "MONO_IMAGE_URL": "http://127.0.0.1:9/", "MONO_IMAGE_DIR": ""}
    result = run_tool("mono.generator.cli", "--image", "A", "--out", tmp_path / "out", env=env)
    assert_one_line_error(result, "mono-gen", "ameyoko.jpg", "could not be downloaded", str(tmp_path / "cache"))


def test_a_wrong_file_in_the_image_dir_is_refused(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "animals.png")
    result = run_tool(
        "mono.generator.cli",
        "--image",
        "B",
        "--image-dir",
        tmp_path,
        "--out",
        tmp_path / "out",
        env={"MONO_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert_one_line_error(result, "mono-gen", "is not the paper's image B")


@pytest.mark.parametrize(
    "size, message",
    [
        (["--samples", 100000000000000000000], "--samples must be at most 999,999,999"),
        (["--samples", 2_000_000, "--shard-size", 1], "make 2,000,000 shards; a manifest holds at most 100,000"),
    ],
)
def test_a_size_that_cannot_fit_is_refused_at_once_and_writes_nothing(tmp_path, size, message):
    Image.new("RGB", (300, 300), (5, 6, 7)).save(tmp_path / "ok.png")
    result = run_tool(
        "mono.generator.cli",
        "--image",
        tmp_path / "ok.png",
        *size,
        "--size",
        16,
        "--workers",
        1,
        "--out",
        tmp_path / "out",
        timeout=60,
    )
    assert_one_line_error(result, "mono-gen", message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"]


def test_run_state_with_nothing_made_does_not_block_another_configuration(tmp_path):
    Image.new("RGB", (300, 300), (5, 6, 7)).save(tmp_path / "ok.png")
    out = tmp_path / "out"
    (out / ".mono-gen" / "partial").mkdir(parents=True)  # what a run killed before its first shard leaves
    (out / ".mono-gen" / "config.json").write_text('{"config_sha256": "' + "1" * 64 + '"}')
    result = run_tool(
        "mono.generator.cli",
        "--image",
        tmp_path / "ok.png",
        "--samples",
        10,
        "--size",
        16,
        "--workers",
        1,
        "-q",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert run_tool("mono.generator.shards_cli", "verify", "-q", out).returncode == 0
