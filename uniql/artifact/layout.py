"""Slicing arithmetic: which ranges of a tensor axis a kept size keeps.

A tensor spec's ``slice`` entry (see docs/artifact-format.md) names a layout. These functions
turn a kept size into sorted, disjoint ``(start, stop)`` ranges along the cut axis.
"""

from __future__ import annotations

from typing import Any

Range = tuple[int, int]


def kept_ranges(slice_spec: dict[str, Any], axis_length: int, kept: int) -> list[Range]:
    """Return the ranges of the cut axis kept at size ``kept``, ascending."""
    layout = slice_spec["layout"]
    if layout == "prefix":
        return [(0, kept)] if kept > 0 else []

    heads = int(slice_spec["heads"])
    head_dim = int(slice_spec["head_dim"])
    if heads * head_dim != axis_length:
        raise ValueError(f"{heads} heads of {head_dim} do not cover an axis of {axis_length}")

    ranges: list[Range] = []
    for head in range(heads):
        base = head * head_dim
        if layout == "head_prefix":
            ranges.append((base, base + kept))
        elif layout == "head_pairs":
            if kept % 2:
                raise ValueError(f"head_pairs needs an even kept size, got {kept}")
            half = kept // 2
            ranges.append((base, base + half))
            ranges.append((base + head_dim // 2, base + head_dim // 2 + half))
        else:
            raise ValueError(f"unknown slice layout {layout!r}")
    return [(start, stop) for start, stop in ranges if stop > start]


def band_ranges(slice_spec: dict[str, Any], axis_length: int, kept: int, kept_before: int) -> list[Range]:
    """Return the ranges kept at ``kept`` but not at the smaller ``kept_before``.

    Band 0 uses ``kept_before = 0``. The union over bands 0..i of these ranges equals
    ``kept_ranges`` at band i's kept size.
    """
    if kept_before > kept:
        raise ValueError(f"kept sizes must not grow with the rate: {kept_before} > {kept}")
    layout = slice_spec["layout"]
    if layout == "prefix":
        return [(kept_before, kept)] if kept > kept_before else []

    heads = int(slice_spec["heads"])
    head_dim = int(slice_spec["head_dim"])
    ranges: list[Range] = []
    for head in range(heads):
        base = head * head_dim
        if layout == "head_prefix":
            ranges.append((base + kept_before, base + kept))
        elif layout == "head_pairs":
            lo, hi = kept_before // 2, kept // 2
            ranges.append((base + lo, base + hi))
            ranges.append((base + head_dim // 2 + lo, base + head_dim // 2 + hi))
        else:
            raise ValueError(f"unknown slice layout {layout!r}")
    return [(start, stop) for start, stop in ranges if stop > start]


def kept_size_for(slice_spec: dict[str, Any], layer_kept: dict[str, int]) -> int:
    """Pick the kept size that applies to a tensor from one layer's kept sizes."""
    module = slice_spec["module"]
    if module == "attn":
        return int(layer_kept["attn_head_dim"])
    if module == "mlp":
        return int(layer_kept["mlp"])
    raise ValueError(f"unknown sliced module {module!r}")
