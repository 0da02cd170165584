"""Bearer-token authentication, scope checks and namespace access for the routes.

Requests for resources of a namespace the token may not access return 404, exactly like ids
that do not exist, so one tenant cannot learn which ids or names another tenant has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Namespace
from services.deps import SessionDep
from services.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from services.tokens import authenticate, effective_scopes

bearer_scheme = HTTPBearer(auto_error=False, description="API token: 'Authorization: Bearer uq_...'")


@dataclass(frozen=True)
class Principal:
    """The caller, as its token describes it."""

    token_id: int
    namespace_id: int | None  # None: every namespace (global admin)
    namespace: str | None
    scopes: frozenset[str]  # granted scopes plus the ones they imply

    @property
    def is_global_admin(self) -> bool:
        return self.namespace_id is None and "admin" in self.scopes

    def can_access(self, namespace_id: int) -> bool:
        return self.namespace_id is None or self.namespace_id == namespace_id


def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("missing API token: send the header 'Authorization: Bearer <token>'")
    token = authenticate(session, credentials.credentials)
    if token is None:
        raise UnauthorizedError("invalid, expired or revoked API token; ask an admin for a new one")
    return Principal(
        token_id=token.id,
        namespace_id=token.namespace_id,
        namespace=token.namespace.name if token.namespace else None,
        scopes=effective_scopes(token.scopes.split()),
    )


def require_scope(scope: str):
    """Build a dependency that returns the caller when its token has ``scope`` (403 otherwise)."""

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if scope not in principal.scopes:
            granted = ", ".join(sorted(principal.scopes))
            raise ForbiddenError(f"this request needs the '{scope}' scope; the token has: {granted}")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


AdminPrincipal = Annotated[Principal, Depends(require_scope("admin"))]
SubmitPrincipal = Annotated[Principal, Depends(require_scope("submit"))]
PullPrincipal = Annotated[Principal, Depends(require_scope("pull"))]


def resolve_namespace(session: Session, principal: Principal, name: str | None) -> Namespace:
    """Return the namespace ``name`` (default: the token's own) if the caller may access it, else 404."""
    if name is None:
        if principal.namespace is None:
            raise BadRequestError("this token serves every namespace; name one with the 'namespace' field")
        name = principal.namespace
    namespace = session.scalar(select(Namespace).where(Namespace.name == name))
    if namespace is None or not principal.can_access(namespace.id):
        raise NotFoundError(f"namespace {name!r} not found; list yours with GET /v1/namespaces")
    return namespace


def accessible_namespace_ids(session: Session, principal: Principal, name: str | None) -> list[int] | None:
    """Return the namespace ids a listing may show (None: all), narrowed to ``name`` when given."""
    if name is not None:
        return [resolve_namespace(session, principal, name).id]
    if principal.namespace_id is None:
        return None
    return [principal.namespace_id]
