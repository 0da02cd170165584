"""A stand-in for ``uniql.pipeline`` with the same contract, for the worker fault tests.

Each stage reports progress and logs a line, writes ``<stage>.done`` and appends "start" and
"finish" lines to ``$UNIQL_FAKE_PIPELINE_DIR/runs.log``, so a test can count how often each
stage ran. Control files in that folder steer it:
- ``hold-<stage>``: the stage waits (checking ``should_cancel``) until the file is removed;
- ``fail-<stage>``: the stage raises RuntimeError (an unexpected error, retried);
- ``reject-<stage>``: the stage raises ConfigError (bad input, not retried).
The ``package`` stage writes a random artifact to ``workdir/artifact``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uniql.errors import ConfigError

logger = logging.getLogger("uniql.fake_pipeline")

STAGES = ("calibrate", "sort", "allocate", "finetune", "quantize", "package", "evaluate")
ARTIFACT_DIR = "artifact"


class Cancelled(Exception):
    pass


@dataclass
class ProgressEvent:
    stage: str
    fraction: float
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompressConfig:
    values: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CompressConfig:
        data = dict(data or {})
        if "bogus" in data:
            raise ConfigError("unknown config keys ['bogus']")
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


def validate_model_dir(model_dir: Path, config: CompressConfig) -> None:
    if not (Path(model_dir) / "config.json").is_file():
        raise ConfigError(f"{model_dir} has no config.json")


def _control() -> Path:
    return Path(os.environ["UNIQL_FAKE_PIPELINE_DIR"])


def _record(line: str) -> None:
    with open(_control() / "runs.log", "a") as stream:
        stream.write(f"{line} {os.getpid()}\n")


def run_stage(stage: str, model_dir: Path, workdir: Path, config: CompressConfig,
              progress: Callable[[ProgressEvent], None] | None = None,
              should_cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    workdir = Path(workdir)
    marker = workdir / f"{stage}.done"
    if marker.exists():
        _record(f"noop {stage}")
        return json.loads(marker.read_text())
    _record(f"start {stage}")
    report = progress or (lambda event: None)
    cancelled = should_cancel or (lambda: False)

    for step in range(4):
        if cancelled():
            raise Cancelled(f"job cancelled during stage {stage}")
        report(ProgressEvent(stage, step / 4, f"{stage} step {step}", {"step": step}))
        time.sleep(0.01)
    while (_control() / f"hold-{stage}").exists():
        if cancelled():
            raise Cancelled(f"job cancelled during stage {stage}")
        report(ProgressEvent(stage, 0.9, f"{stage} held"))
        time.sleep(0.05)
    if (_control() / f"fail-{stage}").exists():
        raise RuntimeError(f"simulated crash in {stage}")
    if (_control() / f"reject-{stage}").exists():
        raise ConfigError(f"simulated bad input in {stage}")

    if stage == "package":
        from tests.services.artifact_factory import make_random_artifact

        make_random_artifact(workdir / ARTIFACT_DIR, seed=len(str(workdir)))
    logger.info("fake %s finished", stage)
    metrics = {"stage": stage, "loss": 0.5}
    marker.write_text(json.dumps(metrics))
    _record(f"finish {stage}")
    return metrics
