"""FFCV's dataset file (.beton): written holding the shards' JPEG bytes unchanged, and read back (verify, export).

The layout is FFCV's file format, version 2 (ffcv 1.0): a header, one descriptor per field, one
fixed-size metadata record per sample, the JPEG bytes in pages, and an allocation table. It is
written here with numpy rather than with ffcv's DatasetWriter because the writer must (1) store
already-encoded JPEG bytes, where RGBImageField only encodes pixels itself, while keeping the
field's type id so that plain ffcv reads the file without custom fields; (2) give the same bytes on
every run, where DatasetWriter's worker processes claim pages in a racy order; (3) stream from the
shards in one pass. A side effect: writing needs no ffcv, only reading does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

VERSION = 2  # ffcv.types.CURRENT_VERSION of the ffcv releases that read these files
MIN_PAGE_SIZE = 1 << 23  # ffcv's default page size (4 × 2 MiB)

HEADER = np.dtype(
    [
        ("version", "<u2"),
        ("num_fields", "<u2"),
        ("page_size", "<u4"),
        ("num_samples", "<u8"),
        ("alloc_table_ptr", "<u8"),
    ],
    align=True,
)
FIELD_DESCRIPTOR = np.dtype([("type_id", "<u1"), ("name", ("<u1", 16)), ("arguments", ("<u1", (1024,)))], align=True)
ALLOCATION = np.dtype([("sample_id", "<u8"), ("ptr", "<u8"), ("size", "<u8")])
IMAGE_METADATA = np.dtype([("mode", "<u1"), ("width", "<u2"), ("height", "<u2"), ("data_ptr", "<u8")])
LABEL_METADATA = np.dtype("<i8")
SAMPLE_METADATA = np.dtype([("image", IMAGE_METADATA), ("label", LABEL_METADATA)], align=True)

# (name, ffcv type id): 2 is RGBImageField, 1 is IntField.
FIELDS = (("image", 2), ("label", 1))
JPEG_MODE = 0  # RGBImageField's mode for JPEG-compressed data


def page_size_for(image_size: int) -> int:
    """A page must hold the largest JPEG: 8 MiB, or a power of two above 6 bytes per pixel."""
    size = MIN_PAGE_SIZE
    while size < 6 * image_size * image_size:
        size *= 2
    return size


class BetonWriter:
    """Append samples in index order; `close()` writes the header, metadata and allocation table.

    Memory is two small arrays per sample (48 bytes) plus one page, whatever the dataset size.
    """

    def __init__(self, f: BinaryIO, num_samples: int, page_size: int):
        self.f = f
        self.num_samples = num_samples
        self.page_size = page_size
        self.metadata = np.zeros(num_samples, SAMPLE_METADATA)
        self.allocations = np.zeros(num_samples, ALLOCATION)
        front = HEADER.itemsize + len(FIELDS) * FIELD_DESCRIPTOR.itemsize + self.metadata.nbytes
        self.data_start = -(-front // page_size) * page_size
        self.page = bytearray()
        self.pages = 0
        self.count = 0
        f.seek(self.data_start)

    def add(self, jpeg: bytes, width: int, height: int, label: int) -> None:
        if self.count == self.num_samples:
            raise ValueError(f"more than the {self.num_samples} samples announced")
        if len(jpeg) > self.page_size:
            raise ValueError(f"a {len(jpeg):,}-byte JPEG does not fit in a {self.page_size:,}-byte page")
        if len(self.page) + len(jpeg) > self.page_size:
            self._flush_page()
        ptr = self.data_start + self.pages * self.page_size + len(self.page)
        self.page += jpeg
        i = self.count
        self.metadata[i] = ((JPEG_MODE, width, height, ptr), label)
        self.allocations[i] = (i, ptr, len(jpeg))
        self.count += 1

    def _flush_page(self) -> None:
        self.f.write(self.page.ljust(self.page_size, b"\x00"))
        self.page = bytearray()
        self.pages += 1

    def close(self) -> None:
        if self.count != self.num_samples:
            raise ValueError(f"{self.count} samples written, {self.num_samples} announced")
        if self.page:
            self._flush_page()
        table_ptr = self.f.tell()
        self.f.write(self.allocations.tobytes())
        header = np.zeros((), HEADER)
        header["version"] = VERSION
        header["num_fields"] = len(FIELDS)
        header["page_size"] = self.page_size
        header["num_samples"] = self.num_samples
        header["alloc_table_ptr"] = table_ptr
        descriptors = np.zeros(len(FIELDS), FIELD_DESCRIPTOR)
        for d, (name, type_id) in zip(descriptors, FIELDS):
            d["type_id"] = type_id
            d["name"][: len(name)] = np.frombuffer(name.encode("ascii"), np.uint8)
        self.f.seek(0)
        self.f.write(header.tobytes() + descriptors.tobytes() + self.metadata.tobytes())
        self.f.seek(0, os.SEEK_END)


def read_header(path: Path) -> dict:
    """The header of a .beton as a dict (for checks without ffcv)."""
    with open(path, "rb") as f:
        raw = f.read(HEADER.itemsize)
    if len(raw) < HEADER.itemsize:
        raise ValueError("file too short for a .beton header")
    header = np.frombuffer(raw, HEADER)[0]
    return {name: int(header[name]) for name in HEADER.names}


def iter_beton(path: Path) -> Iterator[tuple[int, bytes]]:
    """(label, JPEG bytes) of every sample of a .beton written by BetonWriter, in index order;
    ValueError if the file is not one."""
    data = np.memmap(path, np.uint8, mode="r")
    header = read_header(path)
    if header["version"] != VERSION or header["num_fields"] != len(FIELDS):
        raise ValueError(
            f"not a .beton written by mono-gen (version {header['version']}, {header['num_fields']} fields)"
        )
    start = HEADER.itemsize + len(FIELDS) * FIELD_DESCRIPTOR.itemsize
    stop = start + header["num_samples"] * SAMPLE_METADATA.itemsize
    if stop > header["alloc_table_ptr"] or header["alloc_table_ptr"] > len(data):
        raise ValueError("damaged .beton (its tables point outside the file)")
    metadata = np.frombuffer(data[start:stop].tobytes(), SAMPLE_METADATA)
    table = np.frombuffer(data[header["alloc_table_ptr"] :].tobytes(), ALLOCATION)
    sizes = dict(zip(table["ptr"].tolist(), table["size"].tolist()))
    for record in metadata:
        ptr = int(record["image"]["data_ptr"])
        if ptr not in sizes or ptr + sizes[ptr] > len(data):
            raise ValueError("damaged .beton (a sample points outside the file)")
        yield int(record["label"]), data[ptr : ptr + sizes[ptr]].tobytes()
