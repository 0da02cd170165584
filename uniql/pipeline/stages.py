"""The pipeline stages. Each reads the checkpoints of earlier stages and writes its own.

Stages: calibrate -> sort -> allocate -> finetune -> quantize -> package -> evaluate.
``run_stage`` skips a stage whose done-marker exists, so a killed job resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from uniql.pipeline import checkpoints as ckpt
from uniql.pipeline.context import StageContext

logger = logging.getLogger(__name__)

STAGES = ("calibrate", "sort", "allocate", "finetune", "quantize", "package", "evaluate")
ARTIFACT_DIR = "artifact"


def run_stage(stage: str, model_dir: Path, workdir: Path, config, progress=None, should_cancel=None) -> dict[str, Any]:
    """Run one stage unless it is already done; return its metrics."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if ckpt.is_done(workdir, stage):
        logger.info("stage %s already done in %s; skipping", stage, workdir)
        return ckpt.read_metrics(workdir, stage)

    context = StageContext(stage, Path(model_dir), workdir, config, progress, should_cancel)
    context.check_cancelled()
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    context.report(0.0, f"{stage} started")
    metrics = STAGE_FUNCTIONS[stage](context)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    ckpt.mark_done(workdir, stage, metrics)
    context.report(1.0, f"{stage} finished in {metrics['seconds']:.1f} s", **metrics)
    logger.info("stage %s finished in %.1f s", stage, metrics["seconds"])
    return metrics


def _load_source(context: StageContext):
    from uniql.modeling.adapters import load_model

    return load_model(context.model_dir)


def _model_config(context: StageContext):
    from uniql.modeling.adapters import arch_config_from_hf, read_hf_config

    return arch_config_from_hf(read_hf_config(context.model_dir))


def calibrate(context: StageContext) -> dict[str, Any]:
    from uniql.calibration import collect_statistics
    from uniql.pipeline.data import calibration_windows

    config = context.config
    windows = calibration_windows(context.model_dir, config)
    model = _load_source(context).to(context.device)
    stats = collect_statistics(model, windows.to(context.device), config.batch_size, context.step_reporter("calibration batch"))
    out = ckpt.stage_dir(context.workdir, "calibrate")
    ckpt.save_torch(stats.state_dict(), out / "statistics.pt")
    ckpt.save_torch(windows, out / "windows.pt")
    return {"tokens": stats.tokens, "block_influence": stats.block_influence()}


def _statistics(context: StageContext):
    from uniql.calibration import CalibrationStatistics

    state = torch.load(context.workdir / "calibrate" / "statistics.pt", weights_only=False)
    return CalibrationStatistics.from_state_dict(state)


def sort(context: StageContext) -> dict[str, Any]:
    from uniql.sorting import sort_model

    model = _load_source(context)
    sorted_model = sort_model(model, _statistics(context), context.config.ridge_alpha)
    out = ckpt.stage_dir(context.workdir, "sort")
    ckpt.save_model(sorted_model, out / "model.safetensors")
    return {"layers": model.config.num_layers}


def allocate(context: StageContext) -> dict[str, Any]:
    from uniql.allocation import Granularity, allocate as allocate_sizes, realized_dims_rate

    config = context.config
    arch = _model_config(context)
    influence = _statistics(context).block_influence()
    granularity = Granularity(config.resolved_mlp_step(arch.intermediate_size), config.head_dim_step)
    allocation = allocate_sizes(arch, influence, config.rates, granularity, config.allocation_eps, config.max_module_prune)
    realized = {str(rate): realized_dims_rate(arch, kept) for rate, kept in zip(config.rates, allocation)}
    out = ckpt.stage_dir(context.workdir, "allocate")
    document = {
        "rates": config.rates,
        "granularity": {"mlp_step": granularity.mlp_step, "head_dim_step": granularity.head_dim_step},
        "block_influence": influence,
        "kept": [[layer.as_dict() for layer in kept] for kept in allocation],
        "realized_dims_rate": realized,
    }
    (out / "allocation.json").write_text(json.dumps(document, indent=1))
    for rate, value in realized.items():
        logger.info("allocation for rate %s: realized %.4f in dimension space", rate, value)
    return {"realized_dims_rate": realized}


def read_allocation(workdir: Path) -> dict[str, Any]:
    return json.loads((Path(workdir) / "allocate" / "allocation.json").read_text())


def finetune(context: StageContext) -> dict[str, Any]:
    settings = context.config.finetune
    if not settings or not settings.get("enabled", True):
        logger.info("fine-tuning is off; the sorted weights go to quantization unchanged")
        return {"skipped": True}
    from uniql.finetune.stage import run_finetune_stage

    return run_finetune_stage(context)


def weights_for_quantization(context: StageContext):
    """Load the fine-tuned weights when fine-tuning ran, else the sorted ones."""
    arch = _model_config(context)
    tuned = context.workdir / "finetune" / "model.safetensors"
    path = tuned if tuned.is_file() else context.workdir / "sort" / "model.safetensors"
    return ckpt.load_saved_model(arch, path)


def quantize(context: StageContext) -> dict[str, Any]:
    from uniql.pipeline.quantize_stage import run_quantize

    return run_quantize(context, weights_for_quantization(context))


def package(context: StageContext) -> dict[str, Any]:
    from uniql.pipeline.package_stage import run_package

    return run_package(context)


def evaluate(context: StageContext) -> dict[str, Any]:
    from uniql.pipeline.evaluate_stage import run_evaluate

    return run_evaluate(context, context.workdir / ARTIFACT_DIR)


STAGE_FUNCTIONS = {
    "calibrate": calibrate,
    "sort": sort,
    "allocate": allocate,
    "finetune": finetune,
    "quantize": quantize,
    "package": package,
    "evaluate": evaluate,
}
