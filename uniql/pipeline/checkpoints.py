"""Stage checkpoints in a job's work directory: written atomically, marked done last."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from uniql.modeling.config import ArchConfig
from uniql.modeling.model import DecoderModel


def done_marker(workdir: Path, stage: str) -> Path:
    return Path(workdir) / f"{stage}.done"


def is_done(workdir: Path, stage: str) -> bool:
    return done_marker(workdir, stage).is_file()


def mark_done(workdir: Path, stage: str, metrics: dict[str, Any]) -> None:
    marker = done_marker(workdir, stage)
    temporary = marker.with_suffix(".tmp")
    temporary.write_text(json.dumps(metrics, indent=1))
    os.replace(temporary, marker)


def read_metrics(workdir: Path, stage: str) -> dict[str, Any]:
    return json.loads(done_marker(workdir, stage).read_text())


def stage_dir(workdir: Path, stage: str) -> Path:
    """Create a fresh directory for a stage's files, removing left-overs of an interrupted run."""
    path = Path(workdir) / stage
    if path.exists() and not is_done(workdir, stage):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_model(model: DecoderModel, path: Path) -> None:
    """Save the weights with safetensors; shared storage (tied embeddings) is cloned first."""
    seen: set[int] = set()
    tensors = {}
    for name, tensor in model.params.items():
        pointer = tensor.data_ptr()
        tensors[name] = tensor.clone().contiguous() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    temporary = path.with_suffix(".tmp")
    save_file(tensors, str(temporary))
    os.replace(temporary, path)


def load_saved_model(config: ArchConfig, path: Path) -> DecoderModel:
    params = load_file(str(path))
    for name in params:
        if name.endswith("rope_pairs"):
            params[name] = params[name].long()
    return DecoderModel(config, params)


def save_torch(value: Any, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(value, temporary)
    os.replace(temporary, path)
