"""Artifact store backends: the local filesystem and S3 (moto's server on loopback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.store import StoreError
from services.store.local import LocalStore
from services.store.s3 import S3Store
from tests.services.fixtures import moto_endpoint  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket = f"uniql-{os.urandom(4).hex()}"
    s3 = S3Store(bucket=bucket, prefix="tenant-a", endpoint_url=endpoint, region="us-east-1",
                 cache_root=tmp_path / "cache")
    s3.client.create_bucket(Bucket=bucket)
    return s3


def test_put_read_range_delete(store, tmp_path):
    source = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)
    source.write_bytes(data)
    store.put_file("blobs/sha256/abc", source)
    assert store.size("blobs/sha256/abc") == len(data)
    assert b"".join(store.iter_range("blobs/sha256/abc", 5, len(data) - 3, chunk_size=1 << 20)) == data[5:-3]
    assert store.read_bytes("blobs/sha256/abc") == data
    store.download("blobs/sha256/abc", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == data
    assert list(store.list_keys("blobs")) == [("blobs/sha256/abc", len(data))]
    store.delete("blobs/sha256/abc")
    store.delete("blobs/sha256/abc")
    assert store.size("blobs/sha256/abc") is None


def test_missing_object_raises(store, tmp_path):
    with pytest.raises(StoreError, match="sources/none.tar"):
        store.download("sources/none.tar", tmp_path / "x")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", ""])
def test_invalid_keys_are_rejected(store, key):
    with pytest.raises(StoreError, match="invalid store key"):
        store.put_bytes(key, b"x")


def test_workdir_checkpoint_round_trip(store, tmp_path):
    workdir = store.open_workdir("job1")
    (workdir / "calibrate").mkdir()
    (workdir / "calibrate" / "statistics.pt").write_bytes(b"stats")
    (workdir / "calibrate.done").write_text("{}")
    store.save_workdir("job1", workdir)

    if isinstance(store, S3Store):
        # Another machine: an empty cache restores the checkpoint from the bucket.
        other = S3Store(store.bucket, store.prefix, store.client.meta.endpoint_url, "us-east-1", tmp_path / "cache2")
        restored = other.open_workdir("job1")
        assert (restored / "calibrate" / "statistics.pt").read_bytes() == b"stats"
        assert (restored / "calibrate.done").is_file()
    else:
        assert Path(store.open_workdir("job1"), "calibrate.done").is_file()
