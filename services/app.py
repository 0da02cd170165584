"""The FastAPI application: ``create_app(settings)`` wires database, store, queue and routes.

Run it with ``uniql serve`` or ``uvicorn --factory services.app:create_app``. The OpenAPI
description is at ``/openapi.json`` and the interactive docs at ``/docs``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

import uniql
from services import dashboard
from services.db.session import create_db_engine, create_session_factory
from services.errors import ServiceError
from services.queue import JobQueue
from services.routes import (
    devices,
    health,
    jobs,
    namespaces,
    registry_content,
    registry_models,
    sources,
    tokens,
)
from services.settings import Settings
from services.store import StoreError, create_store
from uniql.errors import UniqlError

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: read from ``UNIQL_*`` environment variables)."""
    settings = settings or Settings()
    engine = create_db_engine(settings.database_url)
    queue = JobQueue(settings.broker_url, settings.queue_name, settings.visibility_timeout_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("API starting: database %s, store %s", engine.url.render_as_string(hide_password=True),
                    settings.store_backend)
        yield
        queue.close()
        engine.dispose()
        logger.info("API stopped")

    app = FastAPI(
        title="uniql cloud service",
        version=uniql.__version__,
        description="Compress a model once into a banded 4-bit artifact; pull it at any pruning rate.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.store = create_store(settings)
    app.state.queue = queue

    api = APIRouter(prefix="/v1")
    for module in (namespaces, tokens, sources, jobs, registry_models, registry_content, devices):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def handle_service_error(request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(UniqlError)
    async def handle_uniql_error(request: Request, error: UniqlError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(StoreError)
    async def handle_store_error(request: Request, error: StoreError) -> JSONResponse:
        logger.error("store error on %s %s: %s", request.method, request.url.path, error)
        return JSONResponse({"detail": f"artifact store unavailable: {error}"}, status_code=503)

    @app.exception_handler(OperationalError)
    async def handle_database_error(request: Request, error: OperationalError) -> JSONResponse:
        logger.error("database error on %s %s: %s", request.method, request.url.path, error)
        return JSONResponse({"detail": "database unavailable; try again later"}, status_code=503)
