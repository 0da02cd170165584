"""Small ONNX graph pieces for the decoder: 4-bit linears, RMSNorm, RoPE and attention.

Every function appends nodes and initializers to a ``GraphBuilder`` and returns the name of its
output. Shapes in comments use B (batch), T (new tokens), S (past + new tokens), H (heads), k
(kept head dim of the layer).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from uniql.artifact import QuantizedTensor

MASK_VALUE = -1e9  # additive mask for disallowed keys; finite so a fully padded row stays NaN-free


# Placeholder file name of a weight whose data the session gets from memory instead of a file.
EXTERNAL_WEIGHT_LOCATION = "uniql-in-memory-weight"


class GraphBuilder:
    """Collects nodes and initializers, and gives every new value a unique name.

    With ``external_weights`` (a dict to fill), ``initializer`` stores each array there under its
    name and adds only a dataless proto marked as external data. The caller hands those arrays to
    onnxruntime with ``SessionOptions.add_external_initializers``, so the weights are never copied
    into a ModelProto or its serialized bytes. Small constants (shapes, axes, scalars) always stay
    in the proto, where shape inference and constant folding can read them.
    """

    def __init__(self, external_weights: dict[str, np.ndarray] | None = None, accuracy_level: int = 0) -> None:
        self.accuracy_level = accuracy_level
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.external_weights = external_weights
        self._counter = 0
        self._constants: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def op(self, op_type: str, inputs: list[str], hint: str, domain: str = "", **attributes) -> str:
        output = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attributes))
        return output

    def ops(self, op_type: str, inputs: list[str], count: int, hint: str, **attributes) -> list[str]:
        outputs = [self.fresh(hint) for _ in range(count)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attributes))
        return outputs

    def initializer(self, array: np.ndarray, hint: str) -> str:
        """Add a weight; it goes to ``external_weights`` when the builder has that dict."""
        if self.external_weights is None:
            return self.constant(array, hint)
        name = self.fresh(hint)
        # The session reads this buffer for its whole life, so it must not be a view into a band
        # blob, because a view would keep the whole blob alive next to the joined tensors.
        array = np.ascontiguousarray(array)
        if _views_foreign_buffer(array):
            array = array.copy()
        self.external_weights[name] = array
        placeholder = onnx.TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                                       dims=array.shape, data_location=onnx.TensorProto.EXTERNAL)
        placeholder.external_data.add(key="location", value=EXTERNAL_WEIGHT_LOCATION)
        self.initializers.append(placeholder)
        return name

    def constant(self, array: np.ndarray, hint: str) -> str:
        """Add an initializer whose data stays inside the proto."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const_i64(self, values: list[int]) -> str:
        """Shared int64 constant (shapes, axes, indices)."""
        key = ("i64", tuple(values))
        if key not in self._constants:
            self._constants[key] = self.constant(np.asarray(values, dtype=np.int64), "const")
        return self._constants[key]

    def const_f32(self, value: float) -> str:
        key = ("f32", float(value))
        if key not in self._constants:
            self._constants[key] = self.constant(np.asarray(value, dtype=np.float32), "const")
        return self._constants[key]


def _views_foreign_buffer(array: np.ndarray) -> bool:
    """Return whether ``array`` views memory that no ndarray owns, such as the bytes of a band blob."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array.base is not None


def pack_zero_points(zeros: np.ndarray) -> np.ndarray:
    """Pack zero points ``[N, blocks]`` (one byte each) two per byte, low nibble first, rows padded.

    MatMulNBits expects uint8 zero points as ``[N * ceil(blocks / 2)]``.
    """
    rows, blocks = zeros.shape
    if blocks % 2:
        zeros = np.concatenate([zeros, np.zeros((rows, 1), dtype=np.uint8)], axis=1)
    pairs = zeros.reshape(rows, -1, 2).astype(np.uint8)
    return (pairs[..., 0] | (pairs[..., 1] << 4)).reshape(-1)


def linear_q4(graph: GraphBuilder, x: str, weight: QuantizedTensor, bias: np.ndarray | None, hint: str) -> str:
    """``y = x W^T + b`` with ``com.microsoft::MatMulNBits`` on the artifact's packed 4-bit weight."""
    rows, cols = weight.shape
    inputs = [
        x,
        graph.initializer(weight.qweight, f"{hint}_qweight"),
        graph.initializer(weight.scales.astype(np.float32).reshape(-1), f"{hint}_scales"),
    ]
    if weight.zeros is not None:
        inputs.append(graph.initializer(pack_zero_points(weight.zeros), f"{hint}_zeros"))
    # accuracy_level 0 keeps activations in fp32, so results match a dense fp32 reference; 4 quantizes
    # activations to int8 per block, which is faster on CPUs with int8 dot products but not exact.
    output = graph.op("MatMulNBits", inputs, hint, domain="com.microsoft",
                      K=cols, N=rows, bits=4, block_size=weight.group_size, accuracy_level=graph.accuracy_level)
    if bias is not None:
        output = graph.op("Add", [output, graph.initializer(bias.astype(np.float32), f"{hint}_bias")], hint)
    return output


def gather_q4(graph: GraphBuilder, weight: QuantizedTensor, indices: str, hint: str) -> str:
    """Gather rows of a 4-bit table ``[V, d]`` with ``com.microsoft::GatherBlockQuantized``.

    Returns ``indices.shape + [d]`` in float32. The table stays at 4 bits in the graph. In
    onnxruntime 1.32.0 the op takes uint8 data ``[V, d/2]`` with ``bits=4`` (low nibble first,
    the artifact's ``qweight`` bytes), zero points packed two per byte as ``[V, ceil(blocks/2)]``,
    and a default zero point of 8. Scales are passed as float32, so every output value is
    ``(q - z) * s`` in float32, bit-identical to ``QuantizedTensor.dequantize()``.
    """
    rows, cols = weight.shape
    inputs = [
        graph.initializer(weight.qweight.reshape(rows, cols // 2), f"{hint}_qweight"),
        indices,
        graph.initializer(weight.scales.astype(np.float32), f"{hint}_scales"),
    ]
    if weight.zeros is not None:
        inputs.append(graph.initializer(pack_zero_points(weight.zeros).reshape(rows, -1), f"{hint}_zeros"))
    # NOTE: unlike ONNX Gather, an out-of-range index yields a zero row instead of an error.
    return graph.op("GatherBlockQuantized", inputs, hint, domain="com.microsoft",
                    bits=4, block_size=weight.group_size, gather_axis=0, quantize_axis=1)


def gather_q4_supported(weight: QuantizedTensor) -> bool:
    """Return whether ``gather_q4`` accepts ``weight``.

    GatherBlockQuantized rejects a block size that is not a power of two of at least 16.
    """
    size = weight.group_size
    return size >= 16 and size & (size - 1) == 0


def rms_norm(graph: GraphBuilder, x: str, weight: np.ndarray, eps: float, hint: str) -> str:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last axis."""
    square = graph.op("Mul", [x, x], hint)
    mean = graph.op("ReduceMean", [square], hint, axes=[-1], keepdims=1)
    root = graph.op("Sqrt", [graph.op("Add", [mean, graph.const_f32(eps)], hint)], hint)
    normed = graph.op("Div", [x, root], hint)
    return graph.op("Mul", [normed, graph.initializer(weight.astype(np.float32), f"{hint}_weight")], hint)


def split_heads(graph: GraphBuilder, x: str, heads: int, head_dim: int, hint: str) -> str:
    """``[B, T, H*k]`` to ``[B, T, H, k]``."""
    return graph.op("Reshape", [x, graph.const_i64([0, 0, heads, head_dim])], hint)


def rope_angles(graph: GraphBuilder, positions: str, frequencies: np.ndarray, scaling: float, hint: str) -> tuple[str, str]:
    """Cos and sin ``[B, T, H, k/2]`` from float positions ``[B, T, 1, 1]`` and frequencies ``[H, k/2]``."""
    table = graph.initializer(frequencies.astype(np.float32), f"{hint}_freq")
    angles = graph.op("Mul", [positions, table], hint)
    scale = graph.const_f32(scaling)
    cos = graph.op("Mul", [graph.op("Cos", [angles], hint), scale], hint)
    sin = graph.op("Mul", [graph.op("Sin", [angles], hint), scale], hint)
    return cos, sin


def apply_rope(graph: GraphBuilder, x: str, cos: str, sin: str, head_dim: int, hint: str) -> str:
    """Rotate-half RoPE on ``x [B, T, H, k]`` where kept pair ``t`` is ``(t, t + k/2)``."""
    half = head_dim // 2
    first, second = graph.ops("Split", [x, graph.const_i64([half, half])], 2, hint, axis=-1)
    new_first = graph.op("Sub", [graph.op("Mul", [first, cos], hint), graph.op("Mul", [second, sin], hint)], hint)
    new_second = graph.op("Add", [graph.op("Mul", [second, cos], hint), graph.op("Mul", [first, sin], hint)], hint)
    return graph.op("Concat", [new_first, new_second], hint, axis=-1)


def group_query_attention(
    graph: GraphBuilder, inputs: list[str], mask: str, present: list[str], heads: tuple[int, int], scale: float,
    hint: str,
) -> str:
    """Causal grouped-query attention with ``com.microsoft::GroupQueryAttention``; returns ``[B, T, Hq*k]``.

    ``inputs`` are ``q [B, T, Hq, k]``, ``k``/``v`` ``[B, T, Hkv, k]`` with RoPE already applied,
    the past keys and values ``[B, Hkv, P, k]``, ``seqlens_k`` and ``total_sequence_length``.
    ``present`` names the key and value outputs: ``[B, Hkv, S, k]``, or the past buffers
    themselves when the caller binds the same buffer as past and present.
    ``mask [B, 1, T, S]`` is additive. ``heads`` is ``(Hq, Hkv)``, and query head ``h`` reads KV
    head ``h // (Hq/Hkv)``, the op's grouping.
    """
    query_heads, kv_heads = heads
    q, k, v, *rest = inputs
    flat = [graph.op("Reshape", [value, graph.const_i64([0, 0, -1])], hint) for value in (q, k, v)]
    output = graph.fresh(hint)
    # Inputs 7 to 9 (cos_cache, sin_cache, position_ids) stay empty because do_rotary is 0.
    graph.nodes.append(helper.make_node(
        "GroupQueryAttention", [*flat, *rest, "", "", "", mask], [output, *present], name=output,
        domain="com.microsoft", num_heads=query_heads, kv_num_heads=kv_heads, scale=scale, do_rotary=0))
    return output


def sequence_lengths(graph: GraphBuilder, mask: str) -> tuple[str, str]:
    """``seqlens_k`` int32 ``[B]`` and ``total_sequence_length`` int32 scalar for GroupQueryAttention.

    Every row counts all ``S`` positions, left padding included, because the additive mask hides
    the padding, so ``seqlens_k`` is ``S - 1`` in every row.
    """
    shape = graph.op("Shape", [mask], "lengths")
    total = graph.op("Cast", [graph.op("Gather", [shape, graph.const_i64([1])], "lengths", axis=0)], "lengths",
                     to=TensorProto.INT32)                                                         # (1,)
    last = graph.op("Sub", [total, graph.constant(np.asarray([1], dtype=np.int32), "const")], "lengths")
    batch = graph.op("Gather", [shape, graph.const_i64([0])], "lengths", axis=0)                  # (1,)
    seqlens = graph.op("Expand", [last, batch], "lengths")
    total = graph.op("Squeeze", [total, graph.const_i64([0])], "lengths")
    return seqlens, total


def attention_mask(graph: GraphBuilder, input_ids: str, mask: str) -> str:
    """Additive mask ``[B, 1, T, S]``: key ``j`` is visible to new token ``i`` when
    ``j <= S - T + i`` (causal) and ``attention_mask[b, j] == 1`` (not padding)."""
    total = graph.op("Gather", [graph.op("Shape", [mask], "mask"), graph.const_i64([1])], "mask", axis=0)
    new = graph.op("Gather", [graph.op("Shape", [input_ids], "mask"), graph.const_i64([1])], "mask", axis=0)
    total, new = (graph.op("Squeeze", [value, graph.const_i64([0])], "mask") for value in (total, new))
    past = graph.op("Sub", [total, new], "mask")
    key_index = graph.op("Range", [_scalar(graph, 0), total, _scalar(graph, 1)], "mask")
    query_index = graph.op("Range", [past, total, _scalar(graph, 1)], "mask")
    causal = graph.op("LessOrEqual", [graph.op("Unsqueeze", [key_index, graph.const_i64([0])], "mask"),
                                      graph.op("Unsqueeze", [query_index, graph.const_i64([1])], "mask")], "mask")  # (T, S)
    not_padding = graph.op("Cast", [graph.op("Unsqueeze", [mask, graph.const_i64([1])], "mask")], "mask",
                           to=TensorProto.BOOL)                                                    # (B, 1, S)
    allowed = graph.op("And", [causal, not_padding], "mask")                                       # (B, T, S)
    additive = graph.op("Where", [allowed, graph.const_f32(0.0), graph.const_f32(MASK_VALUE)], "mask")
    return graph.op("Unsqueeze", [additive, graph.const_i64([1])], "mask")


def _scalar(graph: GraphBuilder, value: int) -> str:
    key = ("i64 scalar", value)
    if key not in graph._constants:
        graph._constants[key] = graph.constant(np.asarray(value, dtype=np.int64), "const")
    return graph._constants[key]
