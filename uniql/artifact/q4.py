"""4-bit weights in the layout of onnxruntime's com.microsoft::MatMulNBits.

For a weight ``W [N, K]`` and group size ``g``:
``qweight`` uint8 ``[N, K/g, g/2]`` (low nibble first), ``scales`` float16 ``[N, K/g]`` and
optional ``zeros`` uint8 ``[N, K/g]``; ``W[n, b*g + j] = (q - z) * s`` with ``z = 8`` when
there are no zero points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SYMMETRIC_ZERO = 8


def pack_nibbles(codes: np.ndarray, group_size: int) -> np.ndarray:
    """Pack integer codes ``[N, K]`` in 0..15 into ``[N, K/g, g/2]`` bytes, low nibble first."""
    rows, cols = codes.shape
    if cols % group_size or group_size % 2:
        raise ValueError(f"group size {group_size} must be even and divide {cols}")
    codes = codes.astype(np.uint8).reshape(rows, cols // group_size, group_size // 2, 2)
    return (codes[..., 0] | (codes[..., 1] << 4)).astype(np.uint8)


def unpack_nibbles(qweight: np.ndarray) -> np.ndarray:
    """Unpack ``[N, K/g, g/2]`` bytes into integer codes ``[N, K]`` (uint8)."""
    low = qweight & 0x0F
    high = qweight >> 4
    rows = qweight.shape[0]
    return np.stack([low, high], axis=-1).reshape(rows, -1)


@dataclass
class QuantizedTensor:
    """A 4-bit weight ``[N, K]`` stored as MatMulNBits parts."""

    qweight: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    group_size: int

    @property
    def shape(self) -> tuple[int, int]:
        rows, blocks, _ = self.qweight.shape
        return rows, blocks * self.group_size

    @property
    def nbytes(self) -> int:
        total = self.qweight.nbytes + self.scales.nbytes
        return total + (self.zeros.nbytes if self.zeros is not None else 0)

    def codes(self) -> np.ndarray:
        return unpack_nibbles(self.qweight)

    def dequantize(self) -> np.ndarray:
        """Return the float32 weight ``[N, K]``."""
        rows, cols = self.shape
        codes = self.codes().astype(np.float32).reshape(rows, cols // self.group_size, self.group_size)
        zeros = self.zeros.astype(np.float32) if self.zeros is not None else np.float32(SYMMETRIC_ZERO)
        if self.zeros is not None:
            zeros = zeros[..., None]
        scales = self.scales.astype(np.float32)[..., None]
        return ((codes - zeros) * scales).reshape(rows, cols)

    def parts(self) -> dict[str, np.ndarray]:
        parts = {"qweight": self.qweight, "scales": self.scales}
        if self.zeros is not None:
            parts["zeros"] = self.zeros
        return parts

    @classmethod
    def from_codes(
        cls, codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, group_size: int
    ) -> "QuantizedTensor":
        """Build from integer codes ``[N, K]``, scales ``[N, K/g]`` and zero points ``[N, K/g]``."""
        zero_part = None if zeros is None else np.ascontiguousarray(zeros, dtype=np.uint8)
        return cls(
            qweight=pack_nibbles(codes, group_size),
            scales=np.ascontiguousarray(scales, dtype=np.float16),
            zeros=zero_part,
            group_size=group_size,
        )
