"""Uploaded source models: receiving the archive stream, checking it, and unpacking it for workers."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from services.archive import (
    ArchiveError,
    ArchiveSummary,
    check_archive,
    extract_archive,
)
from services.errors import BadRequestError, PayloadTooLargeError
from services.store import ArtifactStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedUpload:
    path: Path
    digest: str
    size_bytes: int


def source_key(source_id: str) -> str:
    return f"sources/{source_id}.tar"


async def receive_upload(chunks: AsyncIterator[bytes], spool_dir: Path, max_bytes: int) -> ReceivedUpload:
    """Write the request body to a temporary file, hashing it and stopping at ``max_bytes``."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=spool_dir, prefix="upload-", suffix=".tar")
    path = Path(name)
    hasher = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as stream:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLargeError(
                        f"upload is larger than the limit of {max_bytes} bytes; "
                        "remove files the model does not need or raise UNIQL_MAX_UPLOAD_BYTES"
                    )
                hasher.update(chunk)
                stream.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ReceivedUpload(path=path, digest=f"sha256:{hasher.hexdigest()}", size_bytes=size)


def check_and_store(
    store: ArtifactStore, upload: ReceivedUpload, source_id: str, max_unpacked_bytes: int, max_members: int
) -> ArchiveSummary:
    """Check the spooled archive and move it into the store; the spool file is removed either way."""
    try:
        summary = check_archive(upload.path, max_unpacked_bytes, max_members)
        store.put_file(source_key(source_id), upload.path)
    except ArchiveError as error:
        raise BadRequestError(str(error)) from error
    finally:
        upload.path.unlink(missing_ok=True)
    logger.info(
        "stored source model %s: %d files, %d bytes packed, %d unpacked",
        source_id, summary.file_count, upload.size_bytes, summary.unpacked_bytes,
    )
    return summary


def materialize_source(store: ArtifactStore, source_id: str, root: str, cache_root: Path) -> Path:
    """Return a local, unpacked copy of a source model's directory, unpacking it on first use.

    Several processes may call this at once: each unpacks into its own temporary folder and the
    first rename wins.
    """
    target = cache_root / "sources" / source_id
    model_dir = target / "tree" / root if root else target / "tree"
    if (target / ".complete").is_file():
        return model_dir

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{source_id}-"))
    try:
        archive = store.local_path(source_key(source_id))
        if archive is None:
            archive = scratch / "model.tar"
            store.download(source_key(source_id), archive)
        extract_archive(archive, scratch / "tree")
        (scratch / "model.tar").unlink(missing_ok=True)
        (scratch / ".complete").touch()
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("unpacked source model %s into %s", source_id, target)
    return model_dir
