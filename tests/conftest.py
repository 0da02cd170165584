"""Shared fixtures: tiny random models and artifacts, built once per session."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(max(1, os.cpu_count() or 1))

FAMILIES = [("llama", False), ("llama", True), ("llama-mha", True), ("qwen2", False)]


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    """Model directories keyed by ``(family, tied)``."""
    from tests.helpers.tiny_models import make_tiny_model_dir

    root = tmp_path_factory.mktemp("tiny-models")
    return {key: make_tiny_model_dir(root / f"{key[0]}-{key[1]}", key[0], key[1]) for key in FAMILIES}


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """Artifact directories keyed by ``(family, tied)``."""
    from tests.helpers.tiny_artifacts import make_tiny_artifact

    root = tmp_path_factory.mktemp("tiny-artifacts")
    return {key: make_tiny_artifact(root / f"{key[0]}-{key[1]}", key[0], key[1]) for key in FAMILIES}
