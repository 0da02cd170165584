"""Registry over HTTP: manifests, blobs with HEAD, Range and ETag, tags and garbage collection."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from services.db.models import Namespace
from services.registry import publish_artifact
from services.store import blob_key, create_store
from services.tokens import get_or_create_namespace
from tests.services.artifact_factory import make_random_artifact
from tests.services.fixtures import auth

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def pull_token(make_token):
    return make_token(["pull"])


def publish(settings, session_factory, tmp_path, model="tiny", tag="v1", seed=0, namespace="acme"):
    artifact_dir = tmp_path / f"artifact-{model}-{seed}"
    manifest = make_random_artifact(artifact_dir, seed=seed)
    with session_factory() as session:
        namespace_id = get_or_create_namespace(session, namespace).id
        digest = publish_artifact(session, create_store(settings), artifact_dir, namespace_id, model, tag, None)
        session.commit()
    return manifest, digest, artifact_dir


def test_manifest_by_tag_and_digest(client, settings, session_factory, tmp_path, pull_token):
    manifest, digest, artifact_dir = publish(settings, session_factory, tmp_path)
    response = client.get("/v1/namespaces/acme/models/tiny/manifests/v1", headers=auth(pull_token))
    assert response.status_code == 200
    assert response.content == (artifact_dir / "manifest.json").read_bytes()
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Uniql-Content-Digest"] == digest
    by_digest = client.get(f"/v1/namespaces/acme/models/tiny/manifests/{digest}", headers=auth(pull_token))
    assert by_digest.content == response.content
    head = client.head("/v1/namespaces/acme/models/tiny/manifests/v1", headers=auth(pull_token))
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(response.content)
    assert head.content == b""


def test_blob_full_range_head_and_etag(client, settings, session_factory, tmp_path, pull_token):
    manifest, _, artifact_dir = publish(settings, session_factory, tmp_path)
    band = manifest["bands"][0]
    data = (artifact_dir / "blobs" / "sha256" / band["digest"].split(":")[1]).read_bytes()
    url = f"/v1/namespaces/acme/models/tiny/blobs/{band['digest']}"
    headers = auth(pull_token)

    full = client.get(url, headers=headers)
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["ETag"] == f'"{band["digest"]}"'
    assert full.headers["Accept-Ranges"] == "bytes"

    part = client.get(url, headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"

    tail = client.get(url, headers={**headers, "Range": "bytes=-10"})
    assert tail.content == data[-10:]
    open_ended = client.get(url, headers={**headers, "Range": f"bytes={len(data) - 5}-"})
    assert open_ended.content == data[-5:]

    outside = client.get(url, headers={**headers, "Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416
    assert outside.headers["Content-Range"] == f"bytes */{len(data)}"

    stale = client.get(url, headers={**headers, "Range": "bytes=0-9", "If-Range": '"sha256:other"'})
    assert stale.status_code == 200
    assert client.get(url, headers={**headers, "If-None-Match": full.headers["ETag"]}).status_code == 304

    head = client.head(url, headers=headers)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(data)


@pytest.mark.parametrize("digest", ["sha256:..%2F..%2Fetc%2Fpasswd", "sha256:ABC", "md5:" + "0" * 32,
                                    "..", "sha256:" + "0" * 63 + "%2F"])
def test_invalid_digest_is_rejected(client, settings, session_factory, tmp_path, pull_token, digest):
    publish(settings, session_factory, tmp_path)
    response = client.get(f"/v1/namespaces/acme/models/tiny/blobs/{digest}", headers=auth(pull_token))
    assert response.status_code in (404, 422)


def test_blob_of_other_model_is_404(client, settings, session_factory, tmp_path, pull_token):
    first, _, _ = publish(settings, session_factory, tmp_path, model="one", seed=1)
    publish(settings, session_factory, tmp_path, model="two", seed=2)
    response = client.get(f"/v1/namespaces/acme/models/two/blobs/{first['bands'][0]['digest']}",
                          headers=auth(pull_token))
    assert response.status_code == 404
    assert "not found in model 'two'" in response.json()["detail"]


def test_tags_delete_and_garbage_collection(client, settings, session_factory, tmp_path, make_token):
    manifest, digest, _ = publish(settings, session_factory, tmp_path, model="tiny", tag="v1", seed=1)
    publish(settings, session_factory, tmp_path, model="tiny", tag="v2", seed=2)
    admin = make_token(["admin"], "acme")
    root = make_token(["admin"], None)
    tags = client.get("/v1/namespaces/acme/models/tiny/tags", headers=auth(admin)).json()["items"]
    assert [tag["name"] for tag in tags] == ["v1", "v2"]
    assert tags[0]["digest"] == digest

    assert client.post("/v1/registry/gc", headers=auth(admin)).status_code == 403
    nothing = client.post("/v1/registry/gc", headers=auth(root)).json()
    assert nothing == {"manifests_deleted": 0, "blobs_deleted": 0, "bytes_freed": 0}

    assert client.delete("/v1/namespaces/acme/models/tiny/tags/v1", headers=auth(admin)).status_code == 204
    assert client.delete("/v1/namespaces/acme/models/tiny/tags/v1", headers=auth(admin)).status_code == 404
    result = client.post("/v1/registry/gc", headers=auth(root)).json()
    assert result["manifests_deleted"] == 1
    assert result["blobs_deleted"] == len(manifest["bands"]) + 1
    store = create_store(settings)
    for band in manifest["bands"]:
        assert store.size(blob_key(band["digest"])) is None
    assert store.size(blob_key(digest)) is None
    deleted_manifest = client.get(f"/v1/namespaces/acme/models/tiny/manifests/{digest}", headers=auth(admin))
    assert deleted_manifest.status_code == 404
    remaining_manifest = client.get("/v1/namespaces/acme/models/tiny/manifests/v2", headers=auth(admin))
    assert remaining_manifest.status_code == 200


def test_gc_keeps_blobs_shared_with_tagged_manifest(client, settings, session_factory, tmp_path, make_token):
    manifest, _, _ = publish(settings, session_factory, tmp_path, model="one", seed=5)
    publish(settings, session_factory, tmp_path, model="two", seed=5)
    admin = make_token(["admin"], "acme")
    client.delete("/v1/namespaces/acme/models/one/tags/v1", headers=auth(admin))
    result = client.post("/v1/registry/gc", headers=auth(make_token(["admin"], None))).json()
    assert result["blobs_deleted"] == 0
    band = manifest["bands"][0]["digest"]
    assert client.get(f"/v1/namespaces/acme/models/two/blobs/{band}", headers=auth(admin)).status_code == 200


def test_publish_rejects_corrupted_artifact(settings, session_factory, tmp_path):
    artifact_dir = tmp_path / "bad"
    manifest = make_random_artifact(artifact_dir)
    blob = artifact_dir / "blobs" / "sha256" / manifest["bands"][1]["digest"].split(":")[1]
    blob.write_bytes(b"\0" * blob.stat().st_size)
    with session_factory() as session:
        session.add(Namespace(name="acme"))
        session.commit()
        with pytest.raises(Exception, match="is corrupted"):
            publish_artifact(session, create_store(settings), artifact_dir, 1, "bad", "v1", None)


def test_models_listing(client, settings, session_factory, tmp_path, pull_token):
    publish(settings, session_factory, tmp_path, model="tiny", tag="v1")
    body = client.get("/v1/namespaces/acme/models", headers=auth(pull_token)).json()
    assert [model["name"] for model in body["items"]] == ["tiny"]
    assert body["items"][0]["tags"][0]["reference"] == "acme/tiny:v1"
    assert json.loads(client.get("/v1/namespaces/acme/models/tiny/manifests/v1",
                                 headers=auth(pull_token)).content)["schema"] == "uniql.artifact"


def tag_url(model="tiny", tag="stable", namespace="acme"):
    return f"/v1/namespaces/{namespace}/models/{model}/tags/{tag}"


def test_put_tag_creates_tag(client, settings, session_factory, tmp_path, make_token):
    _, digest, artifact_dir = publish(settings, session_factory, tmp_path, tag="v1", seed=1)
    submit = make_token(["submit"], "acme")

    response = client.put(tag_url(), json={"digest": digest}, headers=auth(submit))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "stable"
    assert body["digest"] == digest
    assert body["reference"] == "acme/tiny:stable"

    tags = client.get("/v1/namespaces/acme/models/tiny/tags", headers=auth(submit)).json()["items"]
    assert {tag["name"]: tag["digest"] for tag in tags} == {"stable": digest, "v1": digest}
    manifest = client.get("/v1/namespaces/acme/models/tiny/manifests/stable", headers=auth(submit))
    assert manifest.content == (artifact_dir / "manifest.json").read_bytes()


def test_put_tag_is_idempotent(client, settings, session_factory, tmp_path, make_token):
    _, digest, _ = publish(settings, session_factory, tmp_path, seed=1)
    admin = make_token(["admin"], "acme")

    first = client.put(tag_url(), json={"digest": digest}, headers=auth(admin))
    second = client.put(tag_url(), json={"digest": digest}, headers=auth(admin))
    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json() == first.json()


def test_put_tag_moves_existing_tag(client, settings, session_factory, tmp_path, make_token):
    _, old_digest, _ = publish(settings, session_factory, tmp_path, tag="v1", seed=1)
    _, new_digest, _ = publish(settings, session_factory, tmp_path, tag="v2", seed=2)
    admin = make_token(["admin"], "acme")
    root = make_token(["admin"], None)
    before = client.put(tag_url(tag="stable"), json={"digest": old_digest}, headers=auth(admin)).json()

    moved = client.put(tag_url(tag="stable"), json={"digest": new_digest}, headers=auth(admin))
    assert moved.status_code == 200
    assert moved.json()["digest"] == new_digest
    assert moved.json()["updated_at"] >= before["updated_at"]
    head = client.head("/v1/namespaces/acme/models/tiny/manifests/stable", headers=auth(admin))
    assert head.headers["Uniql-Content-Digest"] == new_digest

    # Moving v1 away leaves the old manifest untagged, so garbage collection may delete it.
    client.put(tag_url(tag="v1"), json={"digest": new_digest}, headers=auth(admin))
    result = client.post("/v1/registry/gc", headers=auth(root)).json()
    assert result["manifests_deleted"] == 1
    old = client.get(f"/v1/namespaces/acme/models/tiny/manifests/{old_digest}", headers=auth(admin))
    assert old.status_code == 404


def test_put_tag_unknown_digest_is_404(client, settings, session_factory, tmp_path, make_token):
    publish(settings, session_factory, tmp_path, model="tiny", seed=1)
    _, other_model_digest, _ = publish(settings, session_factory, tmp_path, model="other", seed=2)
    admin = make_token(["admin"], "acme")

    for digest in ("sha256:" + "0" * 64, other_model_digest):
        response = client.put(tag_url(), json={"digest": digest}, headers=auth(admin))
        assert response.status_code == 404
        assert f"manifest {digest} not found in model acme/tiny" in response.json()["detail"]
    tags = client.get("/v1/namespaces/acme/models/tiny/tags", headers=auth(admin)).json()["items"]
    assert [tag["name"] for tag in tags] == ["v1"]


def test_put_tag_unknown_model_or_namespace_is_404(client, settings, session_factory, tmp_path, make_token):
    _, digest, _ = publish(settings, session_factory, tmp_path, seed=1)
    root = make_token(["admin"], None)

    missing_model = client.put(tag_url(model="absent"), json={"digest": digest}, headers=auth(root))
    assert missing_model.status_code == 404
    assert "model acme/absent not found" in missing_model.json()["detail"]
    missing_namespace = client.put(tag_url(namespace="nobody"), json={"digest": digest}, headers=auth(root))
    assert missing_namespace.status_code == 404
    assert "namespace 'nobody' not found" in missing_namespace.json()["detail"]


@pytest.mark.parametrize("body", [{"digest": "sha256:ABC"}, {"digest": "md5:" + "0" * 32}, {"digest": "v1"},
                                  {}, {"digest": "sha256:" + "0" * 64, "extra": 1}])
def test_put_tag_malformed_body_is_422(client, settings, session_factory, tmp_path, make_token, body):
    publish(settings, session_factory, tmp_path, seed=1)
    response = client.put(tag_url(), json=body, headers=auth(make_token(["admin"], "acme")))
    assert response.status_code == 422


def test_put_tag_needs_submit_scope(client, settings, session_factory, tmp_path, pull_token):
    _, digest, _ = publish(settings, session_factory, tmp_path, seed=1)
    response = client.put(tag_url(), json={"digest": digest}, headers=auth(pull_token))
    assert response.status_code == 403
    assert "needs the 'submit' scope" in response.json()["detail"]
    assert client.put(tag_url(), json={"digest": digest}).status_code == 401


def test_put_tag_other_tenant_is_404(client, settings, session_factory, tmp_path, make_token):
    _, digest, _ = publish(settings, session_factory, tmp_path, seed=1, namespace="acme")
    with session_factory() as session:
        get_or_create_namespace(session, "rival")
        session.commit()
    rival_admin = make_token(["admin"], "rival")

    response = client.put(tag_url(namespace="acme"), json={"digest": digest}, headers=auth(rival_admin))
    assert response.status_code == 404
    assert "namespace 'acme' not found" in response.json()["detail"]
    tags = client.get("/v1/namespaces/acme/models/tiny/tags", headers=auth(make_token(["pull"], "acme"))).json()
    assert [tag["name"] for tag in tags["items"]] == ["v1"]
