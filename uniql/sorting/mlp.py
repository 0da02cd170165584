"""MLP channel order by ridge leverage score, without a pseudo-inverse per rate."""

from __future__ import annotations

import torch


def ridge_leverage_scores(second_moment: torch.Tensor, ridge_alpha: float) -> torch.Tensor:
    """Return ``diag(C (C + lam I)^-1)`` for ``C [D, D]`` with ``lam = alpha * trace(C) / D``.

    The ridge is relative to the mean eigenvalue, so the score does not depend on the
    activation scale or the number of calibration tokens. Uses ``score = 1 - lam * diag((C + lam I)^-1)``
    and a Cholesky factorization in float64.
    """
    covariance = second_moment.double()
    width = covariance.shape[0]
    ridge = ridge_alpha * torch.trace(covariance) / width
    if ridge <= 0:
        return torch.zeros(width, dtype=torch.float64)
    regularized = covariance + ridge * torch.eye(width, dtype=torch.float64)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(regularized))
    return 1.0 - ridge * torch.diagonal(inverse)


def mlp_channel_order(second_moment: torch.Tensor, ridge_alpha: float) -> torch.Tensor:
    """Channel permutation, most important first (stable for ties)."""
    scores = ridge_leverage_scores(second_moment, ridge_alpha)
    return torch.argsort(scores, descending=True, stable=True)


def permute_mlp(params: dict[str, torch.Tensor], prefix: str, order: torch.Tensor) -> None:
    """Reorder gate/up rows and down columns (and any biases of those rows) in place."""
    for name in ("gate_proj", "up_proj"):
        params[f"{prefix}.{name}.weight"] = params[f"{prefix}.{name}.weight"][order].contiguous()
        bias = params.get(f"{prefix}.{name}.bias")
        if bias is not None:
            params[f"{prefix}.{name}.bias"] = bias[order].contiguous()
    params[f"{prefix}.down_proj.weight"] = params[f"{prefix}.down_proj.weight"][:, order].contiguous()
