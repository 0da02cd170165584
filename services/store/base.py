"""The interface every artifact store backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from uniql.artifact.store import parse_digest

CHUNK_SIZE = 1 << 20


class StoreError(Exception):
    """A store operation failed: missing key, invalid key or backend error."""


def blob_key(digest: str) -> str:
    """Return the store key of a registry blob; raises ArtifactError for anything but ``sha256:<hex>``."""
    return f"blobs/sha256/{parse_digest(digest)}"


def check_key(key: str) -> str:
    """Reject keys that could leave the store root (absolute, empty parts, ``..``)."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in key:
        raise StoreError(f"invalid store key {key!r}: use a relative path without '.', '..' or empty parts")
    return key


class ArtifactStore(Protocol):
    """Blob and file storage shared by the API and the workers."""

    def put_file(self, key: str, source: Path) -> None:
        """Store ``source`` under ``key`` atomically: readers see the old object or the whole new one."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def size(self, key: str) -> int | None:
        """Return the size in bytes of ``key``, or None when it does not exist."""

    def iter_range(self, key: str, start: int, stop: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the bytes ``[start, stop)`` of ``key`` in chunks."""

    def read_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, target: Path) -> None:
        """Copy ``key`` to the local file ``target`` (written through a temporary file)."""

    def local_path(self, key: str) -> Path | None:
        """Return a local file holding ``key`` when the backend has one (no copy needed), else None."""

    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Yield ``(key, size)`` of every object under ``prefix``."""

    def open_workdir(self, job_id: str) -> Path:
        """Return a local work directory for a job with its latest checkpoint restored."""

    def save_workdir(self, job_id: str, workdir: Path) -> None:
        """Store the work directory's checkpoint so another worker can resume from it."""
