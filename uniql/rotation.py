"""Residual-stream rotation folded into the weights, for any hidden size.

RMSNorm with a unit gain commutes with an orthogonal rotation ``Q`` of the residual stream,
so after folding every norm gain into the linears that read the norm's output, the model with
``x -> x Q`` everywhere computes the same function. The rotation spreads outlier channels over
all channels, which lowers 4-bit error, and costs nothing at run time. Intermediate, head and
state dims are never rotated, so every prunable axis stays sliceable.
"""

from __future__ import annotations

import torch

from uniql.modeling.model import DecoderModel

CONSUMERS = {
    "input_layernorm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "post_attention_layernorm": ("mlp.gate_proj", "mlp.up_proj"),
}
PRODUCERS = ("self_attn.o_proj", "mlp.down_proj")


def walsh_hadamard(size: int) -> torch.Tensor:
    """Normalized Sylvester Hadamard matrix; ``size`` must be a power of two."""
    matrix = torch.ones(1, 1, dtype=torch.float64)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix / size ** 0.5


def random_orthogonal(size: int, seed: int) -> torch.Tensor:
    """Haar-random orthogonal matrix from a seeded QR decomposition."""
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(size, size, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r))).contiguous()


def rotation_matrix(size: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """Orthogonal ``[size, size]`` rotation: Walsh-Hadamard for powers of two, else a seeded
    random orthogonal ``[a, a]`` (``a`` the odd factor) Kronecker a Walsh-Hadamard of the power-of-two factor."""
    power = size & -size
    odd = size // power
    hadamard = walsh_hadamard(power)
    if odd == 1:
        return hadamard, f"hadamard-{power}"
    return torch.kron(random_orthogonal(odd, seed), hadamard), f"random-orthogonal-{odd}-x-hadamard-{power}"


@torch.no_grad()
def fold_norms(model: DecoderModel) -> DecoderModel:
    """Multiply every RMSNorm gain into the linears that read it; gains become 1.

    A tied ``lm_head`` is untied, since the final norm's gain folds into it but not into the embedding.
    """
    params = dict(model.params)
    params["lm_head.weight"] = (params["lm_head.weight"] * params["norm.weight"]).contiguous()
    params["norm.weight"] = torch.ones_like(params["norm.weight"])
    for index in range(model.config.num_layers):
        for norm, consumers in CONSUMERS.items():
            gain = params[f"layers.{index}.{norm}.weight"]
            for consumer in consumers:
                name = f"layers.{index}.{consumer}.weight"
                params[name] = (params[name] * gain).contiguous()
            params[f"layers.{index}.{norm}.weight"] = torch.ones_like(gain)
    return DecoderModel(model.config, params)


@torch.no_grad()
def rotate_residual(model: DecoderModel, rotation: torch.Tensor) -> DecoderModel:
    """Apply ``x -> x Q`` to the residual stream of a model whose norm gains are folded."""
    params = dict(model.params)
    q = rotation.to(params["embed_tokens.weight"].dtype)

    def read_side(name: str) -> None:        # y = x W^T reads the residual: W <- W Q
        params[name] = (params[name] @ q).contiguous()

    def write_side(name: str) -> None:       # y = h W^T writes the residual: W <- Q^T W
        params[name] = (q.T @ params[name]).contiguous()

    read_side("embed_tokens.weight")         # E <- E Q: row e becomes e Q
    read_side("lm_head.weight")
    for index in range(model.config.num_layers):
        for consumers in CONSUMERS.values():
            for consumer in consumers:
                read_side(f"layers.{index}.{consumer}.weight")
        for producer in PRODUCERS:
            write_side(f"layers.{index}.{producer}.weight")
            bias = params.get(f"layers.{index}.{producer}.bias")
            if bias is not None:
                params[f"layers.{index}.{producer}.bias"] = (bias @ q).contiguous()
    return DecoderModel(model.config, params)
