"""Cutting tensors into band pieces and joining pieces back into tensors at a rate."""

from __future__ import annotations

from typing import Any

import numpy as np

from uniql.artifact.bands import BandPiece
from uniql.artifact.layout import Range
from uniql.artifact.q4 import QuantizedTensor

TensorValue = QuantizedTensor | np.ndarray


def tensor_parts(value: TensorValue) -> dict[str, np.ndarray]:
    if isinstance(value, QuantizedTensor):
        return value.parts()
    return {"data": value}


def cut_pieces(name: str, spec: dict[str, Any], value: TensorValue, ranges: list[Range] | None) -> list[BandPiece]:
    """Cut every part of a tensor to ``ranges`` of its slice axis (None: the whole tensor)."""
    parts = tensor_parts(value)
    if ranges is None:
        return [BandPiece(name, part, None, 0, 0, array) for part, array in parts.items()]

    axis = int(spec["slice"]["axis"])
    pieces = []
    for start, stop in ranges:
        lo, hi = _part_bounds(spec, value, start, stop)
        for part, array in parts.items():
            index = [slice(None)] * array.ndim
            index[axis] = slice(lo, hi)
            pieces.append(BandPiece(name, part, axis, start, stop, np.ascontiguousarray(array[tuple(index)])))
    return pieces


def _part_bounds(spec: dict[str, Any], value: TensorValue, start: int, stop: int) -> tuple[int, int]:
    """Map a range of the logical axis to a range of the stored parts' axis."""
    if isinstance(value, QuantizedTensor) and int(spec["slice"]["axis"]) == 1:
        group = value.group_size
        if start % group or stop % group:
            raise ValueError(f"cut [{start}, {stop}) is not aligned to group size {group}")
        return start // group, stop // group
    return start, stop


def join_pieces(spec: dict[str, Any], pieces: list[BandPiece]) -> TensorValue:
    """Concatenate pieces of one tensor in ascending order of their ranges."""
    by_part: dict[str, list[BandPiece]] = {}
    for piece in pieces:
        by_part.setdefault(piece.part, []).append(piece)

    arrays = {}
    for part, part_pieces in by_part.items():
        part_pieces.sort(key=lambda piece: piece.start)
        if part_pieces[0].axis is None:
            arrays[part] = part_pieces[0].array
        else:
            arrays[part] = np.concatenate([piece.array for piece in part_pieces], axis=part_pieces[0].axis)

    if spec["format"] == "q4":
        return QuantizedTensor(
            qweight=arrays["qweight"], scales=arrays["scales"],
            zeros=arrays.get("zeros"), group_size=int(spec["group_size"]),
        )
    return arrays["data"]
