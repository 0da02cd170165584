"""Daemon settings from a JSON file, ``UNIQL_EDGE_*`` environment variables and CLI flags (in that order)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edge_runtime.policy import PolicySettings
from uniql.errors import ConfigError

ENV_PREFIX = "UNIQL_EDGE_"


@dataclass
class EdgeSettings:
    """Everything ``uniql edge serve`` needs; sizes in MiB, times in seconds."""

    artifact: str = ""
    host: str = "127.0.0.1"
    port: int = 8088
    model_name: str | None = None
    rate: float | None = None          # manual pin; disables the policy
    start_rate: float | None = None    # first rate before the policy runs (default: the highest)
    reserve_mib: float = 256.0
    reserve_fraction: float | None = None  # reserve as a fraction of the available memory at start
    hysteresis_mib: float = 64.0
    min_dwell_seconds: float = 30.0
    context_tokens: int = 2048
    monitor_interval: float = 2.0
    threads: int = 0
    accuracy_level: int = 0            # MatMulNBits compute: 0 float32 (exact), 4 int8 activations (faster decode)

    def policy_settings(self) -> PolicySettings:
        reserve = int(self.reserve_mib * 2**20)
        if self.reserve_fraction is not None:
            import psutil

            reserve = int(self.reserve_fraction * psutil.virtual_memory().available)
        return PolicySettings(reserve_bytes=reserve, hysteresis_bytes=int(self.hysteresis_mib * 2**20),
                              min_dwell_seconds=self.min_dwell_seconds, context_tokens=self.context_tokens,
                              pinned_rate=self.rate)


def _convert(name: str, value: Any) -> Any:
    kinds = {field.name: field.type for field in fields(EdgeSettings)}
    if name not in kinds:
        raise ConfigError(f"unknown edge setting {name!r}; known settings: {', '.join(sorted(kinds))}")
    if value is None or not isinstance(value, str):
        return value
    kind = kinds[name]
    try:
        if "int" in kind:
            return int(value)
        if "float" in kind:
            return float(value)
    except ValueError as error:
        raise ConfigError(f"edge setting {name}={value!r} is not a number ({kind})") from error
    return value


def load_settings(config_file: Path | None = None, flags: dict[str, Any] | None = None) -> EdgeSettings:
    """Merge the config file, the environment and the flags that are set (not None)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values.update(json.loads(Path(config_file).read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read edge config {config_file}: {error}; pass a JSON object file") from error
    for field in fields(EdgeSettings):
        env_value = os.environ.get(ENV_PREFIX + field.name.upper())
        if env_value is not None:
            values[field.name] = env_value
    values.update({key: value for key, value in (flags or {}).items() if value is not None})
    settings = EdgeSettings(**{key: _convert(key, value) for key, value in values.items()})
    if not settings.artifact:
        raise ConfigError("no artifact directory set; pass --artifact DIR or set UNIQL_EDGE_ARTIFACT")
    if settings.accuracy_level not in (0, 4):
        raise ConfigError(f"accuracy_level={settings.accuracy_level} is invalid; use 0 (float32, exact) or 4 (int8 activations)")
    return settings
