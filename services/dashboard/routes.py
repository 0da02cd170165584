"""Dashboard routes: login and logout, static files, and the jobs, registry and device pages.

Log in at ``/dashboard/login`` with an API token. The token stays in an HttpOnly cookie scoped
to ``/dashboard``, and every page checks it as the API checks a bearer token.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials

from services.auth import get_principal
from services.dashboard import devices_pages, jobs_pages, registry_pages
from services.dashboard.session import (
    COOKIE_MAX_AGE_SECONDS,
    COOKIE_NAME,
    COOKIE_PATH,
    PREFIX,
    CsrfUserDep,
    render,
)
from services.deps import SessionDep
from services.errors import UnauthorizedError

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}

router = APIRouter(prefix=PREFIX, include_in_schema=False)
for pages in (jobs_pages, registry_pages, devices_pages):
    router.include_router(pages.router)


@router.get("", response_class=RedirectResponse)
def read_dashboard_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/jobs", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def read_login_page(request: Request, expired: int = 0) -> HTMLResponse:
    message = "Your token is invalid, expired or revoked; log in with another one." if expired else None
    return render(request, "login.html", None, message=message)


@router.post("/login", response_model=None)
def log_in(
    request: Request, session: SessionDep, token: Annotated[str, Form(max_length=512)]
) -> HTMLResponse | RedirectResponse:
    """Check the API token like a bearer token; on success keep it in an HttpOnly cookie."""
    secret = token.strip()
    try:
        principal = get_principal(session, HTTPAuthorizationCredentials(scheme="Bearer", credentials=secret))
    except UnauthorizedError as error:
        logger.info("dashboard login rejected from %s", request.client.host if request.client else "unknown")
        return render(request, "login.html", None, status_code=401, message=error.detail)
    # Pull-only tokens cannot list jobs, so they start on the registry.
    landing = "jobs" if "submit" in principal.scopes else "models"
    response = RedirectResponse(f"{PREFIX}/{landing}", status_code=303)
    # NOTE: behind a proxy that terminates TLS, the scheme reads "http" unless uvicorn runs with
    # --proxy-headers, and the cookie then lacks the Secure flag.
    response.set_cookie(
        COOKIE_NAME, secret, max_age=COOKIE_MAX_AGE_SECONDS, path=COOKIE_PATH, httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", response_class=RedirectResponse)
def log_out(user: CsrfUserDep) -> RedirectResponse:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.get("/static/{name}", response_class=FileResponse)
def read_static_file(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"static file {name!r} not found")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"})
