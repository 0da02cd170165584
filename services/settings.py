"""Settings of the cloud service and its workers, read from ``UNIQL_*`` environment variables.

The API process and every worker process build the same ``Settings`` so that they agree on the
database, the broker and the artifact store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1 << 30


class Settings(BaseSettings):
    """Configuration of the API service and the workers (environment prefix ``UNIQL_``)."""

    model_config = SettingsConfigDict(env_prefix="UNIQL_", extra="ignore")

    home: Path = Field(Path("~/.cache/uniql"), description="Root of embedded defaults (the uniql cache, UNIQL_HOME).")
    database_url: str = Field("", description="SQLAlchemy URL; empty means sqlite:///$UNIQL_HOME/service.db.")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker URL (Redis).")
    queue_name: str = Field("uniql", description="Celery queue that carries compression tasks.")

    store_backend: Literal["local", "s3"] = "local"
    store_path: Path | None = Field(None, description="Local store root; default $UNIQL_HOME/store.")
    cache_path: Path | None = Field(None, description="Worker scratch space; default $UNIQL_HOME/cache.")
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"

    max_upload_bytes: int = Field(64 * GIB, gt=0, description="Largest accepted source-model archive, in bytes.")
    max_unpacked_bytes: int = Field(128 * GIB, gt=0, description="Largest total size of an archive's files, in bytes.")
    max_archive_members: int = Field(10_000, gt=0, description="Most files and folders in one archive.")

    visibility_timeout_seconds: int = Field(
        12 * 3600, gt=0, description="Redis visibility timeout; must exceed the longest pipeline stage."
    )
    stage_lease_seconds: int = Field(
        120, gt=0, description="A running stage renews its lease this often (x1/3); expiry means its worker died."
    )
    task_max_retries: int = Field(3, ge=0, description="Retries of a stage after an unexpected error.")
    retry_backoff_seconds: float = Field(30.0, ge=0, description="First retry delay; doubles per retry.")
    retry_backoff_max_seconds: float = Field(600.0, ge=0)
    max_stage_attempts: int = Field(5, gt=0, description="Starts of one stage (crashes included) before the job fails.")
    recovery_interval_seconds: float = Field(60.0, gt=0, description="How often a worker re-enqueues stalled jobs.")
    requeue_after_seconds: float = Field(
        3600.0, gt=0, description="A queued job whose message is older than this is enqueued again."
    )
    gc_grace_seconds: float = Field(3600.0, ge=0, description="Blobs younger than this survive garbage collection.")
    heartbeat_history_limit: int = Field(10_000, gt=0, description="Heartbeats kept per device.")
    allow_text_paths: bool = Field(
        False, description="Let job configs name text files on the worker hosts (trusted tenants only)."
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = self.home.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'service.db'}"
        self.database_url = normalize_database_url(self.database_url)
        if self.store_path is None:
            self.store_path = self.home / "store"
        if self.cache_path is None:
            self.cache_path = self.home / "cache"
        if self.store_backend == "s3" and not self.s3_bucket:
            raise ValueError("UNIQL_STORE_BACKEND is 's3' but UNIQL_S3_BUCKET is empty; set the bucket name")
        return self

    @property
    def local_store_path(self) -> Path:
        assert self.store_path is not None
        return self.store_path

    @property
    def local_cache_path(self) -> Path:
        assert self.cache_path is not None
        return self.cache_path


def normalize_database_url(url: str) -> str:
    """Select the psycopg 3 driver for plain ``postgresql://`` URLs (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
