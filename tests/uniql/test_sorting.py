"""Sorting is an exact reparametrization, and masked forwards equal sliced models at every rate."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import FAMILIES
from uniql.allocation import Granularity, allocate
from uniql.calibration import collect_statistics
from uniql.modeling.adapters import load_model
from uniql.modeling.model import LayerKept
from uniql.slicing import slice_model
from uniql.sorting import sort_model
from uniql.specs import tensor_specs

RATES = [0.0, 0.1, 0.2, 0.35, 0.6]


def sorted_tiny(model_dir, samples: int = 16, length: int = 64):
    model = load_model(model_dir)
    windows = torch.randint(0, model.config.vocab_size, (samples, length), generator=torch.Generator().manual_seed(1))
    stats = collect_statistics(model, windows)
    return model, sort_model(model, stats), stats


def specs_for(model):
    has_bias = {name.removesuffix(".bias"): True for name in model.params if name.endswith(".bias")}
    return tensor_specs(model.config, {"hidden": 32, "o_proj": 16, "down_proj": 16}, True, has_bias)


def test_hf_parity_of_functional_model(tiny_model_dirs):
    from transformers import AutoModelForCausalLM

    for key, model_dir in tiny_model_dirs.items():
        model = load_model(model_dir)
        reference = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
        ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            difference = (model(ids) - reference(ids).logits).abs().max().item()
        assert difference <= 1e-5, f"{key}: functional model differs from transformers by {difference}"


@pytest.mark.parametrize("family,tied", FAMILIES)
def test_sorted_model_matches_original(tiny_model_dirs, family, tied):
    model, sorted_model, _ = sorted_tiny(tiny_model_dirs[(family, tied)])
    ids = torch.randint(0, model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        original, resorted = model(ids), sorted_model(ids)
    difference = (original - resorted).abs()
    assert difference.max().item() <= 1e-4, f"max {difference.max().item():.3g}, mean {difference.mean().item():.3g}"


@pytest.mark.parametrize("family,tied", FAMILIES)
def test_masked_forward_equals_sliced_model(tiny_model_dirs, family, tied):
    model, sorted_model, stats = sorted_tiny(tiny_model_dirs[(family, tied)])
    allocation = allocate(model.config, stats.block_influence(), RATES, Granularity(16, 16))
    specs = specs_for(sorted_model)
    ids = torch.randint(0, model.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(3))
    positions = torch.arange(ids.shape[1])
    for rate, kept in zip(RATES, allocation):
        sliced = slice_model(sorted_model, specs, kept)
        hidden = sorted_model.embed(ids)
        for index in range(model.config.num_layers):
            masked_out = sorted_model.layer_forward(index, hidden, positions, kept[index])
            sliced_out = sliced.layer_forward(index, hidden, positions)
            difference = (masked_out - sliced_out).abs().max().item()
            assert difference <= 1e-5, f"rate {rate}, layer {index}: masked and sliced differ by {difference}"
            hidden = sliced_out
        with torch.no_grad():
            whole = (sorted_model(ids, kept=kept) - sliced(ids)).abs().max().item()
        assert whole <= 1e-4, f"rate {rate}: masked and sliced logits differ by {whole}"


def test_sliced_model_loses_more_as_rate_grows(tiny_model_dirs):
    model, sorted_model, stats = sorted_tiny(tiny_model_dirs[("llama", False)], samples=32)
    allocation = allocate(model.config, stats.block_influence(), [0.0, 0.2, 0.5], Granularity(16, 16))
    ids = torch.randint(0, model.config.vocab_size, (4, 64), generator=torch.Generator().manual_seed(1))
    errors = []
    with torch.no_grad():
        reference = model(ids)
        for kept in allocation:
            errors.append((sorted_model(ids, kept=kept) - reference).pow(2).mean().item())
    assert errors[0] <= 1e-8
    assert errors[0] < errors[1] < errors[2], f"errors by rate {errors}"


def test_value_bias_folds_into_output_bias(tiny_model_dirs):
    model, sorted_model, _ = sorted_tiny(tiny_model_dirs[("qwen2", False)])
    assert "layers.0.self_attn.v_proj.bias" in model.params
    assert "layers.0.self_attn.v_proj.bias" not in sorted_model.params
    assert "layers.0.self_attn.o_proj.bias" in sorted_model.params


def test_query_key_rows_keep_rope_pairs(tiny_model_dirs):
    model, sorted_model, _ = sorted_tiny(tiny_model_dirs[("llama", False)])
    config = model.config
    pairs = sorted_model.params["layers.0.self_attn.rope_pairs"]
    half = config.head_dim // 2
    assert pairs.shape == (config.num_key_value_heads, half)
    for row in pairs:
        assert torch.equal(row.sort().values, torch.arange(half))
    original = model.params["layers.0.self_attn.k_proj.weight"]
    resorted = sorted_model.params["layers.0.self_attn.k_proj.weight"]
    for kv_head in range(config.num_key_value_heads):
        base = kv_head * config.head_dim
        for position, old in enumerate(pairs[kv_head].tolist()):
            assert torch.equal(resorted[base + position], original[base + old])
            assert torch.equal(resorted[base + half + position], original[base + half + old])
