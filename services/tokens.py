"""API tokens and namespaces: create, list, revoke and authenticate.

A token is ``uq_`` followed by 43 random URL-safe characters; the database stores only its
sha256, so a leaked database does not leak usable tokens. The functions take a SQLAlchemy
session and are the base of both the ``/v1/tokens`` routes and the admin command line.
``python -m services.tokens --help`` creates the first admin token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.base import utcnow
from services.db.models import ApiToken, Namespace
from services.errors import BadRequestError, NotFoundError
from services.naming import NAME_MAX_LENGTH, NAME_PATTERN

TOKEN_PREFIX = "uq_"
SCOPES = ("admin", "submit", "pull")
# Each scope includes the ones after it: admin can submit and pull, submit can pull.
IMPLIED_SCOPES = {"admin": {"admin", "submit", "pull"}, "submit": {"submit", "pull"}, "pull": {"pull"}}
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def effective_scopes(scopes: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for scope in scopes:
        granted |= IMPLIED_SCOPES.get(scope, set())
    return frozenset(granted)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = sorted(set(scopes))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise BadRequestError(f"invalid scopes {unknown or scopes}: choose one or more of {', '.join(SCOPES)}")
    return scopes


def check_namespace_name(name: str) -> str:
    if len(name) > NAME_MAX_LENGTH or not re.fullmatch(NAME_PATTERN, name):
        raise BadRequestError(
            f"invalid namespace name {name!r}: use lowercase letters and digits, separated by '.', '_' or '-', "
            f"at most {NAME_MAX_LENGTH} characters"
        )
    return name


def get_or_create_namespace(session: Session, name: str) -> Namespace:
    namespace = session.scalar(select(Namespace).where(Namespace.name == check_namespace_name(name)))
    if namespace is None:
        namespace = Namespace(name=name)
        session.add(namespace)
        session.flush()
    return namespace


def create_token(
    session: Session,
    name: str,
    scopes: Iterable[str],
    namespace: str | None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is not stored and cannot be shown again.

    ``namespace=None`` makes a token for every namespace, which only the admin scope may have.
    """
    scopes = check_scopes(scopes)
    if namespace is None and "admin" not in scopes:
        raise BadRequestError("a token without a namespace must have the admin scope; give a namespace")
    namespace_row = get_or_create_namespace(session, namespace) if namespace is not None else None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        namespace=namespace_row,
        namespace_id=namespace_row.id if namespace_row else None,
        scopes=" ".join(scopes),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, secret


def list_tokens(session: Session, namespace_id: int | None = None, include_revoked: bool = False) -> list[ApiToken]:
    """List tokens, all of them or those of one namespace, oldest first."""
    query = select(ApiToken).order_by(ApiToken.id)
    if namespace_id is not None:
        query = query.where(ApiToken.namespace_id == namespace_id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: int, namespace_id: int | None = None) -> ApiToken:
    """Revoke a token; with ``namespace_id``, only a token of that namespace (others read as not found)."""
    token = session.get(ApiToken, token_id)
    if token is None or (namespace_id is not None and token.namespace_id != namespace_id):
        raise NotFoundError(f"token {token_id} not found; list tokens with GET /v1/tokens")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def authenticate(session: Session, secret: str) -> ApiToken | None:
    """Return the live token whose secret is ``secret``, or None (unknown, revoked or expired)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(secret)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.commit()
    return token


def create_admin_token(database_url: str, name: str = "admin") -> str:
    """Create an admin token for every namespace in the database at ``database_url``; return its secret."""
    from services.db.session import create_db_engine, create_session_factory

    engine = create_db_engine(database_url)
    try:
        with create_session_factory(engine)() as session:
            _, secret = create_token(session, name, ["admin"], namespace=None)
            session.commit()
    finally:
        engine.dispose()
    return secret


@click.command(name="create-admin-token")
@click.option("--database-url", envvar="UNIQL_DATABASE_URL", help="Service database URL (default: the UNIQL_* settings).")
@click.option("--name", default="admin", show_default=True, help="Label stored with the token.")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Create or upgrade the tables first.")
def create_admin_token_command(database_url: str | None, name: str, migrate: bool) -> None:
    """Create an admin token for every namespace and print its secret (shown only once)."""
    from services.db.migrate import upgrade_database
    from services.settings import Settings

    url = Settings(database_url=database_url or "").database_url
    if migrate:
        upgrade_database(url)
    click.echo(create_admin_token(url, name))


if __name__ == "__main__":
    create_admin_token_command()
