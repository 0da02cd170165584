"""Liveness and readiness: ``/healthz`` checks the database and the broker."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.deps import QueueDep, SessionDep

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
def read_health(session: SessionDep, queue: QueueDep) -> JSONResponse:
    """Return 200 when the database and the broker respond, else 503 naming the failed check."""
    checks = {"database": True, "broker": queue.ping()}
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        logger.error("health check: database unreachable: %s", error)
        checks["database"] = False
    status = "ok" if all(checks.values()) else "degraded"
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if status == "ok" else 503)
