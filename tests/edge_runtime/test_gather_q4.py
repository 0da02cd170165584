"""``gather_q4`` (GatherBlockQuantized) against ``QuantizedTensor.dequantize()`` rows, bit for bit."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge_runtime.graph import OPSET_MICROSOFT, OPSET_ONNX
from edge_runtime.graph_ops import GraphBuilder, gather_q4, gather_q4_supported
from uniql.artifact import QuantizedTensor

VOCAB = 40


def random_table(rng: np.random.Generator, cols: int, group_size: int, zero_point: bool) -> QuantizedTensor:
    codes = rng.integers(0, 16, (VOCAB, cols), dtype=np.uint8)
    scales = (rng.standard_normal((VOCAB, cols // group_size)) * 0.05).astype(np.float16)
    zeros = rng.integers(0, 16, (VOCAB, cols // group_size), dtype=np.uint8) if zero_point else None
    return QuantizedTensor.from_codes(codes, scales, zeros, group_size)


def gather_session(weight: QuantizedTensor) -> ort.InferenceSession:
    graph = GraphBuilder()
    output = gather_q4(graph, weight, "ids", "embed")
    graph.nodes.append(helper.make_node("Identity", [output], ["rows"]))
    onnx_graph = helper.make_graph(
        graph.nodes, "gather_q4",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "new"])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["batch", "new", weight.shape[1]])],
        initializer=graph.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET_ONNX), helper.make_opsetid("com.microsoft", OPSET_MICROSOFT)]
    model = helper.make_model(onnx_graph, opset_imports=opsets)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


# 96 columns at group size 32 gives an odd block count, so the packed zero points end in a pad nibble.
@pytest.mark.parametrize("group_size", [16, 32])
@pytest.mark.parametrize("cols", [64, 96, 576])
@pytest.mark.parametrize("zero_point", [True, False])
def test_gather_q4_rows_equal_dequantize(group_size, cols, zero_point):
    rng = np.random.default_rng(group_size * 1000 + cols + zero_point)
    weight = random_table(rng, cols, group_size, zero_point)
    ids = np.concatenate([np.arange(VOCAB), rng.integers(0, VOCAB, 8)]).reshape(2, -1).astype(np.int64)

    rows = gather_session(weight).run(None, {"ids": ids})[0]
    expected = weight.dequantize()[ids]

    assert rows.dtype == np.float32
    assert rows.shape == expected.shape
    assert np.array_equal(rows, expected), f"max abs diff {np.abs(rows - expected).max():.3g}"


def test_gather_q4_supported_block_sizes():
    rng = np.random.default_rng(0)
    assert gather_q4_supported(random_table(rng, 64, 16, False))
    assert gather_q4_supported(random_table(rng, 64, 64, True))
    assert not gather_q4_supported(random_table(rng, 64, 8, False))
    assert not gather_q4_supported(random_table(rng, 96, 48, False))
