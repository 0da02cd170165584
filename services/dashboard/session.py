"""Dashboard login: the API token kept in an HttpOnly cookie, CSRF tokens and page rendering.

The cookie carries the same token the API accepts as a bearer token, and every page checks it
with the API's own ``get_principal``, so scopes, namespaces, expiry and revocation apply alike.
The cookie is ``SameSite=Strict``, and every form that changes state also carries a CSRF token
derived from the API token, so another site can neither read nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.templating import Jinja2Templates

from services.auth import Principal, get_principal
from services.deps import SessionDep
from services.errors import ForbiddenError, ServiceError, UnauthorizedError

COOKIE_NAME = "uniql_dashboard_token"
COOKIE_PATH = "/dashboard"
COOKIE_MAX_AGE_SECONDS = 12 * 3600
PREFIX = "/dashboard"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def format_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def format_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value} B"


templates.env.filters.update(time=format_time, seconds=format_seconds, bytes=format_bytes)


def csrf_token_for(secret: str) -> str:
    """Derive the CSRF token of a login session from its API token (stable, unguessable without it)."""
    return hmac.new(secret.encode(), b"uniql-dashboard-csrf", hashlib.sha256).hexdigest()


class DashboardUser:
    """The logged-in caller: the API principal plus the secret its forms are signed with."""

    def __init__(self, principal: Principal, secret: str):
        self.principal = principal
        self.csrf_token = csrf_token_for(secret)

    @property
    def scopes(self) -> frozenset[str]:
        return self.principal.scopes

    def can(self, scope: str) -> bool:
        return scope in self.principal.scopes

    def require(self, scope: str) -> None:
        if scope not in self.principal.scopes:
            granted = ", ".join(sorted(self.principal.scopes))
            raise ForbiddenError(f"this page needs the '{scope}' scope; your token has: {granted}")


def get_dashboard_user(request: Request, session: SessionDep) -> DashboardUser:
    """Authenticate the cookie; without a valid one, redirect to the login page (303)."""
    secret = request.cookies.get(COOKIE_NAME)
    if secret:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=secret)
        try:
            return DashboardUser(get_principal(session, credentials), secret)
        except UnauthorizedError:
            pass
    raise HTTPException(status_code=303, headers={"Location": f"{PREFIX}/login?expired={int(bool(secret))}"})


UserDep = Annotated[DashboardUser, Depends(get_dashboard_user)]


def check_csrf(user: UserDep, csrf_token: Annotated[str, Form()]) -> DashboardUser:
    """Return the user when the form's CSRF token matches the login session (403 otherwise)."""
    if not hmac.compare_digest(csrf_token, user.csrf_token):
        raise HTTPException(status_code=403, detail="invalid CSRF token; reload the page and try again")
    return user


CsrfUserDep = Annotated[DashboardUser, Depends(check_csrf)]


def render(request: Request, template: str, user: DashboardUser | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.update(user=user, prefix=PREFIX)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def render_error(request: Request, user: DashboardUser | None, error: ServiceError) -> HTMLResponse:
    """Render a service error (not found, forbidden, conflict) as a page with its status code."""
    return render(request, "error.html", user, status_code=error.status_code, message=error.detail)
