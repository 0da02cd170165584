"""Attention sorting: RoPE-pair order for Q/K and a whitened joint SVD for V/O.

Shapes: ``d`` hidden size, ``Hq`` query heads, ``Hkv`` KV heads, ``G = Hq / Hkv``, ``dh`` head dim.
Weights are ``[out, in]`` (``y = x W^T + b``).
"""

from __future__ import annotations

import torch

from uniql.modeling.config import ArchConfig


def query_key_pair_order(
    q_weight: torch.Tensor, k_weight: torch.Tensor, q_bias: torch.Tensor | None, k_bias: torch.Tensor | None,
    second_moment: torch.Tensor, mean: torch.Tensor, config: ArchConfig,
) -> torch.Tensor:
    """Return the pair order ``[Hkv, dh/2]`` of each KV group, most important pair first.

    The energy of a RoPE pair ``(t, t + dh/2)`` is invariant under RoPE, so it is computed from
    the input statistics without running attention: ``E[(w.x + b)^2] = w^T M w + 2 b w^T mu + b^2``
    with ``M`` the second moment and ``mu`` the mean of the q/k/v input. A group's pair score is
    ``sqrt(E_k * sum over its query heads of E_q)``.
    """
    head_dim, half = config.head_dim, config.head_dim // 2
    query_energy = _output_energy(q_weight, q_bias, second_moment, mean).view(config.num_attention_heads, head_dim)
    key_energy = _output_energy(k_weight, k_bias, second_moment, mean).view(config.num_key_value_heads, head_dim)
    query_pairs = query_energy[:, :half] + query_energy[:, half:]                           # [Hq, dh/2]
    key_pairs = key_energy[:, :half] + key_energy[:, half:]                                 # [Hkv, dh/2]
    group_query = query_pairs.view(config.num_key_value_heads, config.group_size, half).sum(dim=1)
    scores = torch.sqrt(group_query.clamp_min(0) * key_pairs.clamp_min(0))
    return torch.argsort(scores, dim=1, descending=True, stable=True)


def _output_energy(weight, bias, second_moment, mean) -> torch.Tensor:
    weight = weight.double()
    energy = ((weight @ second_moment) * weight).sum(dim=1)
    if bias is not None:
        bias = bias.double()
        energy = energy + 2 * bias * (weight @ mean) + bias * bias
    return energy


def head_layout(pair_order: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Return the row layout ``[H, dh]`` of sorted heads: new position ``t`` is old dim ``layout[t]``."""
    return torch.cat([pair_order, pair_order + head_dim // 2], dim=1)


def permute_query_key(params: dict[str, torch.Tensor], prefix: str, pair_order: torch.Tensor, config: ArchConfig) -> None:
    """Reorder q and k rows (and biases) by each KV group's layout and store the pair order."""
    layout = head_layout(pair_order, config.head_dim)                                       # [Hkv, dh]
    offsets = torch.arange(config.num_key_value_heads)[:, None] * config.head_dim
    key_rows = (layout + offsets).reshape(-1)
    query_layout = layout.repeat_interleave(config.group_size, dim=0)                       # [Hq, dh]
    query_rows = (query_layout + torch.arange(config.num_attention_heads)[:, None] * config.head_dim).reshape(-1)

    for name, rows in (("q_proj", query_rows), ("k_proj", key_rows)):
        params[f"{prefix}.{name}.weight"] = params[f"{prefix}.{name}.weight"][rows].contiguous()
        bias = params.get(f"{prefix}.{name}.bias")
        if bias is not None:
            params[f"{prefix}.{name}.bias"] = bias[rows].contiguous()
    previous = params[f"{prefix}.rope_pairs"]
    params[f"{prefix}.rope_pairs"] = torch.gather(previous, 1, pair_order).contiguous()


def whitening_factors(second_moment: torch.Tensor, tokens: int, relative_floor: float = 1e-8):
    """Return ``C^{1/2}`` and ``C^{-1/2}`` of ``C = second_moment / tokens`` (float64).

    Eigenvalues below ``relative_floor * max`` are raised to that floor; both factors use the
    same clamped eigenvalues, so their product stays the identity and sorting stays exact.
    """
    covariance = second_moment.double() / max(tokens, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues = eigenvalues.clamp_min(relative_floor * eigenvalues.max().clamp_min(1e-30))
    root = (eigenvectors * eigenvalues.sqrt()) @ eigenvectors.T
    inverse_root = (eigenvectors * eigenvalues.rsqrt()) @ eigenvectors.T
    return root, inverse_root


def transform_value_output(
    params: dict[str, torch.Tensor], prefix: str, root: torch.Tensor, inverse_root: torch.Tensor, config: ArchConfig
) -> None:
    """Rewrite V and O of every KV group so their value dims are sorted by whitened importance.

    For group ``g`` with ``W_V [d, dh]`` (math layout) and its query heads' ``W_O,i [dh, d]``:
    ``U S Vh = svd(C^{1/2} W_V)``, ``U2 S2 Vh2 = svd(diag(S) Vh [W_O,1 .. W_O,G])``, then
    ``W_V <- C^{-1/2} U U2 diag(S2)`` and ``[W_O,i] <- Vh2``. The products ``W_V W_O,i`` are unchanged.
    A prefix of ``k`` value dims is the best rank-``k`` approximation of the group's V*O maps
    under the calibration activations. The singular values sit on V's output channels, where
    4-bit groups along the input axis absorb them.
    """
    _fold_value_bias(params, prefix, config)
    head_dim, group = config.head_dim, config.group_size
    value = params[f"{prefix}.v_proj.weight"].double()                                   # [Hkv*dh, d]
    output = params[f"{prefix}.o_proj.weight"].double()                                 # [d, Hq*dh]
    new_value = torch.empty_like(value)
    new_output = torch.empty_like(output)

    for kv_head in range(config.num_key_value_heads):
        rows = slice(kv_head * head_dim, (kv_head + 1) * head_dim)
        w_value = value[rows].T                                                          # [d, dh]
        heads = range(kv_head * group, (kv_head + 1) * group)
        w_outputs = torch.cat([output[:, h * head_dim:(h + 1) * head_dim].T for h in heads], dim=1)  # [dh, G*d]

        u, s, vh = torch.linalg.svd(root @ w_value, full_matrices=False)
        u2, s2, vh2 = torch.linalg.svd(s[:, None] * (vh @ w_outputs), full_matrices=False)
        new_value[rows] = (inverse_root @ u @ u2 * s2).T
        for position, h in enumerate(heads):
            new_output[:, h * head_dim:(h + 1) * head_dim] = vh2[:, position * config.hidden_size:(position + 1) * config.hidden_size].T

    dtype = params[f"{prefix}.v_proj.weight"].dtype
    params[f"{prefix}.v_proj.weight"] = new_value.to(dtype).contiguous()
    params[f"{prefix}.o_proj.weight"] = new_output.to(dtype).contiguous()


def _fold_value_bias(params: dict[str, torch.Tensor], prefix: str, config: ArchConfig) -> None:
    """Move a V bias into the O bias: attention weights sum to 1, so ``b_V`` adds ``b_V W_O,i`` once per head."""
    value_bias = params.pop(f"{prefix}.v_proj.bias", None)
    if value_bias is None:
        return
    head_dim = config.head_dim
    output = params[f"{prefix}.o_proj.weight"].double()
    folded = torch.zeros(config.hidden_size, dtype=torch.float64)
    for h in range(config.num_attention_heads):
        kv_head = h // config.group_size
        folded += output[:, h * head_dim:(h + 1) * head_dim] @ value_bias[kv_head * head_dim:(kv_head + 1) * head_dim].double()
    existing = params.get(f"{prefix}.o_proj.bias")
    if existing is not None:
        folded += existing.double()
    params[f"{prefix}.o_proj.bias"] = folded.to(params[f"{prefix}.o_proj.weight"].dtype)
