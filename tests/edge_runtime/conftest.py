"""Tiny real artifacts shared by the edge runtime tests (built once per session, about 2 s each)."""

from __future__ import annotations

import pytest

FAMILIES = [("llama", False), ("llama-mha", False), ("qwen2", False), ("llama", True)]


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """Map ``(family, tied)`` to a lazily built artifact directory."""
    from tests.helpers.tiny_artifacts import make_tiny_artifact

    built = {}

    def get(family: str = "llama", tied: bool = False):
        key = (family, tied)
        if key not in built:
            built[key] = make_tiny_artifact(tmp_path_factory.mktemp(f"{family}-{tied}"), family, tied=tied)
        return built[key]

    return get
