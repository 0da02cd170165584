"""GPTQ: quantize columns one at a time and push each column's error into the columns not yet quantized.

Follows Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers" (2022): the inverse Hessian ``H^-1`` of the layer's squared output error
(``H = mean X^T X``) is factored once as an upper Cholesky factor, and quantization runs in
blocks with lazy updates. Group grids are computed from the error-updated weights when a group
starts, and groups never straddle a slice boundary, so slicing the result stays exact.
"""

from __future__ import annotations

import logging

import torch

from uniql.quantization.grid import LEVELS, QuantizedWeight, group_grid, quantize_column

logger = logging.getLogger(__name__)


def inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the upper Cholesky factor of ``(H + damp * mean(diag H) I)^-1`` and the dead-column mask."""
    hessian = hessian.double().clone()
    dead = torch.diagonal(hessian) == 0
    hessian[dead, dead] = 1
    damping = damp * torch.diagonal(hessian).mean()
    identity = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    hessian += damping * identity
    try:
        lower = torch.linalg.cholesky(hessian)
    except torch.linalg.LinAlgError:
        logger.warning("Hessian is not positive definite with damping %.3g; retrying with 10x damping", damp)
        hessian += 9 * damping * identity
        lower = torch.linalg.cholesky(hessian)
    inverse = torch.cholesky_inverse(lower)
    return torch.linalg.cholesky(inverse, upper=True).float(), dead


@torch.no_grad()
def gptq_quantize(
    weight: torch.Tensor, hessian: torch.Tensor, group_size: int, symmetric: bool,
    damp: float = 0.01, block_size: int = 128, reverse: bool = False,
    factorization: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> QuantizedWeight:
    """Quantize ``weight [N, K]`` given ``hessian [K, K]``.

    ``reverse`` processes columns from last to first, so error flows into the leading
    columns, which every pruning rate keeps, instead of the tail that high rates cut.
    ``factorization`` is ``inverse_hessian_factor(hessian, damp)`` computed once for all the
    linears that read the same input (natural order only).
    """
    rows, cols = weight.shape
    if cols % group_size:
        raise ValueError(f"group size {group_size} does not divide {cols} columns")
    device = weight.device
    order = torch.arange(cols - 1, -1, -1, device=device) if reverse else torch.arange(cols, device=device)
    work = weight.float()[:, order].clone()
    if factorization is not None and not reverse:
        factor, dead = factorization
    else:
        factor, dead = inverse_hessian_factor(hessian.to(device)[order][:, order], damp)
    work[:, dead] = 0

    block_size = max(group_size, block_size - block_size % group_size)
    codes = torch.zeros(rows, cols, dtype=torch.uint8, device=device)
    scales = torch.zeros(rows, cols // group_size, device=device)
    zeros = torch.zeros(rows, cols // group_size, device=device)
    scale = zero = None
    for start in range(0, cols, block_size):
        stop = min(start + block_size, cols)
        block = work[:, start:stop].clone()
        errors = torch.zeros_like(block)
        local = factor[start:stop, start:stop]
        for offset in range(stop - start):
            column = start + offset
            if column % group_size == 0:
                scale, zero = group_grid(block[:, offset:offset + group_size], symmetric)
                scales[:, column // group_size] = scale
                zeros[:, column // group_size] = zero
            code = quantize_column(block[:, offset], scale, zero)
            codes[:, column] = code.to(torch.uint8)
            error = (block[:, offset] - (code - zero) * scale) / local[offset, offset]
            block[:, offset:] -= error[:, None] * local[offset, offset:][None, :]
            errors[:, offset] = error
        work[:, stop:] -= errors @ factor[start:stop, stop:]

    if reverse:
        codes = codes.flip(1)
        scales = scales.flip(1)
        zeros = zeros.flip(1)
    return QuantizedWeight(codes.cpu(), scales.half().cpu(), zeros.clamp(0, LEVELS).to(torch.uint8).cpu())
