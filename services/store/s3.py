"""Artifact store on an S3-compatible object store (AWS S3, MinIO, Ceph, moto).

Credentials come from the usual boto3 chain (``AWS_ACCESS_KEY_ID`` and so on). Job work
directories are local copies under the cache path, uploaded after every stage.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from services.store.base import CHUNK_SIZE, StoreError, check_key

logger = logging.getLogger(__name__)

SYNC_INDEX = ".uniql-sync.json"


class S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, region: str, cache_root: Path):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_root = Path(cache_root)
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, object_name: str) -> str:
        return object_name[len(self.prefix) + 1:] if self.prefix else object_name

    def put_file(self, key: str, source: Path) -> None:
        # S3 makes a completed PUT (or multipart upload) visible at once, so readers never see half.
        self.client.upload_file(str(source), self.bucket, self._object(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"S3 HEAD of {key} in bucket {self.bucket} failed: {error}") from error
        return int(head["ContentLength"])

    def iter_range(self, key: str, start: int, stop: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if stop <= start:
            return
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._object(key), Range=f"bytes={start}-{stop - 1}"
            )
        except ClientError as error:
            raise StoreError(f"S3 GET of {key} in bucket {self.bucket} failed: {error}") from error
        body = response["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def read_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as error:
            raise StoreError(f"S3 GET of {key} in bucket {self.bucket} failed: {error}") from error
        return response["Body"].read()

    def download(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            self.client.download_file(self.bucket, self._object(key), str(temporary))
        except ClientError as error:
            temporary.unlink(missing_ok=True)
            raise StoreError(f"S3 download of {key} from bucket {self.bucket} failed: {error}") from error
        os.replace(temporary, target)

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._object(prefix.rstrip("/")) + "/"):
            for item in page.get("Contents", []):
                yield self._key(item["Key"]), int(item["Size"])

    def open_workdir(self, job_id: str) -> Path:
        """Download the job's checkpoint files that the local copy lacks or has in another version."""
        workdir = self.cache_root / "jobs" / job_id / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        index = _read_index(workdir)
        remote_prefix = f"jobs/{job_id}/work"
        downloaded = 0
        for key, size in self.list_keys(remote_prefix):
            relative = key[len(remote_prefix) + 1:]
            local = workdir / relative
            if local.is_file() and local.stat().st_size == size and relative in index:
                continue
            self.download(key, local)
            index[relative] = _signature(local)
            downloaded += 1
        _write_index(workdir, index)
        logger.info("restored job %s work directory from s3://%s: %d files", job_id, self.bucket, downloaded)
        return workdir

    def save_workdir(self, job_id: str, workdir: Path) -> None:
        """Upload the files that changed since the last upload (by size and modification time)."""
        index = _read_index(workdir)
        uploaded = 0
        for path in sorted(workdir.rglob("*")):
            if not path.is_file() or path.name == SYNC_INDEX or path.name.endswith(".tmp"):
                continue
            relative = path.relative_to(workdir).as_posix()
            signature = _signature(path)
            if index.get(relative) == signature:
                continue
            self.put_file(f"jobs/{job_id}/work/{relative}", path)
            index[relative] = signature
            uploaded += 1
        _write_index(workdir, index)
        logger.info("saved job %s work directory to s3://%s: %d files uploaded", job_id, self.bucket, uploaded)

    def clear_cache(self, job_id: str) -> None:
        shutil.rmtree(self.cache_root / "jobs" / job_id, ignore_errors=True)


def _signature(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_index(workdir: Path) -> dict[str, list[int]]:
    try:
        return json.loads((workdir / SYNC_INDEX).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_index(workdir: Path, index: dict[str, list[int]]) -> None:
    temporary = workdir / f"{SYNC_INDEX}.tmp"
    temporary.write_text(json.dumps(index))
    os.replace(temporary, workdir / SYNC_INDEX)
