"""Uploads of source models: size limits and archives that try to escape their folder."""

from __future__ import annotations

import io
import tarfile

import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from services.archive import ArchiveError, check_archive, extract_archive
from tests.services.archives import archive_with_member, member, model_archive
from tests.services.fixtures import auth

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings):
    settings.max_upload_bytes = 50_000
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def token(make_token):
    return make_token(["submit"])


def upload(client, token, data, name="tiny"):
    return client.post(f"/v1/source-models?name={name}", content=data, headers=auth(token))


@pytest.mark.parametrize("prefix", ["", "./", "model/"])
def test_upload_accepts_model_archive(client, token, settings, prefix):
    response = upload(client, token, model_archive(prefix))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["digest"].startswith("sha256:")
    assert body["file_count"] == 1
    assert (settings.local_store_path / "sources" / f"{body['id']}.tar").is_file()


def test_same_archive_twice_returns_existing(client, token):
    data = model_archive()
    first = upload(client, token, data)
    second = upload(client, token, data)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_upload_over_content_length_limit_is_413(client, token):
    response = upload(client, token, b"\0" * 60_000)
    assert response.status_code == 413
    assert "larger than the limit of 50000 bytes" in response.json()["detail"]


def test_streamed_upload_over_limit_is_413(client, token):
    def chunks():
        for _ in range(10):
            yield b"\0" * 10_000

    response = client.post("/v1/source-models?name=big", content=chunks(), headers=auth(token))
    assert response.status_code == 413
    assert "UNIQL_MAX_UPLOAD_BYTES" in response.json()["detail"]


@pytest.mark.parametrize(("crafted", "message"), [
    (member("../evil.py"), "contains '..'"),
    (member("sub/../../evil.py"), "contains '..'"),
    (member("/etc/cron.d/evil"), "absolute path"),
    (member("link", tarfile.SYMTYPE, "/etc/passwd"), "outside the archive"),
    (member("link", tarfile.SYMTYPE, "../../etc"), "outside the archive"),
    (member("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    (member("dev", tarfile.CHRTYPE), "device"),
    (member("fifo", tarfile.FIFOTYPE), "device, FIFO"),
])
def test_unsafe_archive_member_is_400(client, token, settings, crafted, message):
    response = upload(client, token, archive_with_member(crafted, b"x"))
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert list(settings.local_store_path.glob("sources/*")) == []


def test_member_below_symlink_is_rejected(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(archive_with_member(member("inner", tarfile.SYMTYPE, "sub")))
    with tarfile.open(path, "a") as archive:
        archive.addfile(member("inner/file"))
    with pytest.raises(ArchiveError, match="below the symbolic link"):
        check_archive(path, 10**6, 100)


def test_internal_symlink_is_accepted_and_unpacked(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(archive_with_member(member("alias.json", tarfile.SYMTYPE, "config.json")))
    summary = check_archive(path, 10**6, 100)
    assert summary.root == ""
    extract_archive(path, tmp_path / "out")
    assert (tmp_path / "out" / "alias.json").read_text() == (tmp_path / "out" / "config.json").read_text()


def test_not_a_tar_is_400(client, token):
    response = upload(client, token, b"this is not an archive at all")
    assert response.status_code == 400
    assert "not a valid tar" in response.json()["detail"]


def test_archive_without_config_is_400(client, token):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(member("model/weights.bin", tarfile.REGTYPE), io.BytesIO(b""))
    response = upload(client, token, buffer.getvalue())
    assert response.status_code == 400
    assert "no config.json" in response.json()["detail"]


def test_unpacked_size_limit(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(model_archive(extra={"weights.bin": b"\0" * 5000}, compress=True))
    with pytest.raises(ArchiveError, match="unpacks to more than 1000 bytes"):
        check_archive(path, 1000, 100)
    with pytest.raises(ArchiveError, match="more than 1 members"):
        check_archive(path, 10**6, 1)
