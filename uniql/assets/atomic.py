"""Atomic writes for the asset cache, so a killed process never leaves a half-written asset.

Files and directories are built under a temporary name in the same parent directory and then
renamed into place, because a rename within one file system is atomic on POSIX.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_PARTIAL_PATTERN = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)-")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.partial-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def make_partial_dir(final: Path) -> Path:
    """Create an empty temporary directory beside ``final`` whose name carries this process id."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-{os.getpid()}-", dir=final.parent))


def publish_dir(partial: Path, final: Path) -> bool:
    """Make ``partial`` readable by all users and rename it to ``final``.

    Returns False, and deletes ``partial``, when another process published ``final`` first.
    The caller must delete an incomplete ``final`` (one without its completion marker) first.
    """
    # mkdtemp creates the directory with mode 0700, and some writers create files with 0600.
    os.chmod(partial, 0o755)
    for entry in partial.iterdir():
        if entry.is_file():
            os.chmod(entry, 0o644)
    try:
        os.rename(partial, final)
    except OSError:
        if not final.is_dir():
            raise
        logger.info("%s was published by another process, so %s is discarded", final, partial.name)
        shutil.rmtree(partial, ignore_errors=True)
        return False
    return True


def remove_stale_partials(parent: Path, name: str) -> None:
    """Delete temporary files and directories for ``name`` whose writing process has exited."""
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        match = _PARTIAL_PATTERN.match(entry.name)
        if match is None or match["name"] != name or _process_alive(int(match["pid"])):
            continue
        logger.info("removing %s, left behind by exited process %s", entry, match["pid"])
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
