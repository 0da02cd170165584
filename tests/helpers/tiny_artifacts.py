"""Build small real artifacts from tiny random models by running the pipeline stages."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.helpers.tiny_models import make_tiny_model_dir

TINY_RATES = [0.0, 0.15, 0.35]


def tiny_config(**overrides):
    from uniql.pipeline import CompressConfig

    settings = {"calibration_samples": 8, "calibration_length": 64, "rates": TINY_RATES, "group_size": 32,
                "head_dim_step": 16, "eval_windows": 2, "eval_length": 32}
    settings.update(overrides)
    return CompressConfig.from_dict(settings)


def write_random_calibration(model_dir: Path, workdir: Path, config, seed: int = 0) -> None:
    """Stand in for the calibrate stage with random token windows (no text corpus needed)."""
    from uniql.calibration import collect_statistics
    from uniql.modeling.adapters import load_model
    from uniql.pipeline import checkpoints as ckpt

    model = load_model(model_dir)
    generator = torch.Generator().manual_seed(seed)
    windows = torch.randint(0, model.config.vocab_size, (config.calibration_samples, config.calibration_length),
                            generator=generator)
    stats = collect_statistics(model, windows)
    out = ckpt.stage_dir(workdir, "calibrate")
    ckpt.save_torch(stats.state_dict(), out / "statistics.pt")
    ckpt.save_torch(windows, out / "windows.pt")
    ckpt.mark_done(workdir, "calibrate", {"tokens": stats.tokens, "block_influence": stats.block_influence()})


def make_tiny_artifact(root: Path, family: str = "llama", tied: bool = False, **config_overrides) -> Path:
    """Compress a tiny random model of ``family`` and return its artifact directory."""
    from uniql.pipeline import run_stage

    root = Path(root)
    model_dir = make_tiny_model_dir(root / "model", family, tied)
    workdir = root / "work"
    config = tiny_config(**config_overrides)
    write_random_calibration(model_dir, workdir, config)
    for stage in ("sort", "allocate", "finetune", "quantize", "package"):
        run_stage(stage, model_dir, workdir, config)
    return workdir / "artifact"
