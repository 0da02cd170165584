"""The 4-bit grid: per-row, per-group scales (float16) and integer zero points.

Asymmetric: ``s = (max - min) / 15`` over a group whose range is widened to include 0,
``z = round(-min / s)`` in 0..15. Symmetric: ``s = 2 * max|w| / 15`` and ``z = 8``, so levels are
``-8 .. 7`` times ``s``. Dequantized ``w = (q - z) * s``. Scales are rounded to float16 before
use, so the values GPTQ optimizes are exactly the ones the artifact stores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LEVELS = 15


@dataclass(frozen=True)
class QuantizedWeight:
    codes: torch.Tensor      # [N, K] uint8 in 0..15
    scales: torch.Tensor     # [N, K/g] float16
    zeros: torch.Tensor      # [N, K/g] uint8 (8 everywhere for the symmetric grid)

    def dequantize(self) -> torch.Tensor:
        rows, cols = self.codes.shape
        blocks = self.scales.shape[1]
        codes = self.codes.float().view(rows, blocks, cols // blocks)
        return ((codes - self.zeros.float()[..., None]) * self.scales.float()[..., None]).view(rows, cols)


def group_grid(weights: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point ``[N]`` for one group of columns ``weights [N, g]``."""
    if symmetric:
        scale = 2 * weights.abs().amax(dim=1) / LEVELS
        scale = _usable(scale)
        return scale, torch.full_like(scale, 8.0)
    low = weights.amin(dim=1).clamp(max=0)
    high = weights.amax(dim=1).clamp(min=0)
    scale = _usable((high - low) / LEVELS)
    zero = torch.round(-low / scale).clamp(0, LEVELS)
    return scale, zero


def _usable(scale: torch.Tensor) -> torch.Tensor:
    scale = scale.to(torch.float16).float()
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def quantize_column(column: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Integer codes of one column ``[N]`` on a grid."""
    return torch.clamp(torch.round(column / scale) + zero, 0, LEVELS)


def round_to_nearest(weight: torch.Tensor, group_size: int, symmetric: bool) -> QuantizedWeight:
    """Quantize ``weight [N, K]`` by rounding every value to its group's nearest level."""
    rows, cols = weight.shape
    grouped = weight.float().reshape(rows, cols // group_size, group_size)
    scales, zeros = [], []
    for block in range(grouped.shape[1]):
        scale, zero = group_grid(grouped[:, block], symmetric)
        scales.append(scale)
        zeros.append(zero)
    scale = torch.stack(scales, dim=1)
    zero = torch.stack(zeros, dim=1)
    codes = torch.clamp(torch.round(grouped / scale[..., None]) + zero[..., None], 0, LEVELS)
    codes = codes.reshape(rows, cols).to(torch.uint8)
    return QuantizedWeight(codes.cpu(), scale.half().cpu(), zero.to(torch.uint8).cpu())
