"""The typed, validated configuration of a compression job."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from uniql.errors import ConfigError

CONFIG_VERSION = 1
DEFAULT_RATES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35)
CHOICES = {
    "method": ("gptq", "rtn"),
    "scheme": ("asymmetric", "symmetric"),
    "gptq_order": ("natural", "reverse"),
    "rotation": ("auto", "none"),
    "device": ("auto", "cpu", "cuda"),
}


@dataclass
class CompressConfig:
    """Settings of one compression job; ``from_dict`` rejects unknown keys and invalid values."""

    version: int = CONFIG_VERSION
    rates: list[float] = field(default_factory=lambda: list(DEFAULT_RATES))
    bits: int = 4
    group_size: int = 32
    scheme: str = "asymmetric"
    method: str = "gptq"
    gptq_damp: float = 0.01
    gptq_order: str = "natural"
    rotation: str = "auto"
    rotation_seed: int = 0
    calibration_text: str = "calibration"
    calibration_samples: int = 64
    calibration_length: int = 512
    ridge_alpha: float = 0.01
    allocation_eps: float = 0.1
    max_module_prune: float = 0.85
    mlp_step: int | None = None
    head_dim_step: int = 16
    finetune: dict[str, Any] | None = None
    eval_texts: dict[str, str] = field(default_factory=lambda: {"wiki": "wiki", "books": "books"})
    eval_windows: int = 8
    eval_length: int = 512
    batch_size: int = 4
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CompressConfig":
        data = dict(data or {})
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; allowed keys: {', '.join(sorted(known))}")
        config = cls(**data)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        if self.version != CONFIG_VERSION:
            raise ConfigError(f"config version {self.version} is not supported; this uniql reads version {CONFIG_VERSION}")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}={getattr(self, key)!r} is invalid; choose one of {', '.join(allowed)}")
        if self.bits != 4:
            raise ConfigError(f"bits={self.bits} is not supported; only 4-bit weights are packed")
        self._validate_rates()
        self._validate_positive("group_size", "calibration_samples", "calibration_length", "eval_windows",
                                "eval_length", "batch_size", "head_dim_step")
        if self.group_size & (self.group_size - 1) or self.group_size < 16:
            raise ConfigError(f"group_size={self.group_size} must be a power of two >= 16 (onnxruntime MatMulNBits block sizes)")
        if self.calibration_length < 16:
            raise ConfigError(f"calibration_length={self.calibration_length} is too short; use at least 16 tokens")
        if self.head_dim_step % 2:
            raise ConfigError(f"head_dim_step={self.head_dim_step} must be even so RoPE pairs stay whole")
        if self.mlp_step is not None and self.mlp_step <= 0:
            raise ConfigError(f"mlp_step={self.mlp_step} must be a positive number of channels")
        if not 0 < self.max_module_prune < 1:
            raise ConfigError(f"max_module_prune={self.max_module_prune} must lie in (0, 1)")
        if not (self.ridge_alpha > 0 and self.allocation_eps > 0 and self.gptq_damp > 0):
            raise ConfigError("ridge_alpha, allocation_eps and gptq_damp must be positive")
        if self.finetune is not None:
            from uniql.finetune.config import FinetuneConfig

            if not isinstance(self.finetune, dict):
                raise ConfigError(f"finetune={self.finetune!r} must be an object of fine-tuning settings or null")
            FinetuneConfig.from_dict(self.finetune)

    def _validate_rates(self) -> None:
        if not self.rates:
            raise ConfigError("rates is empty; give at least one pruning rate, for example 0 0.15 0.35")
        for rate in self.rates:
            if not isinstance(rate, (int, float)) or math.isnan(rate) or not 0.0 <= rate < 0.9:
                raise ConfigError(f"rate {rate!r} is outside [0, 0.9); pruning rates are fractions such as 0.15")
            if rate > self.max_module_prune:
                raise ConfigError(f"rate {rate} exceeds max_module_prune={self.max_module_prune}; lower the rate or raise the cap")
        if len(set(self.rates)) != len(self.rates):
            raise ConfigError(f"rates {self.rates} contain duplicates")
        self.rates = sorted(float(rate) for rate in self.rates)

    def _validate_positive(self, *keys: str) -> None:
        for key in keys:
            value = getattr(self, key)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{key}={value!r} must be a positive integer")

    def resolved_mlp_step(self, intermediate_size: int) -> int:
        if self.mlp_step is not None:
            return self.mlp_step
        # The largest step that still leaves at least 24 kept sizes to choose from.
        for step in (128, 64, 32, 16):
            if intermediate_size >= 24 * step and intermediate_size % step == 0:
                return step
        return 16
