"""Per-process resources of a worker: settings, database engine and artifact store.

They are created on first use in each process. A forked pool process drops the engine it
inherited (without closing the parent's connections) and opens its own.
"""

from __future__ import annotations

import importlib
import os
import socket
from functools import cache
from types import ModuleType

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.db.session import create_db_engine, create_session_factory
from services.settings import Settings
from services.store import ArtifactStore, create_store

PIPELINE_MODULE = "uniql.pipeline"

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


@cache
def settings() -> Settings:
    return Settings()


def session_factory() -> sessionmaker[Session]:
    global _engine, _session_factory
    if _session_factory is None:
        _engine = create_db_engine(settings().database_url)
        _session_factory = create_session_factory(_engine)
    return _session_factory


def reset_after_fork() -> None:
    """Forget the engine inherited from the parent process; its connections stay the parent's."""
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _session_factory = None
    store.cache_clear()


@cache
def store() -> ArtifactStore:
    return create_store(settings())


def pipeline() -> ModuleType:
    """Import ``uniql.pipeline`` (and with it torch) only in the process that runs a stage."""
    return importlib.import_module(PIPELINE_MODULE)


def worker_identity(task_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{task_id}"
