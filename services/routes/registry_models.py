"""Registry listing and maintenance: models, tags, setting and deleting tags, and garbage collection."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from services.auth import (
    AdminPrincipal,
    PullPrincipal,
    SubmitPrincipal,
    resolve_namespace,
)
from services.db.models import Manifest, Repository, Tag
from services.deps import SessionDep, SettingsDep, StoreDep
from services.errors import ForbiddenError, NotFoundError
from services.naming import NAME_PATTERN, TAG_PATTERN
from services.registry import collect_garbage, point_tag
from services.routes.registry_content import get_repository
from services.schemas.registry import (
    GarbageCollectionPublic,
    ModelList,
    ModelPublic,
    TagList,
    TagPublic,
    TagUpdate,
)

logger = logging.getLogger(__name__)

router = APIRouter(tags=["registry"])

NamespaceName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
ModelName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
TagName = Annotated[str, Path(pattern=TAG_PATTERN)]


def _tag_public(namespace: str, model: str, tag: Tag) -> TagPublic:
    return TagPublic(name=tag.name, digest=tag.manifest.digest, reference=f"{namespace}/{model}:{tag.name}",
                     updated_at=tag.updated_at)


def _tags(session, repository: Repository) -> list[Tag]:
    return list(session.scalars(select(Tag).where(Tag.repository_id == repository.id).order_by(Tag.name)))


@router.get("/namespaces/{namespace}/models", response_model=ModelList)
def list_models(namespace: NamespaceName, session: SessionDep, principal: PullPrincipal) -> ModelList:
    """List the models of a namespace with their tags."""
    namespace_row = resolve_namespace(session, principal, namespace)
    repositories = session.scalars(
        select(Repository).where(Repository.namespace_id == namespace_row.id).order_by(Repository.name)
    )
    items = [
        ModelPublic(namespace=namespace, name=repository.name, created_at=repository.created_at,
                    tags=[_tag_public(namespace, repository.name, tag) for tag in _tags(session, repository)])
        for repository in repositories
    ]
    return ModelList(items=items)


@router.get("/namespaces/{namespace}/models/{model}/tags", response_model=TagList)
def list_tags(namespace: NamespaceName, model: ModelName, session: SessionDep, principal: PullPrincipal) -> TagList:
    """List the tags of a model and the manifest digest each points to."""
    repository = get_repository(session, principal, namespace, model)
    return TagList(items=[_tag_public(namespace, model, tag) for tag in _tags(session, repository)])


@router.put("/namespaces/{namespace}/models/{model}/tags/{tag}", response_model=TagPublic)
def set_tag(
    namespace: NamespaceName, model: ModelName, tag: TagName, body: TagUpdate,
    session: SessionDep, principal: SubmitPrincipal,
) -> TagPublic:
    """Point a tag at a manifest already stored in the model, creating the tag or moving it.

    Repeating the request changes nothing. The manifest the tag pointed to before stays until
    garbage collection finds it untagged.
    """
    repository = get_repository(session, principal, namespace, model)
    manifest = session.scalar(
        select(Manifest).where(Manifest.repository_id == repository.id, Manifest.digest == body.digest)
    )
    if manifest is None:
        raise NotFoundError(
            f"manifest {body.digest} not found in model {namespace}/{model}. A tag can point only at a manifest "
            f"of its own model, so list the model's tags and digests with GET /v1/namespaces/{namespace}/models/{model}/tags"
        )
    # NOTE: a garbage collection run that already selected this manifest as untagged still deletes it after
    # the commit below. The new tag goes with it (ON DELETE CASCADE), because collect_garbage does not recheck.
    row = point_tag(session, repository, tag, manifest)
    session.commit()
    logger.info("tag %s/%s:%s points at %s (token %d)", namespace, model, tag, manifest.digest, principal.token_id)
    return _tag_public(namespace, model, row)


@router.delete("/namespaces/{namespace}/models/{model}/tags/{tag}", status_code=204, response_class=Response)
def delete_tag(
    namespace: NamespaceName, model: ModelName, tag: TagName, session: SessionDep, principal: AdminPrincipal
) -> Response:
    """Delete a tag; its manifest and blobs stay until garbage collection finds them unreferenced."""
    repository = get_repository(session, principal, namespace, model)
    row = session.scalar(select(Tag).where(Tag.repository_id == repository.id, Tag.name == tag))
    if row is None:
        raise NotFoundError(f"tag {namespace}/{model}:{tag} not found; list tags with GET .../models/{model}/tags")
    session.delete(row)
    session.commit()
    return Response(status_code=204)


@router.post("/registry/gc", response_model=GarbageCollectionPublic)
def collect_registry_garbage(
    session: SessionDep, store: StoreDep, settings: SettingsDep, principal: AdminPrincipal
) -> GarbageCollectionPublic:
    """Delete untagged manifests and the blobs no manifest lists (older than UNIQL_GC_GRACE_SECONDS)."""
    if not principal.is_global_admin:
        raise ForbiddenError("garbage collection spans every namespace; it needs an admin token without a namespace")
    manifests, blobs, freed = collect_garbage(session, store, settings.gc_grace_seconds)
    return GarbageCollectionPublic(manifests_deleted=manifests, blobs_deleted=blobs, bytes_freed=freed)
