"""Sort every block of a decoder from calibration statistics."""

from __future__ import annotations

import logging
import time

import torch

from uniql.calibration import CalibrationStatistics
from uniql.modeling.model import DecoderModel
from uniql.sorting.attention import permute_query_key, query_key_pair_order, transform_value_output, whitening_factors
from uniql.sorting.mlp import mlp_channel_order, permute_mlp

logger = logging.getLogger(__name__)


@torch.no_grad()
def sort_model(model: DecoderModel, stats: CalibrationStatistics, ridge_alpha: float = 0.01) -> DecoderModel:
    """Return a sorted copy of ``model``: same function, channels ordered by importance."""
    params = {name: tensor.clone() for name, tensor in model.params.items()}
    if params["lm_head.weight"].data_ptr() == params["embed_tokens.weight"].data_ptr():
        params["lm_head.weight"] = params["embed_tokens.weight"]
    config = model.config

    for index, layer in enumerate(stats.layers):
        started = time.perf_counter()
        prefix = f"layers.{index}"
        tokens = stats.tokens

        order = mlp_channel_order(layer.down_second_moment, ridge_alpha)
        permute_mlp(params, f"{prefix}.mlp", order)

        second_moment = layer.attn_second_moment / tokens
        mean = layer.attn_sum / tokens
        pair_order = query_key_pair_order(
            params[f"{prefix}.self_attn.q_proj.weight"], params[f"{prefix}.self_attn.k_proj.weight"],
            params.get(f"{prefix}.self_attn.q_proj.bias"), params.get(f"{prefix}.self_attn.k_proj.bias"),
            second_moment, mean, config,
        )
        permute_query_key(params, f"{prefix}.self_attn", pair_order, config)

        root, inverse_root = whitening_factors(layer.attn_second_moment, tokens)
        transform_value_output(params, f"{prefix}.self_attn", root, inverse_root, config)
        logger.info(
            "sorted layers.%d: %d MLP channels, %d RoPE pairs per KV head, %d value dims per group, %.2f s",
            index, order.numel(), pair_order.shape[1], config.head_dim, time.perf_counter() - started,
        )
    return DecoderModel(config, params)
