"""Alembic environment: migrates the database named by ``sqlalchemy.url`` or ``UNIQL_DATABASE_URL``."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

import services.db.models  # noqa: F401  (registers the tables on Base.metadata)
from services.db.base import Base
from services.db.session import create_db_engine
from services.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or Settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(database_url())
    with engine.connect() as connection:
        # Batch mode lets later migrations alter tables on SQLite, which lacks most ALTER TABLE forms.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
