"""API tokens: create (the secret is returned once), list and revoke; admin scope only.

An admin token bound to a namespace manages that namespace's tokens only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response

from services.auth import AdminPrincipal, resolve_namespace
from services.db.base import utcnow
from services.db.models import ApiToken
from services.deps import SessionDep
from services.schemas.tokens import TokenCreate, TokenCreated, TokenPublic
from services.tokens import create_token, list_tokens, revoke_token

router = APIRouter(prefix="/tokens", tags=["tokens"])


def to_public(token: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=token.id, name=token.name, prefix=token.prefix,
        namespace=token.namespace.name if token.namespace else None,
        scopes=token.scopes.split(),  # type: ignore[arg-type]
        created_at=token.created_at, expires_at=token.expires_at,
        revoked_at=token.revoked_at, last_used_at=token.last_used_at,
    )


@router.post("", response_model=TokenCreated, status_code=201)
def create_api_token(body: TokenCreate, session: SessionDep, principal: AdminPrincipal) -> TokenCreated:
    """Create a token in a namespace the caller administers; the response contains the only copy of the secret."""
    namespace = resolve_namespace(session, principal, body.namespace)
    expires_at = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token, secret = create_token(session, body.name, body.scopes, namespace.name, expires_at)
    session.commit()
    return TokenCreated(**to_public(token).model_dump(), secret=secret)


@router.get("", response_model=list[TokenPublic])
def list_api_tokens(session: SessionDep, principal: AdminPrincipal) -> list[TokenPublic]:
    """List live tokens (without secrets) of the caller's namespace, or of all for a global admin."""
    return [to_public(token) for token in list_tokens(session, principal.namespace_id)]


@router.delete("/{token_id}", status_code=204, response_class=Response)
def revoke_api_token(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep, principal: AdminPrincipal
) -> Response:
    """Revoke a token. Requests with it get 401 from now on."""
    revoke_token(session, token_id, principal.namespace_id)
    session.commit()
    return Response(status_code=204)
