"""The compression pipeline as stages with checkpoints, and the checks that run before it starts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from uniql.pipeline.config import CompressConfig
from uniql.pipeline.context import Cancelled, ProgressEvent
from uniql.pipeline.stages import ARTIFACT_DIR, STAGES, run_stage

logger = logging.getLogger(__name__)

__all__ = [
    "ARTIFACT_DIR", "Cancelled", "CompressConfig", "ProgressEvent", "STAGES", "run_pipeline", "run_stage",
    "validate_model_dir",
]


def validate_model_dir(model_dir: Path, config: CompressConfig) -> None:
    """Check the model and the settings together, in milliseconds, before any heavy work."""
    from uniql.errors import ConfigError
    from uniql.modeling.adapters import arch_config_from_hf, read_hf_config
    from uniql.specs import linear_group_sizes

    arch = arch_config_from_hf(read_hf_config(Path(model_dir)))
    if arch.head_dim % config.head_dim_step:
        raise ConfigError(
            f"head_dim_step={config.head_dim_step} does not divide head_dim {arch.head_dim}; choose a divisor such as 16"
        )
    mlp_step = config.resolved_mlp_step(arch.intermediate_size)
    if arch.intermediate_size % mlp_step:
        raise ConfigError(f"mlp_step={mlp_step} does not divide the MLP width {arch.intermediate_size}; choose a divisor")
    linear_group_sizes(arch, config.group_size, mlp_step, config.head_dim_step)


def run_pipeline(
    model_dir: Path, workdir: Path, config: CompressConfig, stages: tuple[str, ...] = STAGES,
    progress=None, should_cancel=None,
) -> dict[str, Any]:
    """Run ``stages`` in order (finished ones are skipped); return each stage's metrics."""
    validate_model_dir(model_dir, config)
    return {stage: run_stage(stage, model_dir, workdir, config, progress, should_cancel) for stage in stages}
