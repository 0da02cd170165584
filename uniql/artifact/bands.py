"""Encoding and decoding of band blobs: a JSON index followed by 64-byte aligned parts."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from uniql.errors import ArtifactError

MAGIC = b"UNIQLBND"
ALIGNMENT = 64


@dataclass
class BandPiece:
    """One part of one tensor over one range of its cut axis (``axis`` None: the whole tensor)."""

    tensor: str
    part: str
    axis: int | None
    start: int
    stop: int
    array: np.ndarray


def _padding(length: int) -> int:
    return (-length) % ALIGNMENT


def encode_band(band: int, rate: float, pieces: list[BandPiece]) -> bytes:
    entries: list[dict[str, Any]] = []
    offset = 0
    for piece in pieces:
        array = np.ascontiguousarray(piece.array)
        entries.append({
            "tensor": piece.tensor, "part": piece.part, "axis": piece.axis,
            "start": piece.start, "stop": piece.stop,
            "dtype": array.dtype.name, "shape": list(array.shape),
            "offset": offset, "nbytes": array.nbytes,
        })
        offset += array.nbytes + _padding(array.nbytes)

    header = json.dumps({"band": band, "rate": rate, "entries": entries}, separators=(",", ":")).encode()
    prefix = MAGIC + struct.pack("<Q", len(header)) + header
    chunks = [prefix, bytes(_padding(len(prefix)))]
    for piece in pieces:
        raw = np.ascontiguousarray(piece.array).tobytes()
        chunks.append(raw)
        chunks.append(bytes(_padding(len(raw))))
    return b"".join(chunks)


def decode_band(blob: bytes) -> tuple[dict[str, Any], list[BandPiece]]:
    """Split a band blob into its header and pieces (arrays are views into ``blob``)."""
    if blob[:8] != MAGIC or len(blob) < 16:
        raise ArtifactError("not a band blob: the first bytes are not the UNIQLBND magic")
    (header_length,) = struct.unpack("<Q", blob[8:16])
    header = json.loads(blob[16:16 + header_length])
    data_start = 16 + header_length + _padding(16 + header_length)

    pieces = []
    for entry in header["entries"]:
        begin = data_start + entry["offset"]
        array = np.frombuffer(blob, dtype=np.dtype(entry["dtype"]), count=_count(entry), offset=begin)
        pieces.append(BandPiece(
            tensor=entry["tensor"], part=entry["part"], axis=entry["axis"],
            start=entry["start"], stop=entry["stop"], array=array.reshape(entry["shape"]),
        ))
    return header, pieces


def _count(entry: dict[str, Any]) -> int:
    count = 1
    for size in entry["shape"]:
        count *= size
    return count
