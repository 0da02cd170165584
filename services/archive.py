"""Checking and unpacking uploaded model archives (tar, tar.gz) without trusting their contents.

An archive is accepted only when every member is a regular file, a folder, or a link that stays
inside the tree. Names must be relative and without ``..``. The total unpacked size and the member
count must stay under the configured limits.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from uniql.errors import UniqlError

logger = logging.getLogger(__name__)

CREATE_HINT = "create the archive with: tar -czf model.tar.gz -C MODEL_DIR ."


class ArchiveError(UniqlError):
    """An uploaded archive is malformed, unsafe or too large."""


@dataclass(frozen=True)
class ArchiveSummary:
    file_count: int
    unpacked_bytes: int
    root: str  # folder inside the archive that contains config.json ("" for the top level)


def check_archive(path: Path, max_unpacked_bytes: int, max_members: int) -> ArchiveSummary:
    """Validate every member of the archive at ``path``; raises ArchiveError naming the first bad member."""
    names: set[str] = set()
    symlinks: set[str] = set()
    file_count = 0
    unpacked_bytes = 0
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for count, member in enumerate(archive, start=1):
                if count > max_members:
                    raise ArchiveError(f"archive has more than {max_members} members; upload only the model files")
                name = _check_name(member.name)
                _check_not_below_symlink(name, symlinks)
                _check_type(member, name, names)
                if member.issym():
                    symlinks.add(name)
                if member.isreg():
                    file_count += 1
                    unpacked_bytes += member.size
                    if unpacked_bytes > max_unpacked_bytes:
                        raise ArchiveError(
                            f"archive unpacks to more than {max_unpacked_bytes} bytes (limit); "
                            "upload a smaller model or raise UNIQL_MAX_UNPACKED_BYTES"
                        )
                names.add(name)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveError(f"upload is not a valid tar or tar.gz archive ({error}); {CREATE_HINT}") from error
    return ArchiveSummary(file_count=file_count, unpacked_bytes=unpacked_bytes, root=_model_root(names))


def extract_archive(path: Path, target: Path) -> None:
    """Unpack a checked archive into the new folder ``target``.

    The stdlib ``data`` filter repeats the safety checks against the real file system, so a
    member that slipped past ``check_archive`` still cannot write outside ``target``.
    """
    target.mkdir(parents=True, exist_ok=False)
    try:
        with tarfile.open(path, mode="r:*") as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as error:
        shutil.rmtree(target, ignore_errors=True)
        raise ArchiveError(f"unpacking {path.name} failed: {error}; {CREATE_HINT}") from error


def _check_name(raw: str) -> str:
    if raw.startswith("/") or "\\" in raw or (len(raw) > 1 and raw[1] == ":"):
        raise ArchiveError(f"archive member {raw!r} has an absolute path; {CREATE_HINT}")
    name = posixpath.normpath(raw)
    parts = raw.split("/")
    if ".." in parts or name.startswith(".."):
        raise ArchiveError(f"archive member {raw!r} contains '..'; {CREATE_HINT}")
    if "\x00" in raw:
        raise ArchiveError(f"archive member {raw!r} contains a NUL byte")
    return name


def _check_not_below_symlink(name: str, symlinks: set[str]) -> None:
    parent = posixpath.dirname(name)
    while parent and parent != ".":
        if parent in symlinks:
            raise ArchiveError(f"archive member {name!r} lies below the symbolic link {parent!r}; {CREATE_HINT}")
        parent = posixpath.dirname(parent)


def _check_type(member: tarfile.TarInfo, name: str, names: set[str]) -> None:
    if member.isreg() or member.isdir():
        return
    if member.issym():
        target = member.linkname
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise ArchiveError(f"archive member {name!r} links to {target!r}, outside the archive; {CREATE_HINT}")
        return
    if member.islnk():
        target = posixpath.normpath(member.linkname)
        if target not in names:
            raise ArchiveError(
                f"archive member {name!r} is a hard link to {member.linkname!r}, which is not an earlier member"
            )
        return
    raise ArchiveError(
        f"archive member {name!r} is a device, FIFO or other special file; only files, folders and links are allowed"
    )


def _model_root(names: set[str]) -> str:
    """Find the folder holding config.json: the top level, or the archive's single top-level folder."""
    if "config.json" in names:
        return ""
    top_level = {name.split("/")[0] for name in names if name != "."}
    if len(top_level) == 1:
        (folder,) = top_level
        if f"{folder}/config.json" in names:
            return folder
    raise ArchiveError(
        "archive has no config.json at its top level or in its single top-level folder; "
        f"upload a Hugging Face model directory ({CREATE_HINT})"
    )
