"""Calibration: accumulate the statistics that sorting and allocation need in one forward pass.

Statistics are summed on the fly (X^T X in float64), never stored as activations, and the
calibration windows are packed text without padding, so every token counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from uniql.modeling.model import DecoderModel

logger = logging.getLogger(__name__)


@dataclass
class LayerStatistics:
    """Sums over calibration tokens for one decoder layer."""

    attn_second_moment: torch.Tensor     # [d, d]  sum x x^T of the q/k/v input
    attn_sum: torch.Tensor               # [d]     sum x of the q/k/v input
    down_second_moment: torch.Tensor     # [D, D]  sum h h^T of the down_proj input
    cosine_sum: float = 0.0              # sum over tokens of cos(layer input, layer output)

    def to(self, device: str) -> "LayerStatistics":
        return LayerStatistics(
            self.attn_second_moment.to(device), self.attn_sum.to(device), self.down_second_moment.to(device), self.cosine_sum
        )


@dataclass
class CalibrationStatistics:
    layers: list[LayerStatistics]
    tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def block_influence(self) -> list[float]:
        """Block Influence per layer: 1 - mean cosine(input, output) over all tokens."""
        return [1.0 - layer.cosine_sum / self.tokens for layer in self.layers]

    def state_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "seconds": self.seconds,
            "layers": [vars(layer) for layer in self.layers],
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "CalibrationStatistics":
        return cls([LayerStatistics(**layer) for layer in state["layers"]], state["tokens"], state["seconds"])


def empty_statistics(model: DecoderModel) -> CalibrationStatistics:
    cfg = model.config
    layers = [
        LayerStatistics(
            attn_second_moment=torch.zeros(cfg.hidden_size, cfg.hidden_size, dtype=torch.float64),
            attn_sum=torch.zeros(cfg.hidden_size, dtype=torch.float64),
            down_second_moment=torch.zeros(cfg.intermediate_size, cfg.intermediate_size, dtype=torch.float64),
        )
        for _ in range(cfg.num_layers)
    ]
    return CalibrationStatistics(layers)


@torch.no_grad()
def collect_statistics(
    model: DecoderModel,
    windows: torch.Tensor,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationStatistics:
    """Run ``windows [n, T]`` through the model once and accumulate every layer's statistics."""
    stats = empty_statistics(model)
    layer_inputs: dict[int, torch.Tensor] = {}

    def observe(point: str, index: int, tensor: torch.Tensor) -> None:
        if index < 0:
            return
        layer = stats.layers[index]
        flat = tensor.reshape(-1, tensor.shape[-1]).float()
        if point == "attn_input":
            layer.attn_second_moment += (flat.T @ flat).double().cpu()
            layer.attn_sum += flat.sum(dim=0).double().cpu()
        elif point == "down_input":
            layer.down_second_moment += (flat.T @ flat).double().cpu()
        elif point == "layer_input":
            layer_inputs[index] = flat
        elif point == "layer_output":
            layer.cosine_sum += F.cosine_similarity(layer_inputs.pop(index), flat, dim=-1).double().sum().item()

    started = time.perf_counter()
    total = windows.shape[0]
    for start in range(0, total, batch_size):
        batch = windows[start:start + batch_size]
        hidden = model.embed(batch)
        positions = torch.arange(batch.shape[1], device=batch.device)
        for index in range(model.config.num_layers):
            hidden = model.layer_forward(index, hidden, positions, observer=observe)
        stats.tokens += batch.numel()
        if progress is not None:
            progress(min(start + batch_size, total), total)

    stats.seconds = time.perf_counter() - started
    logger.info("calibrated %d layers on %d tokens in %.1f s", model.config.num_layers, stats.tokens, stats.seconds)
    return stats
