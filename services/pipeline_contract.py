"""The API's view of the compression pipeline: config validation and the stage names.

``uniql.pipeline`` is imported on first use, because it loads torch; the API needs only
``CompressConfig``, ``STAGES`` and ``validate_model_dir`` from it and never runs a stage.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from services.errors import UnavailableError, UnprocessableError
from uniql.errors import UniqlError

logger = logging.getLogger(__name__)

PIPELINE_MODULE = "uniql.pipeline"
DEFAULT_FINETUNE = {"enabled": True}


def load_pipeline() -> ModuleType:
    try:
        return importlib.import_module(PIPELINE_MODULE)
    except ModuleNotFoundError as error:
        logger.error("cannot import %s: %s", PIPELINE_MODULE, error)
        raise UnavailableError(
            f"the compression pipeline is not installed on the API server ({error}); install 'uniql[cloud]'"
        ) from error


def validate_config(config: dict[str, Any], allow_text_paths: bool) -> Any:
    """Build the pipeline's ``CompressConfig`` from a job's config dict (HTTP 422 when invalid).

    Service jobs fine-tune by default (``uniql compress`` does not); send
    ``"finetune": {"enabled": false}`` to skip it.
    """
    pipeline = load_pipeline()
    config = dict(config)
    config.setdefault("finetune", dict(DEFAULT_FINETUNE))
    try:
        compress_config = pipeline.CompressConfig.from_dict(config)
    except (UniqlError, TypeError, ValueError) as error:
        raise UnprocessableError(f"invalid pipeline config: {error}") from error
    if not allow_text_paths:
        _check_text_names(compress_config)
    return compress_config


def _check_text_names(compress_config: Any) -> None:
    """Reject text settings that name files: a tenant must not make a worker read its host's files."""
    texts = {"calibration_text": getattr(compress_config, "calibration_text", None)}
    for name, value in (getattr(compress_config, "eval_texts", None) or {}).items():
        texts[f"eval_texts.{name}"] = value
    for key, value in texts.items():
        if isinstance(value, str) and ("/" in value or "\\" in value or "." in value):
            raise UnprocessableError(
                f"invalid pipeline config: {key}={value!r} names a file; use a prepared corpus name such as "
                "'calibration', 'wiki' or 'books' (file paths need UNIQL_ALLOW_TEXT_PATHS=1 on the server)"
            )


def validate_model(model_dir: Path, compress_config: Any) -> None:
    """Check that the pipeline supports the model before any work is queued (HTTP 422 when not)."""
    pipeline = load_pipeline()
    try:
        pipeline.validate_model_dir(model_dir, compress_config)
    except UniqlError as error:
        raise UnprocessableError(f"unsupported source model: {error}") from error


def stage_names() -> tuple[str, ...]:
    return tuple(load_pipeline().STAGES)
