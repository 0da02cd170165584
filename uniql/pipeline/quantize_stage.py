"""The quantize stage: rotation and 4-bit GPTQ (or round-to-nearest) of the sorted model."""

from __future__ import annotations

import logging
from typing import Any

import torch

from uniql.pipeline import checkpoints as ckpt
from uniql.pipeline.context import StageContext
from uniql.quantization.model import QuantizeSettings, quantize_model
from uniql.specs import linear_group_sizes

logger = logging.getLogger(__name__)


def group_sizes(context: StageContext, arch) -> dict[str, int]:
    config = context.config
    return linear_group_sizes(arch, config.group_size, config.resolved_mlp_step(arch.intermediate_size), config.head_dim_step)


def settings_from(config) -> QuantizeSettings:
    return QuantizeSettings(
        method=config.method,
        symmetric=config.scheme == "symmetric",
        damp=config.gptq_damp,
        reverse_input_sliced=config.gptq_order == "reverse",
        rotate=config.rotation != "none",
        rotation_seed=config.rotation_seed,
    )


def run_quantize(context: StageContext, model) -> dict[str, Any]:
    windows = torch.load(context.workdir / "calibrate" / "windows.pt")
    groups = group_sizes(context, model.config)
    result = quantize_model(
        model.to(context.device), windows, groups, settings_from(context.config), context.config.batch_size,
        context.step_reporter("quantized layer"),
    )
    out = ckpt.stage_dir(context.workdir, "quantize")
    state = {
        "weights": {name: vars(weight) for name, weight in result.weights.items()},
        "dense": {name: tensor.cpu() for name, tensor in result.model.params.items() if name not in result.weights},
        "rotation": result.rotation,
        "groups": groups,
    }
    ckpt.save_torch(state, out / "quantized.pt")
    return {"rotation": result.rotation, "groups": groups, "method": context.config.method}
