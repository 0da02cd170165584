"""Namespaces (tenants): list the ones a token can access, create new ones."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from services.auth import AdminPrincipal, PullPrincipal
from services.db.models import Namespace
from services.deps import SessionDep
from services.errors import ConflictError, ForbiddenError
from services.schemas.tokens import NamespaceCreate, NamespacePublic

router = APIRouter(prefix="/namespaces", tags=["namespaces"])


@router.get("", response_model=list[NamespacePublic])
def list_namespaces(session: SessionDep, principal: PullPrincipal) -> list[Namespace]:
    """List the namespaces the token can access."""
    query = select(Namespace).order_by(Namespace.name)
    if principal.namespace_id is not None:
        query = query.where(Namespace.id == principal.namespace_id)
    return list(session.scalars(query))


@router.post("", response_model=NamespacePublic, status_code=201)
def create_namespace(body: NamespaceCreate, session: SessionDep, principal: AdminPrincipal) -> Namespace:
    """Create a namespace (needs an admin token without a namespace)."""
    if not principal.is_global_admin:
        raise ForbiddenError("creating namespaces needs an admin token without a namespace")
    if session.scalar(select(Namespace).where(Namespace.name == body.name)) is not None:
        raise ConflictError(f"namespace {body.name!r} already exists")
    namespace = Namespace(name=body.name)
    session.add(namespace)
    session.commit()
    return namespace
