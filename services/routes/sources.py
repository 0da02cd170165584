"""Source models: streamed upload of a model directory as a tar (or tar.gz) archive, list, read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from services.auth import (
    PullPrincipal,
    SubmitPrincipal,
    accessible_namespace_ids,
    resolve_namespace,
)
from services.db.base import new_id
from services.db.models import SourceModel
from services.deps import SessionDep, SettingsDep, StoreDep
from services.errors import NotFoundError, PayloadTooLargeError
from services.naming import ID_PATTERN, NAME_MAX_LENGTH, NAME_PATTERN
from services.schemas.sources import SourceModelList, SourceModelPublic
from services.sources import check_and_store, receive_upload

router = APIRouter(prefix="/source-models", tags=["source models"])

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def to_public(source: SourceModel) -> SourceModelPublic:
    return SourceModelPublic(
        id=source.id, namespace=source.namespace.name, name=source.name, digest=source.digest,
        size_bytes=source.size_bytes, unpacked_bytes=source.unpacked_bytes, file_count=source.file_count,
        created_at=source.created_at,
    )


@router.post("", response_model=SourceModelPublic, status_code=201, openapi_extra=UPLOAD_BODY,
             responses={200: {"model": SourceModelPublic, "description": "The same archive was already uploaded"}})
async def create_source_model(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    principal: SubmitPrincipal,
    name: Annotated[str, Query(min_length=1, max_length=128, description="Label of the model, e.g. its HF id.")],
    namespace: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    content_length: Annotated[int | None, Header(ge=0)] = None,
) -> JSONResponse:
    """Upload a Hugging Face model directory as the raw request body (``tar -czf - -C MODEL_DIR .``).

    The archive is checked before it is stored: no absolute paths, no ``..``, no links out of
    the tree, no devices, and sizes within the limits. Uploading the same bytes again returns
    the existing source model with status 200.
    """
    namespace_row = await run_in_threadpool(resolve_namespace, session, principal, namespace)
    if content_length is not None and content_length > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"upload of {content_length} bytes is larger than the limit of {settings.max_upload_bytes} bytes; "
            "remove files the model does not need or raise UNIQL_MAX_UPLOAD_BYTES"
        )
    upload = await receive_upload(request.stream(), settings.local_cache_path / "uploads", settings.max_upload_bytes)

    existing = await run_in_threadpool(
        session.scalar,
        select(SourceModel).where(SourceModel.namespace_id == namespace_row.id, SourceModel.digest == upload.digest),
    )
    if existing is not None:
        upload.path.unlink(missing_ok=True)
        return JSONResponse(to_public(existing).model_dump(mode="json"), status_code=200)

    source_id = new_id()
    summary = await run_in_threadpool(
        check_and_store, store, upload, source_id, settings.max_unpacked_bytes, settings.max_archive_members
    )
    source = SourceModel(
        id=source_id, namespace_id=namespace_row.id, name=name, digest=upload.digest, size_bytes=upload.size_bytes,
        unpacked_bytes=summary.unpacked_bytes, file_count=summary.file_count, root=summary.root,
    )
    session.add(source)
    await run_in_threadpool(session.commit)
    source.namespace = namespace_row
    return JSONResponse(to_public(source).model_dump(mode="json"), status_code=201)


@router.get("", response_model=SourceModelList)
def list_source_models(
    session: SessionDep,
    principal: PullPrincipal,
    namespace: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SourceModelList:
    """List uploaded source models, newest first."""
    query = select(SourceModel)
    namespace_ids = accessible_namespace_ids(session, principal, namespace)
    if namespace_ids is not None:
        query = query.where(SourceModel.namespace_id.in_(namespace_ids))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(SourceModel.created_at.desc(), SourceModel.id).limit(limit).offset(offset))
    return SourceModelList(items=[to_public(row) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/{source_model_id}", response_model=SourceModelPublic)
def read_source_model(
    source_model_id: Annotated[str, Path(pattern=ID_PATTERN)], session: SessionDep, principal: PullPrincipal
) -> SourceModelPublic:
    source = session.get(SourceModel, source_model_id)
    if source is None or not principal.can_access(source.namespace_id):
        raise NotFoundError(f"source model {source_model_id} not found; list them with GET /v1/source-models")
    return to_public(source)
