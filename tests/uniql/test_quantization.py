"""GPTQ, the 4-bit grid, rotation and exact slicing of quantized weights."""

from __future__ import annotations

import pytest
import torch

from uniql.artifact import Artifact
from uniql.modeling.adapters import load_model
from uniql.modeling.model import LayerKept
from uniql.quantization.gptq import gptq_quantize
from uniql.quantization.grid import QuantizedWeight, round_to_nearest
from uniql.quantization.model import INPUT_POINTS
from uniql.rotation import fold_norms, rotate_residual, rotation_matrix
from uniql.slicing import model_from_artifact, slice_tensor


def layer_hessians(model, index: int = 0):
    windows = torch.randint(0, model.config.vocab_size, (8, 64), generator=torch.Generator().manual_seed(0))
    inputs: dict[str, list[torch.Tensor]] = {}

    def observe(point, layer, tensor):
        if layer == index and point in INPUT_POINTS:
            inputs.setdefault(point, []).append(tensor.reshape(-1, tensor.shape[-1]))

    with torch.no_grad():
        model(windows, observer=observe)
    return {point: torch.cat(chunks) for point, chunks in inputs.items()}


@pytest.mark.parametrize("symmetric", [False, True])
def test_gptq_error_is_below_round_to_nearest(tiny_model_dirs, symmetric):
    model = load_model(tiny_model_dirs[("llama", False)])
    activations = layer_hessians(model)
    for point, linears in INPUT_POINTS.items():
        inputs = activations[point]
        hessian = inputs.T @ inputs / inputs.shape[0]
        for linear in linears:
            weight = model.params[f"layers.0.{linear}.weight"]
            group = 16 if weight.shape[1] % 32 else 32
            gptq = gptq_quantize(weight, hessian, group, symmetric).dequantize()
            nearest = round_to_nearest(weight, group, symmetric).dequantize()
            gptq_error = (inputs @ (weight - gptq).T).pow(2).mean().item()
            nearest_error = (inputs @ (weight - nearest).T).pow(2).mean().item()
            assert gptq_error < nearest_error, f"{linear}: GPTQ {gptq_error:.4g} >= RTN {nearest_error:.4g}"


def test_gptq_handles_dead_columns():
    weight = torch.randn(16, 64)
    inputs = torch.randn(256, 64)
    inputs[:, 5] = 0
    result = gptq_quantize(weight, inputs.T @ inputs / 256, 32, symmetric=False)
    assert torch.isfinite(result.dequantize()).all()


def test_grid_codes_and_levels():
    weight = torch.tensor([[-1.0, -0.5, 0.0, 0.5] * 4 + [0.25] * 16])
    quantized = round_to_nearest(weight, 16, symmetric=False)
    assert quantized.codes.max() <= 15
    assert quantized.codes.min() >= 0
    assert torch.allclose(quantized.dequantize()[0, :16], weight[0, :16], atol=1.0 / 15)
    symmetric = round_to_nearest(weight, 16, symmetric=True)
    assert torch.all(symmetric.zeros == 8)


@pytest.mark.parametrize("size", [64, 96, 576])
def test_rotation_is_orthogonal(size):
    rotation, _ = rotation_matrix(size, seed=3)
    assert torch.allclose(rotation @ rotation.T, torch.eye(size, dtype=rotation.dtype), atol=1e-12)


@pytest.mark.parametrize("key", [("llama", False), ("llama-mha", True), ("qwen2", False)])
def test_rotated_model_equals_original(tiny_model_dirs, key):
    model = load_model(tiny_model_dirs[key])
    rotation, _ = rotation_matrix(model.config.hidden_size, seed=1)
    rotated = rotate_residual(fold_norms(model), rotation)
    ids = torch.randint(0, model.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        difference = (model(ids) - rotated(ids)).abs().max().item()
    assert difference <= 1e-4, f"{key}: rotation changed logits by {difference}"


def test_quantized_slicing_is_exact(tiny_artifacts):
    for key, artifact_dir in tiny_artifacts.items():
        artifact = Artifact.open(artifact_dir)
        state = torch.load(artifact_dir.parent / "quantize" / "quantized.pt", weights_only=False)
        for rate in artifact.rates:
            kept = [LayerKept(**layer) for layer in artifact.kept_sizes(rate)]
            model = model_from_artifact(artifact, rate)
            for name, spec in artifact.manifest["tensors"].items():
                if spec["format"] != "q4":
                    continue
                full = QuantizedWeight(**state["weights"][name]).dequantize()
                assert torch.equal(slice_tensor(full, spec, kept), model.params[name]), f"{key} rate {rate}: {name}"


def test_rate_zero_artifact_stays_close_to_source(tiny_artifacts, tiny_model_dirs):
    for key, artifact_dir in tiny_artifacts.items():
        source = load_model(tiny_model_dirs[key])
        quantized = model_from_artifact(artifact_dir, 0.0)
        ids = torch.randint(0, source.config.vocab_size, (1, 48), generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            reference = torch.log_softmax(source(ids), -1)
            approximate = torch.log_softmax(quantized(ids), -1)
        divergence = (reference.exp() * (reference - approximate)).sum(-1).mean().item()
        assert divergence < 0.1, f"{key}: KL divergence of the 4-bit model from its source is {divergence:.3f}"
