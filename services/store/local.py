"""Artifact store on a local (or network-mounted) filesystem."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from services.store.base import CHUNK_SIZE, StoreError, check_key
from uniql.artifact.store import write_atomic


class LocalStore:
    """Objects are files under ``root``; job work directories live in the store itself."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")[1])
        try:
            temporary.unlink()
            try:
                # Stored objects are immutable, so sharing the inode with the source is safe and fast.
                os.link(source, temporary)
            except OSError:
                shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def iter_range(self, key: str, start: int, stop: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            stream = open(self._path(key), "rb")
        except FileNotFoundError as error:
            raise StoreError(f"object {key} not found in {self.root}") from error
        with stream:
            stream.seek(start)
            remaining = stop - start
            while remaining > 0:
                chunk = stream.read(min(chunk_size, remaining))
                if not chunk:
                    raise StoreError(f"object {key} ended at byte {stop - remaining}, before byte {stop}")
                remaining -= len(chunk)
                yield chunk

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as error:
            raise StoreError(f"object {key} not found in {self.root}") from error

    def download(self, key: str, target: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise StoreError(f"object {key} not found in {self.root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                yield path.relative_to(self.root).as_posix(), path.stat().st_size

    def open_workdir(self, job_id: str) -> Path:
        workdir = self._path(f"jobs/{job_id}/work")
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def save_workdir(self, job_id: str, workdir: Path) -> None:
        """Nothing to copy: the pipeline wrote its checkpoint into the store atomically."""
