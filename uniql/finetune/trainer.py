"""Masked LoRA training loop: one global rate per optimizer step, selection on fixed rates.

Every random choice (rate, batch order, dropout masks) is derived from ``(seed, step)``, so a run
resumed from a checkpoint takes the same steps as one that was never interrupted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from uniql.errors import ConfigError, DataError
from uniql.finetune.config import FinetuneConfig
from uniql.finetune.lora import LoraAdapters, LoraDecoderModel, merge_adapters
from uniql.modeling.model import DecoderModel, LayerKept
from uniql.pipeline.checkpoints import save_torch
from uniql.pipeline.context import Cancelled

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
IGNORE_INDEX = -100
# Called as on_step(step, total_steps, metrics). Raising Cancelled stops training after a checkpoint is written.
StepCallback = Callable[[int, int, dict[str, Any]], None]


@dataclass
class FinetuneResult:
    """The merged model, the selected adapters and the loss history of one run."""

    model: DecoderModel
    adapters: LoraAdapters
    best_step: int
    best_eval_loss: float
    start_step: int
    history: list[dict[str, Any]] = field(default_factory=list)


def rate_probabilities(rates: list[float], sampling: str, decay: float) -> dict[float, float]:
    """Return the probability of drawing each rate, ordered from the most pruned rate to the least."""
    ordered = sorted(rates, reverse=True)
    if sampling == "uniform":
        weights = [1.0] * len(ordered)
    else:
        weights = [math.exp(-decay * index) for index in range(len(ordered))]
    total = sum(weights)
    return {rate: weight / total for rate, weight in zip(ordered, weights)}


def sample_rate(probabilities: dict[float, float], seed: int, step: int) -> float:
    generator = torch.Generator().manual_seed(_step_seed(seed, step))
    rates = list(probabilities)
    weights = torch.tensor([probabilities[rate] for rate in rates], dtype=torch.float64)
    return rates[int(torch.multinomial(weights, 1, generator=generator))]


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Return the mean next-token cross-entropy over real targets (``token_mask`` is False on padding)."""
    targets = input_ids[:, 1:].clone()                                     # (B, T-1)
    if token_mask is not None:
        targets[~token_mask[:, 1:].bool()] = IGNORE_INDEX
    return F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX)


def masked_eval_loss(
    model: DecoderModel, windows: torch.Tensor, kept: list[LayerKept], batch_size: int, device: torch.device
) -> float:
    """Mean next-token loss of ``model`` masked to ``kept`` over ``windows [N, T]`` (every token is real)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for begin in range(0, windows.shape[0], batch_size):
            batch = windows[begin : begin + batch_size].to(device)
            logits = model(batch, kept=kept)
            total += causal_lm_loss(logits, batch).item() * batch.numel()
            count += batch.numel()
    return total / count


class MaskedLoraTrainer:
    """Trains adapters on a sorted model with one sampled rate per optimizer step."""

    def __init__(
        self,
        model: DecoderModel,
        kept_by_rate: dict[float, list[LayerKept]],
        config: FinetuneConfig,
        device: torch.device | str = "cpu",
    ):
        self.config = config
        self.device = torch.device(device)
        self.kept_by_rate = kept_by_rate
        self.eval_rates = resolve_eval_rates(config, list(kept_by_rate))
        self.probabilities = rate_probabilities(list(kept_by_rate), config.rate_sampling, config.rate_decay)
        base = DecoderModel(model.config, {name: tensor.to(self.device) for name, tensor in model.params.items()})
        self.adapters = LoraAdapters.create(base, config.rank, config.scaling, config.seed)
        self.model = LoraDecoderModel(base, self.adapters, config.dropout)
        self.model.generator = torch.Generator(device=self.device)
        self.optimizer = torch.optim.AdamW(
            self.adapters.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.best_state = self.adapters.state_dict()
        self.best_step = 0
        self.best_eval_loss = math.inf
        self.history: list[dict[str, Any]] = []

    def _lr_factor(self, step: int) -> float:
        """Linear warm-up to the full learning rate, then linear decay towards zero."""
        warmup, total = self.config.warmup_steps, self.config.steps
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    def train(
        self,
        train_windows: torch.Tensor,
        eval_windows: torch.Tensor,
        checkpoint_path: Path | None = None,
        on_step: StepCallback | None = None,
        train_mask: torch.Tensor | None = None,
    ) -> FinetuneResult:
        """Run the remaining steps and return the model merged with the best adapters.

        ``train_windows [N, T]`` are token ids, and ``train_mask`` (same shape, False on padding)
        keeps padding out of the loss. ``eval_windows`` must be packed text without padding.
        A checkpoint at ``checkpoint_path`` is resumed when its settings match.
        """
        _check_windows(train_windows, eval_windows, self.config, self.model.config.vocab_size)
        if checkpoint_path is not None and Path(checkpoint_path).is_file():
            self.load_checkpoint(Path(checkpoint_path))
        start_step = self.step
        if self.step == 0 and not self.history:
            self._evaluate(eval_windows)
        started = time.perf_counter()

        try:
            while self.step < self.config.steps:
                metrics = self._train_step(train_windows, train_mask)
                self.step += 1
                if self.step % self.config.eval_every == 0 or self.step == self.config.steps:
                    metrics.update(self._evaluate(eval_windows))
                if checkpoint_path is not None and self.step % self.config.resolved_checkpoint_every == 0:
                    self.save_checkpoint(Path(checkpoint_path))
                if on_step is not None:
                    on_step(self.step, self.config.steps, metrics)
        except Cancelled:
            if checkpoint_path is not None:
                self.save_checkpoint(Path(checkpoint_path))
            raise

        logger.info("fine-tuned %d steps (from step %d) in %.1f s; best mean held-out loss %.4f at step %d",
                    self.config.steps - start_step, start_step, time.perf_counter() - started,
                    self.best_eval_loss, self.best_step)
        return self._result(start_step)

    def _train_step(self, windows: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        config = self.config
        rate = sample_rate(self.probabilities, config.seed, self.step)
        kept = self.kept_by_rate[rate]
        self.model.training = True
        self.model.generator.manual_seed(_step_seed(config.seed + 1, self.step))
        self.optimizer.zero_grad(set_to_none=True)
        total_loss = 0.0

        for micro in range(config.grad_accum):
            rows = _batch_rows(windows.shape[0], config, self.step * config.grad_accum + micro)
            batch = windows[rows].to(self.device)                              # (b, T)
            batch_mask = mask[rows].to(self.device) if mask is not None else None
            loss = causal_lm_loss(self.model(batch, kept=kept), batch, batch_mask)
            (loss / config.grad_accum).backward()
            total_loss += loss.item() / config.grad_accum

        grad_norm = torch.nn.utils.clip_grad_norm_(self.adapters.parameters(), config.max_grad_norm)
        learning_rate = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.model.training = False
        return {"step": self.step + 1, "rate": rate, "loss": total_loss, "grad_norm": float(grad_norm),
                "learning_rate": learning_rate}

    def _evaluate(self, windows: torch.Tensor) -> dict[str, Any]:
        """Measure the held-out loss at every evaluation rate and keep the adapters with the lowest mean."""
        losses = {
            rate: masked_eval_loss(self.model, windows, self.kept_by_rate[rate], self.config.micro_batch, self.device)
            for rate in self.eval_rates
        }
        mean = sum(losses.values()) / len(losses)
        record = {"step": self.step, "eval_loss": mean, "eval_loss_by_rate": {str(rate): loss for rate, loss in losses.items()}}
        self.history.append(record)
        if mean < self.best_eval_loss:
            self.best_eval_loss, self.best_step = mean, self.step
            self.best_state = self.adapters.state_dict()
        logger.info("fine-tuning step %d: mean held-out loss %.4f over rates %s (best %.4f at step %d)",
                    self.step, mean, self.eval_rates, self.best_eval_loss, self.best_step)
        return {"eval_loss": mean, "eval_loss_by_rate": record["eval_loss_by_rate"]}

    def _result(self, start_step: int) -> FinetuneResult:
        selected = LoraAdapters(self.adapters.rank, self.adapters.scaling)
        for key, tensor in self.best_state.items():
            name, kind = key.rsplit(".", 1)
            (selected.a if kind == "lora_a" else selected.b)[name] = tensor
        base = DecoderModel(self.model.config, self.model.params)
        merged = merge_adapters(base, selected)
        merged = DecoderModel(merged.config, {name: tensor.cpu() for name, tensor in merged.params.items()})
        return FinetuneResult(merged, selected, self.best_step, self.best_eval_loss, start_step, list(self.history))

    def save_checkpoint(self, path: Path) -> None:
        """Write adapters, optimizer, schedule, best adapters and history atomically."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "settings": _resume_settings(self.config),
            "step": self.step,
            "adapters": self.adapters.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_state": self.best_state,
            "best_step": self.best_step,
            "best_eval_loss": self.best_eval_loss,
            "history": self.history,
        }
        save_torch(state, path)
        logger.info("saved fine-tuning checkpoint at step %d to %s", self.step, path)

    def load_checkpoint(self, path: Path) -> None:
        """Resume from ``path``, unless it was written with other settings (then warn and start at step 0)."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("settings") != _resume_settings(self.config):
            logger.warning("fine-tuning checkpoint %s was written with other settings; starting again from step 0", path)
            return
        self.adapters.load_state_dict(state["adapters"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.best_state = state["best_state"]
        self.best_step = state["best_step"]
        self.best_eval_loss = state["best_eval_loss"]
        self.history = state["history"]
        logger.info("resumed fine-tuning from step %d of %d (%s)", self.step, self.config.steps, path)


def resolve_eval_rates(config: FinetuneConfig, rates: list[float]) -> list[float]:
    if config.eval_rates is None:
        return sorted(rates)
    missing = [rate for rate in config.eval_rates if float(rate) not in rates]
    if missing:
        raise ConfigError(f"finetune eval_rates {missing} are not rates of this job; choose from {sorted(rates)}")
    return sorted(float(rate) for rate in config.eval_rates)


def _resume_settings(config: FinetuneConfig) -> dict[str, Any]:
    """Return the settings a checkpoint must share with the current run (all but ``enabled``)."""
    settings = config.to_dict()
    settings.pop("enabled")
    return settings


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63)


def _batch_rows(count: int, config: FinetuneConfig, micro_index: int) -> torch.Tensor:
    """Return the rows of micro-batch ``micro_index``. Each epoch walks a new seeded permutation of the windows."""
    per_epoch = max(1, count // config.micro_batch)
    epoch, position = divmod(micro_index, per_epoch)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(_step_seed(config.seed + 2, epoch)))
    return order[position * config.micro_batch : (position + 1) * config.micro_batch]


def _check_windows(train: torch.Tensor, evaluation: torch.Tensor, config: FinetuneConfig, vocab_size: int) -> None:
    for name, windows in (("training", train), ("held-out", evaluation)):
        if windows.dim() != 2 or windows.shape[0] == 0 or windows.shape[1] < 2:
            raise DataError(f"{name} windows must have shape [N >= 1, T >= 2]; got {tuple(windows.shape)}")
        if windows.dtype != torch.long or int(windows.min()) < 0 or int(windows.max()) >= vocab_size:
            raise DataError(f"{name} windows must be int64 token ids in [0, {vocab_size}); check the tokenizer")
    if train.shape[0] < config.micro_batch:
        raise DataError(f"{train.shape[0]} training windows are fewer than micro_batch={config.micro_batch}")
