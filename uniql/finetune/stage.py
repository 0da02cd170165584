"""The finetune pipeline stage: masked LoRA on the sorted model, merged and saved for quantization."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from uniql.errors import DataError
from uniql.finetune.config import FinetuneConfig
from uniql.finetune.trainer import MaskedLoraTrainer
from uniql.modeling.model import LayerKept
from uniql.pipeline import checkpoints as ckpt
from uniql.pipeline.context import StageContext

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.safetensors"


def kept_sizes_by_rate(allocation: dict[str, Any]) -> dict[float, list[LayerKept]]:
    """Kept sizes per layer for every rate of an ``allocation.json`` document."""
    return {
        float(rate): [LayerKept(**layer) for layer in layers]
        for rate, layers in zip(allocation["rates"], allocation["kept"])
    }


def finetune_windows(model_dir: Path, config: FinetuneConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and held-out windows ``[N, seq_len]`` packed from ``config.text``, disjoint by construction.

    The windows are distinct non-overlapping cuts of one token stream, so no held-out token is
    trained on. Raises DataError when the corpus is missing or too short.
    """
    from uniql.data.calibration import pack_token_windows
    from uniql.pipeline.data import load_corpus, load_tokenizer

    documents = load_corpus(config.text)
    total = config.train_windows + config.eval_windows
    windows = pack_token_windows(load_tokenizer(model_dir), documents, total, config.seq_len, config.seed)
    return windows[config.eval_windows :], windows[: config.eval_windows]


def run_finetune_stage(context: StageContext) -> dict[str, Any]:
    """Fine-tune from the last checkpoint, merge the best adapters and write ``finetune/model.safetensors``."""
    from uniql.modeling.adapters import arch_config_from_hf, read_hf_config
    from uniql.pipeline.stages import read_allocation

    config = FinetuneConfig.from_dict(context.config.finetune)
    arch = arch_config_from_hf(read_hf_config(context.model_dir))
    kept_by_rate = kept_sizes_by_rate(read_allocation(context.workdir))
    sorted_model = ckpt.load_saved_model(arch, context.workdir / "sort" / MODEL_NAME)
    try:
        train_windows, eval_windows = finetune_windows(context.model_dir, config)
    except (DataError, FileNotFoundError) as error:
        raise DataError(f"fine-tuning text {config.text!r} is unavailable: {error}") from error

    # Not ckpt.stage_dir: it would delete the checkpoint that lets a killed worker resume.
    out = context.workdir / "finetune"
    out.mkdir(parents=True, exist_ok=True)
    trainer = MaskedLoraTrainer(sorted_model, kept_by_rate, config, context.device)

    def on_step(step: int, total: int, metrics: dict[str, Any]) -> None:
        message = f"fine-tuning step {step}/{total}: rate {metrics['rate']}, loss {metrics['loss']:.4f}"
        context.report(step / total, message, **metrics)
        context.check_cancelled()

    result = trainer.train(train_windows, eval_windows, out / CHECKPOINT_NAME, on_step)
    ckpt.save_model(result.model, out / MODEL_NAME)
    ckpt.save_torch(result.adapters.state_dict(), out / "adapters.pt")
    first, last = result.history[0], result.history[-1]
    logger.info("fine-tuned model saved to %s: mean held-out loss %.4f at step 0, %.4f selected at step %d",
                out / MODEL_NAME, first["eval_loss"], result.best_eval_loss, result.best_step)
    return {
        "steps": config.steps,
        "resumed_from_step": result.start_step,
        "best_step": result.best_step,
        "best_eval_loss": result.best_eval_loss,
        "initial_eval_loss_by_rate": first["eval_loss_by_rate"],
        "final_eval_loss_by_rate": last["eval_loss_by_rate"],
        "train_windows": int(train_windows.shape[0]),
        "eval_windows": int(eval_windows.shape[0]),
    }
