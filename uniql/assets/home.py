"""Location of the local asset cache (converted models and prepared texts)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "UNIQL_HOME"
DEFAULT_HOME = Path("~/.cache/uniql")


def uniql_home(home: Path | str | None = None) -> Path:
    """Resolve the cache directory: ``home`` if given, else ``$UNIQL_HOME``, else ``~/.cache/uniql``."""
    if home is None:
        home = os.environ.get(HOME_VARIABLE) or DEFAULT_HOME
    return Path(home).expanduser().resolve()


def models_dir(home: Path | str | None = None) -> Path:
    """Return the directory that contains one converted Hugging Face directory per model."""
    return uniql_home(home) / "models"


def data_dir(home: Path | str | None = None) -> Path:
    """Return the directory that contains the prepared text corpora."""
    return uniql_home(home) / "data"
