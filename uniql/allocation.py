"""Per-module kept sizes for a set of global pruning rates, nested across rates.

Each layer's importance is its Block Influence ``s_l = 1 - mean cos(input, output)``. For a
global rate ``p`` over ``L`` prunable modules (attention and MLP of every layer), module ``m``
is pruned by ``phi_m = min(cap, t * L * w_m)`` with ``w = softmax(-s / eps)``. Without the cap
and rounding, ``t = p`` gives a mean of exactly ``p``. With them, the scale ``t`` is found by
bisection, so the mean stays at ``p`` when modules hit the cap or sizes are rounded. ``phi_m`` grows with
``t`` and ``t`` with ``p``, so kept sizes never grow with the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from uniql.errors import ConfigError
from uniql.modeling.config import ArchConfig
from uniql.modeling.model import LayerKept


@dataclass(frozen=True)
class Granularity:
    """Rounding steps of kept sizes: MLP width and attention head dim."""

    mlp_step: int
    head_dim_step: int


def prune_fractions(scores: list[float], rate: float, eps: float, cap: float) -> list[float]:
    """Pruned fraction ``phi`` per module (modules ordered as given), averaging exactly ``rate``."""
    if not 0.0 <= rate <= cap:
        raise ConfigError(f"rate {rate} cannot be reached when no module may lose more than {cap}")
    if rate == 0:
        return [0.0] * len(scores)
    exponents = [-score / eps for score in scores]
    top = max(exponents)
    weights = [math.exp(value - top) for value in exponents]
    total = sum(weights)
    base = [len(scores) * rate * weight / total for weight in weights]

    def mean_fraction(scale: float) -> float:
        return sum(min(cap, scale * value) for value in base) / len(base)

    low, high = 1.0, 1.0
    while mean_fraction(high) < rate:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if mean_fraction(middle) < rate:
            low = middle
        else:
            high = middle
    return [min(cap, high * value) for value in base]


def round_kept(size: int, keep_ratio: float, step: int) -> int:
    """Kept size: ``keep_ratio * size`` rounded to a multiple of ``step``, at least one step."""
    return int(min(size, max(step, step * round(keep_ratio * size / step))))


def allocate(
    config: ArchConfig, block_influence: list[float], rates: list[float], granularity: Granularity,
    eps: float = 0.1, cap: float = 0.85,
) -> list[list[LayerKept]]:
    """Kept sizes for every rate (same order as ``rates``) and every layer.

    Rounding to the granularity moves the average away from the requested rate (a 64-wide head
    cut in steps of 16 loses 0 % or 25 %). So the scale of ``phi`` is searched on the rounded
    sizes: the smallest scale whose rounded sizes prune at least ``rate`` on average. Kept sizes
    only shrink as the scale grows, so the result stays nested across rates.
    """
    module_scores = [score for score in block_influence for _ in range(2)]        # attention, MLP
    weights = _softmax([-score / eps for score in module_scores])
    allocation = []
    for rate in rates:
        if not 0.0 <= rate <= cap:
            raise ConfigError(f"rate {rate} cannot be reached when no module may lose more than {cap}")
        low, high = 0.0, cap / min(weights) / len(weights)
        if realized_dims_rate(config, _kept_at_scale(config, weights, high, cap, granularity)) < rate:
            low = high
        for _ in range(60):
            if low == high:
                break
            middle = (low + high) / 2
            if realized_dims_rate(config, _kept_at_scale(config, weights, middle, cap, granularity)) >= rate:
                high = middle
            else:
                low = middle
        allocation.append(_kept_at_scale(config, weights, 0.0 if rate == 0 else high, cap, granularity))
    return allocation


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    exponents = [math.exp(value - top) for value in values]
    total = sum(exponents)
    return [value / total for value in exponents]


def _kept_at_scale(config: ArchConfig, weights: list[float], scale: float, cap: float, granularity: Granularity) -> list[LayerKept]:
    """Kept sizes when module ``m`` is pruned by ``min(cap, scale * L * w_m)``."""
    count = len(weights)
    layers = []
    for index in range(config.num_layers):
        attention_keep = 1.0 - min(cap, scale * count * weights[2 * index])
        mlp_keep = 1.0 - min(cap, scale * count * weights[2 * index + 1])
        layers.append(LayerKept(
            attn_head_dim=round_kept(config.head_dim, attention_keep, granularity.head_dim_step),
            mlp=round_kept(config.intermediate_size, mlp_keep, granularity.mlp_step),
        ))
    return layers


def realized_dims_rate(config: ArchConfig, kept: list[LayerKept]) -> float:
    """Mean pruned fraction over modules, after rounding (the rate in "dimension space")."""
    fractions = []
    for layer in kept:
        fractions.append(1.0 - layer.attn_head_dim / config.head_dim)
        fractions.append(1.0 - layer.mlp / config.intermediate_size)
    return sum(fractions) / len(fractions)
