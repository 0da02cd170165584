"""Settings of masked LoRA recovery fine-tuning, validated when they are built."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from uniql.errors import ConfigError

RATE_SAMPLINGS = ("exponential", "uniform")
# Corpora reserved for perplexity evaluation. Training on them would leak into the reported numbers.
EVALUATION_TEXTS = ("wiki", "books")


@dataclass
class FinetuneConfig:
    """Masked LoRA fine-tuning of a sorted model over the rates of its artifact.

    One optimizer step trains one global rate drawn from the artifact's rates (rate 0 included).
    With ``rate_sampling="exponential"`` the rates are ordered from the most pruned to rate 0 and
    index ``i`` is drawn with probability proportional to ``exp(-rate_decay * i)``, so heavily
    pruned sub-networks are trained most often. ``eval_rates`` (default: every artifact rate) is
    the fixed set whose mean held-out loss selects the best adapters.
    """

    enabled: bool = True
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    steps: int = 200
    warmup_steps: int = 20
    seq_len: int = 256
    micro_batch: int = 4
    grad_accum: int = 8
    train_windows: int = 512
    eval_windows: int = 16
    rate_sampling: str = "exponential"
    rate_decay: float = 0.1
    eval_rates: list[float] | None = None
    eval_every: int = 50
    checkpoint_every: int | None = None
    text: str = "calibration"
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "FinetuneConfig":
        """Build and validate the settings. Raises ConfigError on unknown keys or invalid values."""
        data = dict(data or {})
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown finetune keys {unknown}; allowed keys: {', '.join(sorted(known))}")
        config = cls(**data)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def scaling(self) -> float:
        """Factor ``alpha / rank`` of the LoRA update ``W + scaling * B A``."""
        return self.alpha / self.rank

    @property
    def resolved_checkpoint_every(self) -> int:
        return self.checkpoint_every if self.checkpoint_every is not None else self.eval_every

    def validate(self) -> None:
        """Raise ConfigError listing every invalid value at once."""
        problems = self._integer_problems() + self._number_problems() + self._choice_problems()
        if problems:
            raise ConfigError("invalid finetune settings: " + "; ".join(problems))

    def _integer_problems(self) -> list[str]:
        problems = []
        positive = ("rank", "steps", "micro_batch", "grad_accum", "train_windows", "eval_windows", "eval_every")
        for key in positive:
            value = getattr(self, key)
            if not _is_int(value) or value <= 0:
                problems.append(f"{key}={value!r} must be a positive integer")
        if not _is_int(self.warmup_steps) or self.warmup_steps < 0:
            problems.append(f"warmup_steps={self.warmup_steps!r} must be a non-negative integer")
        if not _is_int(self.seq_len) or self.seq_len < 16:
            problems.append(f"seq_len={self.seq_len!r} must be an integer of at least 16 tokens")
        if self.checkpoint_every is not None and (not _is_int(self.checkpoint_every) or self.checkpoint_every <= 0):
            problems.append(f"checkpoint_every={self.checkpoint_every!r} must be a positive integer or null")
        if not _is_int(self.seed):
            problems.append(f"seed={self.seed!r} must be an integer")
        return problems

    def _number_problems(self) -> list[str]:
        problems = []
        for key in ("alpha", "learning_rate", "max_grad_norm"):
            value = getattr(self, key)
            if not _is_number(value) or value <= 0:
                problems.append(f"{key}={value!r} must be a positive number")
        for key in ("weight_decay", "rate_decay"):
            value = getattr(self, key)
            if not _is_number(value) or value < 0:
                problems.append(f"{key}={value!r} must be a non-negative number")
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout!r} must lie in [0, 1)")
        if self.eval_rates is not None:
            if not isinstance(self.eval_rates, list) or not self.eval_rates:
                problems.append(f"eval_rates={self.eval_rates!r} must be a non-empty list of rates or null")
            elif not all(_is_number(rate) for rate in self.eval_rates):
                problems.append(f"eval_rates={self.eval_rates!r} must contain numbers such as 0.15")
        return problems

    def _choice_problems(self) -> list[str]:
        problems = []
        if not isinstance(self.enabled, bool):
            problems.append(f"enabled={self.enabled!r} must be true or false")
        if self.rate_sampling not in RATE_SAMPLINGS:
            problems.append(f"rate_sampling={self.rate_sampling!r} is invalid; choose one of {', '.join(RATE_SAMPLINGS)}")
        if not isinstance(self.text, str) or not self.text:
            problems.append(f"text={self.text!r} must be a corpus name or a path to a text file")
        elif self.text in EVALUATION_TEXTS:
            problems.append(
                f"text={self.text!r} is an evaluation corpus; fine-tune on 'calibration' or a text file so the "
                "reported perplexity stays held out"
            )
        return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
