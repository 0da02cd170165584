"""Tensor specs of the artifact (format, slice layout, group size) for a model architecture."""

from __future__ import annotations

import math
from typing import Any

from uniql.errors import ConfigError
from uniql.modeling.config import ArchConfig

MIN_GROUP = 16      # smallest block size of onnxruntime's MatMulNBits
OUTPUT_SLICED = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj")


def pick_group_size(requested: int, must_divide: int, what: str) -> int:
    """Largest power of two <= ``requested`` (and >= 16) that divides ``must_divide``."""
    group = 1 << int(math.log2(requested))
    while group >= MIN_GROUP and must_divide % group:
        group //= 2
    if group < MIN_GROUP:
        raise ConfigError(
            f"group size {requested} cannot tile {what} ({must_divide}): no power of two from {MIN_GROUP} to "
            f"{requested} divides it; choose a group size or rounding step that is a multiple of {MIN_GROUP}"
        )
    return group


def linear_group_sizes(config: ArchConfig, requested: int, mlp_step: int, head_dim_step: int) -> dict[str, int]:
    """Group size per linear kind so that every cut of every rate lands on a group boundary."""
    hidden = pick_group_size(requested, config.hidden_size, f"hidden size {config.hidden_size}")
    output = pick_group_size(
        requested, math.gcd(config.head_dim, head_dim_step),
        f"o_proj input: head dim {config.head_dim} cut in steps of {head_dim_step}",
    )
    down = pick_group_size(
        requested, math.gcd(config.intermediate_size, mlp_step),
        f"down_proj input: MLP width {config.intermediate_size} cut in steps of {mlp_step}",
    )
    return {"hidden": hidden, "o_proj": output, "down_proj": down}


def tensor_specs(config: ArchConfig, groups: dict[str, int], zero_point: bool, has_bias: dict[str, bool]) -> dict[str, dict[str, Any]]:
    """Specs of every tensor of the artifact; ``has_bias`` maps ``layers.i.self_attn.q_proj`` style names."""
    d, dh = config.hidden_size, config.head_dim
    hq, hkv = config.num_attention_heads, config.num_key_value_heads

    def q4(shape, group, layer=None, slice_spec=None):
        return {"format": "q4", "shape": list(shape), "group_size": group, "zero_point": zero_point,
                "layer": layer, "slice": slice_spec}

    def dense(shape, fmt="f32", layer=None, slice_spec=None):
        return {"format": fmt, "shape": list(shape), "layer": layer, "slice": slice_spec}

    specs = {
        "embed_tokens.weight": q4((config.vocab_size, d), groups["hidden"]),
        "norm.weight": dense((d,)),
        "lm_head.weight": q4((config.vocab_size, d), groups["hidden"]),
        "rope_inv_freq": dense((dh // 2,)),
    }
    for i in range(config.num_layers):
        pairs = lambda heads, axis: {"axis": axis, "layout": "head_pairs", "module": "attn", "heads": heads, "head_dim": dh}
        head_prefix = lambda heads, axis: {"axis": axis, "layout": "head_prefix", "module": "attn", "heads": heads, "head_dim": dh}
        prefix = lambda axis: {"axis": axis, "layout": "prefix", "module": "mlp"}
        name = f"layers.{i}"
        specs[f"{name}.input_layernorm.weight"] = dense((d,))
        specs[f"{name}.post_attention_layernorm.weight"] = dense((d,))
        specs[f"{name}.self_attn.q_proj.weight"] = q4((hq * dh, d), groups["hidden"], i, pairs(hq, 0))
        specs[f"{name}.self_attn.k_proj.weight"] = q4((hkv * dh, d), groups["hidden"], i, pairs(hkv, 0))
        specs[f"{name}.self_attn.v_proj.weight"] = q4((hkv * dh, d), groups["hidden"], i, head_prefix(hkv, 0))
        specs[f"{name}.self_attn.o_proj.weight"] = q4((d, hq * dh), groups["o_proj"], i, head_prefix(hq, 1))
        specs[f"{name}.self_attn.rope_pairs"] = dense((hkv, dh // 2), "i16")
        specs[f"{name}.mlp.gate_proj.weight"] = q4((config.intermediate_size, d), groups["hidden"], i, prefix(0))
        specs[f"{name}.mlp.up_proj.weight"] = q4((config.intermediate_size, d), groups["hidden"], i, prefix(0))
        specs[f"{name}.mlp.down_proj.weight"] = q4((d, config.intermediate_size), groups["down_proj"], i, prefix(1))
        for module, heads in (("q_proj", hq), ("k_proj", hkv)):
            if has_bias.get(f"{name}.self_attn.{module}"):
                specs[f"{name}.self_attn.{module}.bias"] = dense((heads * dh,), "f32", i, pairs(heads, 0))
        if has_bias.get(f"{name}.self_attn.o_proj"):
            specs[f"{name}.self_attn.o_proj.bias"] = dense((d,))
    return specs
