"""Content-addressed blob storage on a local directory."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from uniql.errors import ArtifactError

DIGEST_PREFIX = "sha256:"


def digest_bytes(data: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def digest_file(path: Path, chunk_size: int = 1 << 20) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            hasher.update(chunk)
    return DIGEST_PREFIX + hasher.hexdigest()


def parse_digest(digest: str) -> str:
    """Return the hex part of ``sha256:<hex>``, rejecting anything else (paths included)."""
    if not digest.startswith(DIGEST_PREFIX):
        raise ArtifactError(f"invalid digest {digest!r}: expected 'sha256:' followed by 64 hex digits")
    hex_part = digest[len(DIGEST_PREFIX):]
    if len(hex_part) != 64 or any(c not in "0123456789abcdef" for c in hex_part):
        raise ArtifactError(f"invalid digest {digest!r}: expected 'sha256:' followed by 64 hex digits")
    return hex_part


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class BlobStore:
    """Blobs under ``root/blobs/sha256/<hex>``, verified on every read."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / parse_digest(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        digest = digest_bytes(data)
        target = self.path(digest)
        if not target.is_file():
            write_atomic(target, data)
        return digest

    def get(self, digest: str) -> bytes:
        """Read a blob and check its digest before returning it."""
        path = self.path(digest)
        if not path.is_file():
            raise ArtifactError(f"blob {digest} is missing from {self.root}; pull the artifact again")
        data = path.read_bytes()
        actual = digest_bytes(data)
        if actual != digest:
            raise ArtifactError(
                f"blob {digest} in {self.root} is corrupted (its bytes hash to {actual}); "
                "delete it and pull the artifact again"
            )
        return data
