"""Allocation: exact average rate, nested kept sizes, floors and rounding."""

from __future__ import annotations

import pytest

from uniql.allocation import Granularity, allocate, prune_fractions, round_kept
from uniql.errors import ConfigError
from uniql.modeling.config import ArchConfig

SCORES = [0.05, 0.3, 0.12, 0.02, 0.4, 0.08, 0.2, 0.6]


def small_config(layers: int = 4) -> ArchConfig:
    return ArchConfig(family="llama", hidden_size=128, num_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=64, intermediate_size=512, vocab_size=100, rms_norm_eps=1e-5, hidden_act="silu",
                      max_position_embeddings=128, tie_word_embeddings=False, qkv_bias=False, o_bias=False,
                      inv_freq=[1.0] * 32)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.15, 0.35])
def test_unclamped_fractions_average_to_rate(rate):
    fractions = prune_fractions(SCORES, rate, eps=1.0, cap=0.99)
    assert max(fractions) < 0.99, "this case must not reach the cap"
    assert sum(fractions) / len(fractions) == pytest.approx(rate, abs=1e-12)


def test_clamped_fractions_still_average_to_rate():
    fractions = prune_fractions(SCORES, 0.35, eps=0.05, cap=0.5)
    assert max(fractions) == pytest.approx(0.5)
    assert sum(fractions) / len(fractions) == pytest.approx(0.35, abs=1e-9)


def test_important_modules_lose_less():
    fractions = prune_fractions(SCORES, 0.2, eps=0.1, cap=0.85)
    most, least = SCORES.index(max(SCORES)), SCORES.index(min(SCORES))
    assert fractions[most] < fractions[least]


def test_rate_above_cap_is_rejected():
    with pytest.raises(ConfigError, match="cannot be reached"):
        prune_fractions(SCORES, 0.9, eps=0.1, cap=0.85)


def test_kept_sizes_are_nested_and_never_zero():
    config = small_config()
    rates = [round(0.05 * i, 2) for i in range(15)]
    allocation = allocate(config, SCORES[:4], rates, Granularity(mlp_step=32, head_dim_step=16), eps=0.05)
    for lower, higher in zip(allocation, allocation[1:]):
        for small_rate, big_rate in zip(lower, higher):
            assert big_rate.attn_head_dim <= small_rate.attn_head_dim
            assert big_rate.mlp <= small_rate.mlp
    for kept in allocation:
        for layer in kept:
            assert layer.attn_head_dim >= 16
            assert layer.attn_head_dim % 16 == 0
            assert layer.mlp >= 32
            assert layer.mlp % 32 == 0
    assert all(layer.attn_head_dim == 64 and layer.mlp == 512 for layer in allocation[0])


def test_round_kept_follows_step():
    assert round_kept(1536, 0.85, 64) == 1280
    assert round_kept(64, 0.80, 16) == 48
    assert round_kept(64, 0.01, 16) == 16


def test_rounded_sizes_reach_requested_rate():
    from uniql.allocation import realized_dims_rate

    config = small_config(layers=8)
    rates = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35]
    allocation = allocate(config, SCORES, rates, Granularity(mlp_step=32, head_dim_step=16))
    for rate, kept in zip(rates, allocation):
        realized = realized_dims_rate(config, kept)
        assert realized >= rate - 1e-9, f"rate {rate}: rounded sizes prune only {realized:.4f}"
        assert realized - rate < 0.05, f"rate {rate}: rounded sizes overshoot to {realized:.4f}"
