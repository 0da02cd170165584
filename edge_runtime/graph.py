"""Build the ONNX decoder graph of an artifact at one rate, straight from its band tensors.

Graph inputs: ``input_ids`` int64 ``[B, T]``, ``position_ids`` int64 ``[B, T]``,
``attention_mask`` int64 ``[B, S]`` (1 for real tokens, 0 for left padding, past and new tokens),
and per layer ``past_key.{i}``/``past_value.{i}`` float32 ``[B, Hkv, P, k_i]``. Outputs:
``logits`` float32 ``[B, V]`` of the last position only, and ``present_key.{i}``/``present_value.{i}``.
Either ``P = S - T`` and the presents are new ``[B, Hkv, S, k_i]`` tensors, or the caller binds
one buffer of ``C >= S`` positions as both past and present of a layer, and GroupQueryAttention
writes the new keys and values into positions ``S - T .. S - 1`` of it (what ``Engine`` does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge_runtime.graph_ops import (
    GraphBuilder, apply_rope, attention_mask, gather_q4, gather_q4_supported, group_query_attention, linear_q4,
    rms_norm, rope_angles, sequence_lengths, split_heads,
)
from uniql.artifact import QuantizedTensor

logger = logging.getLogger(__name__)

OPSET_ONNX = 17
OPSET_MICROSOFT = 1


@dataclass(frozen=True)
class LayerShape:
    """Sizes of one decoder layer at a rate."""

    head_dim: int
    mlp: int


def layer_shapes(tensors: dict[str, Any], config: dict[str, Any]) -> list[LayerShape]:
    """Kept head dim and MLP width of every layer, read from the sliced tensor shapes."""
    shapes = []
    for index in range(config["num_layers"]):
        q_rows = tensors[f"layers.{index}.self_attn.q_proj.weight"].shape[0]
        mlp = tensors[f"layers.{index}.mlp.gate_proj.weight"].shape[0]
        shapes.append(LayerShape(head_dim=q_rows // config["num_attention_heads"], mlp=mlp))
    return shapes


def embedding(graph: GraphBuilder, weight: QuantizedTensor | np.ndarray) -> str:
    """Append the token embedding lookup of ``input_ids`` and return its output ``[B, T, d]`` in float32.

    A 4-bit table stays at 4 bits through ``gather_q4``. A dense table, or a 4-bit one whose
    group size GatherBlockQuantized rejects, becomes a float32 initializer for ONNX Gather,
    which costs 4 bytes per value (about 113 MB for SmolLM2-135M).
    """
    if isinstance(weight, QuantizedTensor) and gather_q4_supported(weight):
        return gather_q4(graph, weight, "input_ids", "embed")
    if isinstance(weight, QuantizedTensor):
        logger.warning("embedding group size %d is not a power of two >= 16; using a float32 table",
                       weight.group_size)
        table = weight.dequantize()
    else:
        table = np.asarray(weight, dtype=np.float32)
    return graph.op("Gather", [graph.initializer(table, "embed_tokens"), "input_ids"], "embed", axis=0)


def build_decoder_model(
    tensors: dict[str, Any], config: dict[str, Any], external_weights: dict[str, np.ndarray] | None = None,
    accuracy_level: int = 0,
) -> onnx.ModelProto:
    """Return the ONNX model of the decoder whose sliced tensors are ``tensors``.

    With ``external_weights``, the weights go into that dict instead of the model (see ``GraphBuilder``).
    """
    graph = GraphBuilder(external_weights, accuracy_level)
    shapes = layer_shapes(tensors, config)
    kv_heads = config["num_key_value_heads"]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "new"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "new"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", config["vocab_size"]])]

    hidden = embedding(graph, tensors["embed_tokens.weight"])                                # (B, T, d)
    mask = attention_mask(graph, "input_ids", "attention_mask")
    lengths = sequence_lengths(graph, "attention_mask")
    positions = graph.op("Cast", ["position_ids"], "positions", to=TensorProto.FLOAT)
    positions = graph.op("Unsqueeze", [positions, graph.const_i64([2, 3])], "positions")     # (B, T, 1, 1)

    for index, shape in enumerate(shapes):
        for kind in ("key", "value"):
            dims = ["batch", kv_heads, "past", shape.head_dim]
            inputs.append(helper.make_tensor_value_info(f"past_{kind}.{index}", TensorProto.FLOAT, dims))
            outputs.append(helper.make_tensor_value_info(f"present_{kind}.{index}", TensorProto.FLOAT,
                                                         ["batch", kv_heads, "total", shape.head_dim]))
        hidden = decoder_layer(graph, tensors, config, index, shape, hidden, positions, mask, lengths)

    hidden = rms_norm(graph, hidden, tensors["norm.weight"], config["rms_norm_eps"], "final_norm")
    last = graph.op("Gather", [hidden, graph.const_i64([-1])], "last", axis=1)              # (B, 1, d)
    logits = linear_q4(graph, last, tensors["lm_head.weight"], None, "lm_head")
    graph.nodes.append(helper.make_node("Squeeze", [logits, graph.const_i64([1])], ["logits"], name="logits"))

    onnx_graph = helper.make_graph(graph.nodes, "uniql_decoder", inputs, outputs, initializer=graph.initializers)
    opsets = [helper.make_opsetid("", OPSET_ONNX), helper.make_opsetid("com.microsoft", OPSET_MICROSOFT)]
    return helper.make_model(onnx_graph, opset_imports=opsets, producer_name="uniql.edge_runtime")


def decoder_layer(
    graph: GraphBuilder, tensors: dict[str, Any], config: dict[str, Any], index: int, shape: LayerShape,
    hidden: str, positions: str, mask: str, lengths: tuple[str, str],
) -> str:
    """Append decoder layer ``index``; returns the residual stream ``[B, T, d]``."""
    prefix = f"layers.{index}"
    eps = config["rms_norm_eps"]

    normed = rms_norm(graph, hidden, tensors[f"{prefix}.input_layernorm.weight"], eps, f"l{index}_attn_norm")
    attended = attention_block(graph, tensors, config, index, shape, normed, positions, mask, lengths)
    hidden = graph.op("Add", [hidden, attended], f"l{index}_residual")

    normed = rms_norm(graph, hidden, tensors[f"{prefix}.post_attention_layernorm.weight"], eps, f"l{index}_mlp_norm")
    gate = linear_q4(graph, normed, tensors[f"{prefix}.mlp.gate_proj.weight"], None, f"l{index}_gate")
    up = linear_q4(graph, normed, tensors[f"{prefix}.mlp.up_proj.weight"], None, f"l{index}_up")
    silu = graph.op("Mul", [gate, graph.op("Sigmoid", [gate], f"l{index}_silu")], f"l{index}_silu")
    inner = graph.op("Mul", [silu, up], f"l{index}_inner")
    down = linear_q4(graph, inner, tensors[f"{prefix}.mlp.down_proj.weight"], None, f"l{index}_down")
    return graph.op("Add", [hidden, down], f"l{index}_residual")


def attention_block(
    graph: GraphBuilder, tensors: dict[str, Any], config: dict[str, Any], index: int, shape: LayerShape,
    x: str, positions: str, mask: str, lengths: tuple[str, str],
) -> str:
    """Self-attention of layer ``index`` with RoPE and the KV cache; returns ``[B, T, d]``.

    ``lengths`` are the ``seqlens_k`` and ``total_sequence_length`` inputs of GroupQueryAttention.
    """
    prefix = f"layers.{index}.self_attn"
    query_heads, kv_heads, head_dim = config["num_attention_heads"], config["num_key_value_heads"], shape.head_dim
    hint = f"l{index}_attn"

    def project(name: str) -> str:
        return linear_q4(graph, x, tensors[f"{prefix}.{name}.weight"], tensors.get(f"{prefix}.{name}.bias"), f"{hint}_{name}")

    q = split_heads(graph, project("q_proj"), query_heads, head_dim, hint)
    k = split_heads(graph, project("k_proj"), kv_heads, head_dim, hint)
    v = split_heads(graph, project("v_proj"), kv_heads, head_dim, hint)

    # Each kept pair rotates at its original frequency; query head h uses KV head h // group.
    pairs = tensors[f"{prefix}.rope_pairs"][:, : head_dim // 2].astype(np.int64)
    kv_frequencies = tensors["rope_inv_freq"][pairs]                                      # (Hkv, k/2)
    query_frequencies = np.repeat(kv_frequencies, query_heads // kv_heads, axis=0)         # (Hq, k/2)
    scaling = config.get("rope_attention_scaling", 1.0)
    q = apply_rope(graph, q, *rope_angles(graph, positions, query_frequencies, scaling, f"{hint}_qrope"), head_dim, hint)
    k = apply_rope(graph, k, *rope_angles(graph, positions, kv_frequencies, scaling, f"{hint}_krope"), head_dim, hint)

    # GroupQueryAttention appends k and v to the past cache itself, in place when past and present share a buffer.
    context = group_query_attention(
        graph, [q, k, v, f"past_key.{index}", f"past_value.{index}", *lengths], mask,
        [f"present_key.{index}", f"present_value.{index}"], (query_heads, kv_heads), config["softmax_scale"], hint)
    return linear_q4(graph, context, tensors[f"{prefix}.o_proj.weight"], tensors.get(f"{prefix}.o_proj.bias"), f"{hint}_o")
