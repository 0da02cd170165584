"""The edge puller against a live registry: bytes per rate, resume, digest checks, atomic install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from edge_runtime.pull import DigestMismatchError, PullError, Reference, pull
from edge_runtime.pull_cli import pull_command
from services.app import create_app
from services.registry import publish_artifact
from services.store import blob_key, create_store
from services.tokens import get_or_create_namespace
from tests.services.artifact_factory import make_random_artifact
from tests.services.fixtures import (  # noqa: F401
    LiveServer,
    database_url,
    make_token,
    postgres_url,
    session_factory,
    settings,
)
from uniql.errors import ArtifactError

pytestmark = pytest.mark.integration

BAND_BYTES = (400_000, 300_000, 200_000, 100_000)  # bands of rates 0.3, 0.2, 0.1, 0.0


class RequestLog:
    """ASGI middleware that records method, path, Range header, status and body bytes of each request."""

    def __init__(self, app):
        self.app = app
        self.entries: list[dict] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        entry = {"method": scope["method"], "path": scope["path"], "range": headers.get(b"range", b"").decode(),
                 "status": None, "bytes": 0}
        self.entries.append(entry)

        async def counting_send(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            elif message["type"] == "http.response.body":
                entry["bytes"] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting_send)

    def blob_gets(self, digest: str) -> list[dict]:
        return [entry for entry in self.entries if entry["method"] == "GET" and entry["path"].endswith(digest)]


class SimulatedCrash(Exception):
    """Stands for the device losing power in the middle of a download."""


class CrashingTransport(httpx.HTTPTransport):
    """Let ``limit`` bytes of blob data through, then raise SimulatedCrash."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.count = 0

    def handle_request(self, request):
        response = super().handle_request(request)
        if "/blobs/" not in request.url.path:
            return response
        transport, stream = self, response.stream

        class Cut(httpx.SyncByteStream):
            def __iter__(self):
                for chunk in stream:
                    room = transport.limit - transport.count
                    if len(chunk) >= room:
                        transport.count += room
                        yield chunk[:room]
                        raise SimulatedCrash()
                    transport.count += len(chunk)
                    yield chunk

            def close(self):
                stream.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut(),
                              extensions=response.extensions)


@pytest.fixture
def registry(settings, session_factory, tmp_path):
    """A live API with one published random artifact at acme/tiny:v1."""
    manifest = make_random_artifact(tmp_path / "artifact", band_bytes=BAND_BYTES)
    with session_factory() as session:
        namespace_id = get_or_create_namespace(session, "acme").id
        publish_artifact(session, create_store(settings), tmp_path / "artifact", namespace_id, "tiny", "v1", None)
        session.commit()
    log = RequestLog(create_app(settings))
    with LiveServer(log) as server:
        server.log = log
        server.manifest = manifest
        server.manifest_size = len((tmp_path / "artifact" / "manifest.json").read_bytes())
        server.reference = f"127.0.0.1:{server.port}/acme/tiny:v1"
        yield server


@pytest.fixture
def token(make_token):
    return make_token(["pull"])


def rate_bytes(manifest: dict, rate: float) -> int:
    return next(entry["bytes"] for entry in manifest["rate_table"] if entry["rate"] == rate)


def blob_path(dest: Path, digest: str) -> Path:
    return dest / "blobs" / "sha256" / digest.split(":")[1]


def test_pull_transfers_exactly_the_rate_bytes(registry, token, tmp_path):
    dest = tmp_path / "device"
    first = pull(registry.reference, 0.3, dest, token=token)
    assert first.bands == [0]
    assert first.bytes_downloaded == rate_bytes(registry.manifest, 0.3) + registry.manifest_size
    assert sum(entry["bytes"] for entry in registry.log.entries) == first.bytes_downloaded
    assert (dest / "manifest.json").stat().st_size == registry.manifest_size

    second = pull(registry.reference, 0.1, dest, token=token)
    assert second.bands == [0, 1, 2]
    extra = rate_bytes(registry.manifest, 0.1) - rate_bytes(registry.manifest, 0.3)
    assert second.bytes_downloaded == extra + registry.manifest_size
    assert len(second.blobs_reused) == 2  # band 0 and the tokenizer
    band3 = registry.manifest["bands"][3]["digest"]
    assert not blob_path(dest, band3).exists()
    assert registry.log.blob_gets(registry.manifest["bands"][0]["digest"]).__len__() == 1


def test_interrupted_pull_resumes_without_refetching(registry, token, tmp_path):
    dest = tmp_path / "device"
    bands = registry.manifest["bands"]
    band0_size = bands[0]["size"]
    cut_at = band0_size + 150_000
    crashing = httpx.Client(transport=CrashingTransport(cut_at))
    with pytest.raises(SimulatedCrash):
        pull(registry.reference, 0.0, dest, token=token, client=crashing)
    assert blob_path(dest, bands[0]["digest"]).is_file()
    partial = blob_path(dest, bands[1]["digest"]).with_name(bands[1]["digest"].split(":")[1] + ".partial")
    assert partial.stat().st_size == 150_000
    assert not (dest / "manifest.json").exists()

    result = pull(registry.reference, 0.0, dest, token=token)
    assert result.blobs_reused == [bands[0]["digest"]]
    assert len(registry.log.blob_gets(bands[0]["digest"])) == 1
    band1_gets = registry.log.blob_gets(bands[1]["digest"])
    assert [entry["range"] for entry in band1_gets] == ["", "bytes=150000-"]
    assert band1_gets[1]["status"] == 206
    assert cut_at + result.bytes_downloaded == rate_bytes(registry.manifest, 0.0) + registry.manifest_size
    assert (dest / "manifest.json").is_file()


def test_corrupted_blob_is_rejected_and_install_kept(registry, token, tmp_path, settings):
    dest = tmp_path / "device"
    pull(registry.reference, 0.3, dest, token=token)
    installed = (dest / "manifest.json").read_bytes()
    band1 = registry.manifest["bands"][1]
    stored = settings.local_store_path / blob_key(band1["digest"])
    stored.write_bytes(b"\0" * stored.stat().st_size)

    with pytest.raises(DigestMismatchError, match="was rejected"):
        pull(registry.reference, 0.2, dest, token=token)
    assert (dest / "manifest.json").read_bytes() == installed
    assert not blob_path(dest, band1["digest"]).exists()
    assert list((dest / "blobs" / "sha256").glob("*.partial")) == []
    assert pull(registry.reference, 0.3, dest, token=token).blobs_downloaded == []


def test_corrupted_local_blob_is_downloaded_again(registry, token, tmp_path):
    dest = tmp_path / "device"
    pull(registry.reference, 0.3, dest, token=token)
    band0 = blob_path(dest, registry.manifest["bands"][0]["digest"])
    band0.write_bytes(b"x" * band0.stat().st_size)
    result = pull(registry.reference, 0.3, dest, token=token)
    assert result.blobs_downloaded == [registry.manifest["bands"][0]["digest"]]


def test_unknown_rate_installs_nothing(registry, token, tmp_path):
    with pytest.raises(ArtifactError, match="supported rates: 0, 0.1, 0.2, 0.3"):
        pull(registry.reference, 0.25, tmp_path / "device", token=token)
    assert not (tmp_path / "device" / "manifest.json").exists()


@pytest.mark.parametrize(("token_value", "reference_suffix", "message"), [
    (None, "acme/tiny:v1", "failed with status 401"),
    ("uq_wrong", "acme/tiny:v1", "failed with status 401"),
    ("pull", "acme/tiny:v9", "failed with status 404"),
    ("pull", "other/tiny:v1", "failed with status 404"),
])
def test_registry_errors_are_clear(registry, make_token, tmp_path, token_value, reference_suffix, message):
    token = make_token(["pull"]) if token_value == "pull" else token_value
    with pytest.raises(PullError, match=message):
        pull(f"127.0.0.1:{registry.port}/{reference_suffix}", 0.3, tmp_path / "device", token=token)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8000/acme/tiny:v1", ("http://127.0.0.1:8000", "acme", "tiny", "v1")),
    ("registry.example.com/acme/tiny", ("https://registry.example.com", "acme", "tiny", "latest")),
    ("http://h:1/a/b@sha256:" + "0" * 64, ("http://h:1", "a", "b", "sha256:" + "0" * 64)),
])
def test_reference_parsing(text, expected):
    parsed = Reference.parse(text)
    assert (parsed.base_url, parsed.namespace, parsed.model, parsed.reference) == expected


@pytest.mark.parametrize("text", ["acme/tiny:v1", "ftp://h/a/b:c", "h/a/b@sha256:../../x", "h//b:c"])
def test_invalid_reference_is_rejected(text):
    with pytest.raises(ArtifactError, match="invalid"):
        Reference.parse(text)


def test_cli_pull_prints_json(registry, token, tmp_path):
    result = CliRunner().invoke(pull_command, [registry.reference, "--rate", "0.3", "--dest", str(tmp_path / "d"),
                                               "--json"], env={"UNIQL_TOKEN": token})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["bands"] == [0]


def test_puller_does_not_import_torch():
    code = "import sys, edge_runtime.pull, edge_runtime.pull_cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0
