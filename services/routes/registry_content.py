"""Registry content: manifests by tag or digest and blobs by digest, with HEAD, Range and ETag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from services.auth import Principal, PullPrincipal, resolve_namespace
from services.db.models import Repository
from services.deps import SessionDep, StoreDep
from services.errors import NotFoundError
from services.naming import DIGEST_PATTERN, NAME_PATTERN
from services.ranges import parse_range
from services.registry import (
    MANIFEST_MEDIA_TYPE,
    find_blob,
    find_repository,
    resolve_manifest,
)
from services.store import blob_key

router = APIRouter(prefix="/namespaces/{namespace}/models/{model}", tags=["registry"])

NamespaceName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
ModelName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
Reference = Annotated[
    str, Path(pattern=r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|sha256:[0-9a-f]{64})$", description="Tag or digest.")
]
Digest = Annotated[str, Path(pattern=DIGEST_PATTERN, description="sha256:<64 hex digits>")]
BLOB_RESPONSES = {206: {"description": "Partial content (Range)"}, 304: {"description": "Not modified"},
                  416: {"description": "Range not satisfiable"}}


def get_repository(session: Session, principal: Principal, namespace: str, model: str) -> Repository:
    namespace_row = resolve_namespace(session, principal, namespace)
    repository = find_repository(session, namespace_row.id, model)
    if repository is None:
        raise NotFoundError(f"model {namespace}/{model} not found; list models with GET /v1/namespaces/{namespace}/models")
    return repository


def _manifest_response(session, store, principal, namespace, model, reference, with_body: bool) -> Response:
    manifest = resolve_manifest(session, get_repository(session, principal, namespace, model), reference)
    headers = {"ETag": f'"{manifest.digest}"', "Uniql-Content-Digest": manifest.digest,
               "Content-Length": str(manifest.size)}
    content = store.read_bytes(blob_key(manifest.digest)) if with_body else None
    return Response(content=content, media_type=MANIFEST_MEDIA_TYPE, headers=headers)


@router.get("/manifests/{reference}", response_class=Response,
            responses={200: {"content": {MANIFEST_MEDIA_TYPE: {}}, "description": "The manifest's exact bytes"}})
def read_manifest(
    namespace: NamespaceName, model: ModelName, reference: Reference,
    session: SessionDep, store: StoreDep, principal: PullPrincipal,
) -> Response:
    """Return a manifest by tag or digest; ``ETag`` and ``Uniql-Content-Digest`` carry its digest."""
    return _manifest_response(session, store, principal, namespace, model, reference, with_body=True)


@router.head("/manifests/{reference}", response_class=Response)
def head_manifest(
    namespace: NamespaceName, model: ModelName, reference: Reference,
    session: SessionDep, store: StoreDep, principal: PullPrincipal,
) -> Response:
    """Return a manifest's headers (digest, size) without its bytes."""
    return _manifest_response(session, store, principal, namespace, model, reference, with_body=False)


def _blob_response(
    session, store, principal, namespace, model, digest, range_header, if_range, if_none_match, with_body: bool
) -> Response:
    blob = find_blob(session, get_repository(session, principal, namespace, model), digest)
    etag = f'"{blob.digest}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Uniql-Content-Digest": blob.digest,
               "Cache-Control": "private, max-age=31536000, immutable"}
    if if_none_match is not None and etag in [value.strip() for value in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)

    byte_range = parse_range(range_header, blob.size) if if_range in (None, etag) else None
    start, stop = byte_range or (0, blob.size)
    headers["Content-Length"] = str(stop - start)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{blob.size}"
    if not with_body:
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    chunks = store.iter_range(blob_key(blob.digest), start, stop)
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type="application/octet-stream")


@router.get("/blobs/{digest}", response_class=StreamingResponse, responses=BLOB_RESPONSES)
def read_blob(
    namespace: NamespaceName, model: ModelName, digest: Digest,
    session: SessionDep, store: StoreDep, principal: PullPrincipal,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Stream a blob, or one byte range of it (``Range: bytes=START-END``); the ETag is its digest."""
    return _blob_response(session, store, principal, namespace, model, digest, range_header, if_range,
                          if_none_match, with_body=True)


@router.head("/blobs/{digest}", response_class=Response, responses=BLOB_RESPONSES)
def head_blob(
    namespace: NamespaceName, model: ModelName, digest: Digest,
    session: SessionDep, store: StoreDep, principal: PullPrincipal,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Return a blob's headers (size, digest, range support) without its bytes."""
    return _blob_response(session, store, principal, namespace, model, digest, range_header, if_range,
                          if_none_match, with_body=False)
