"""Shared state of a running job: paths, config, progress reporting and cancellation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from uniql.pipeline.config import CompressConfig

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """The job was cancelled between two steps; its finished stages stay on disk."""


@dataclass
class ProgressEvent:
    stage: str
    fraction: float
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    stage: str
    model_dir: Path
    workdir: Path
    config: CompressConfig
    progress: Callable[[ProgressEvent], None] | None = None
    should_cancel: Callable[[], bool] | None = None

    def report(self, fraction: float, message: str, **metrics: Any) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(self.stage, min(max(fraction, 0.0), 1.0), message, metrics))

    def check_cancelled(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            logger.info("stage %s cancelled", self.stage)
            raise Cancelled(f"job cancelled during stage {self.stage}")

    def step_reporter(self, message: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback that reports progress and honours cancellation."""

        def report(done: int, total: int) -> None:
            self.report(done / max(total, 1), f"{message} {done}/{total}")
            self.check_cancelled()

        return report

    @property
    def device(self) -> torch.device:
        # NOTE: the CUDA path moves calibration and GPTQ to the GPU but has not run in CI,
        # which has no GPU; sorting and packaging always run on the CPU.
        requested = self.config.device
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        if requested == "cuda" and not torch.cuda.is_available():
            from uniql.errors import ConfigError

            raise ConfigError("device=cuda was requested but no CUDA device is available; use device=auto or cpu")
        return torch.device(requested)
