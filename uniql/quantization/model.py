"""Quantize a sorted model: fold norms, rotate the residual stream, then GPTQ layer by layer.

Layers are quantized in order, and each layer's calibration inputs come from the layers
before it already quantized, so GPTQ compensates for upstream error too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from uniql.modeling.model import DecoderModel, rms_norm
from uniql.quantization.gptq import gptq_quantize, inverse_hessian_factor
from uniql.quantization.grid import QuantizedWeight, round_to_nearest
from uniql.rotation import fold_norms, rotate_residual, rotation_matrix

logger = logging.getLogger(__name__)

# observer point -> linears that read it
INPUT_POINTS = {
    "attn_input": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "o_input": ("self_attn.o_proj",),
    "mlp_input": ("mlp.gate_proj", "mlp.up_proj"),
    "down_input": ("mlp.down_proj",),
}
INPUT_SLICED = ("self_attn.o_proj", "mlp.down_proj")


@dataclass(frozen=True)
class QuantizeSettings:
    method: str = "gptq"             # "gptq" or "rtn"
    symmetric: bool = False
    damp: float = 0.01
    reverse_input_sliced: bool = False
    rotate: bool = True
    rotation_seed: int = 0


@dataclass
class QuantizedModel:
    weights: dict[str, QuantizedWeight]     # 4-bit linears, embedding and lm_head
    model: DecoderModel                     # the rotated model with dequantized weights
    rotation: str
    seconds: float


@torch.no_grad()
def quantize_model(
    model: DecoderModel, windows: torch.Tensor, groups: dict[str, int], settings: QuantizeSettings,
    batch_size: int = 4, progress: Callable[[int, int], None] | None = None,
) -> QuantizedModel:
    """Return the 4-bit weights of ``model`` and the equivalent dequantized model."""
    started = time.perf_counter()
    model = fold_norms(model)
    rotation_kind = "none"
    if settings.rotate:
        rotation, rotation_kind = rotation_matrix(model.config.hidden_size, settings.rotation_seed)
        model = rotate_residual(model, rotation)
    params = dict(model.params)
    device = params["embed_tokens.weight"].device
    windows = windows.to(device)
    weights: dict[str, QuantizedWeight] = {}

    embedding = round_to_nearest(params["embed_tokens.weight"], groups["hidden"], settings.symmetric)
    weights["embed_tokens.weight"] = embedding
    params["embed_tokens.weight"] = embedding.dequantize().to(device)
    model = DecoderModel(model.config, params)

    chunks = [model.embed(windows[i:i + batch_size]) for i in range(0, windows.shape[0], batch_size)]
    positions = torch.arange(windows.shape[1], device=device)
    layers = model.config.num_layers
    for index in range(layers):
        layer_started = time.perf_counter()
        hessians = _layer_hessians(model, index, chunks, positions)
        for point, linears in INPUT_POINTS.items():
            factorization = None
            if settings.method == "gptq":
                factorization = inverse_hessian_factor(hessians[point], settings.damp)
            for linear in linears:
                name = f"layers.{index}.{linear}.weight"
                group = _group_for(linear, groups)
                reverse = settings.reverse_input_sliced and linear in INPUT_SLICED
                weights[name] = _quantize_one(params[name], hessians[point], group, settings, reverse, factorization)
                params[name] = weights[name].dequantize().to(device)
        chunks = [model.layer_forward(index, chunk, positions) for chunk in chunks]
        logger.info("quantized layers.%d with %s in %.1f s", index, settings.method, time.perf_counter() - layer_started)
        if progress is not None:
            progress(index + 1, layers + 1)

    final_hessian = _final_hessian(model, chunks)
    weights["lm_head.weight"] = _quantize_one(params["lm_head.weight"], final_hessian, groups["hidden"], settings, False)
    params["lm_head.weight"] = weights["lm_head.weight"].dequantize().to(device)
    if progress is not None:
        progress(layers + 1, layers + 1)
    return QuantizedModel(weights, DecoderModel(model.config, params), rotation_kind, time.perf_counter() - started)


def _group_for(linear: str, groups: dict[str, int]) -> int:
    if linear == "self_attn.o_proj":
        return groups["o_proj"]
    if linear == "mlp.down_proj":
        return groups["down_proj"]
    return groups["hidden"]


def _quantize_one(weight, hessian, group, settings: QuantizeSettings, reverse: bool, factorization=None) -> QuantizedWeight:
    if settings.method == "rtn":
        return round_to_nearest(weight, group, settings.symmetric)
    return gptq_quantize(weight, hessian, group, settings.symmetric, damp=settings.damp, reverse=reverse,
                         factorization=factorization)


def _layer_hessians(model: DecoderModel, index: int, chunks, positions) -> dict[str, torch.Tensor]:
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def observe(point: str, layer: int, tensor: torch.Tensor) -> None:
        if point not in INPUT_POINTS:
            return
        flat = tensor.reshape(-1, tensor.shape[-1]).float()
        sums[point] = sums.get(point, 0) + flat.T @ flat
        counts[point] = counts.get(point, 0) + flat.shape[0]

    for chunk in chunks:
        model.layer_forward(index, chunk, positions, observer=observe)
    return {point: sums[point] / counts[point] for point in sums}


def _final_hessian(model: DecoderModel, chunks) -> torch.Tensor:
    total, count = 0, 0
    for chunk in chunks:
        normed = rms_norm(chunk, model.params["norm.weight"], model.config.rms_norm_eps)
        flat = normed.reshape(-1, normed.shape[-1]).float()
        total = total + flat.T @ flat
        count += flat.shape[0]
    return total / count
