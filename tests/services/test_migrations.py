"""Alembic migrations: upgrade from empty to head and downgrade back, on PostgreSQL and SQLite."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from services.db.base import Base
from services.db.migrate import downgrade_database, upgrade_database
from tests.services.fixtures import DEFAULT_DATABASE_URL, ensure_postgres_database

pytestmark = pytest.mark.integration

EXPECTED_TABLES = set(Base.metadata.tables) | {"alembic_version"}


def postgres_migration_url() -> str:
    base = make_url(os.environ.get("UNIQL_TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    url = base.set(database=f"{base.database}_migrations").render_as_string(hide_password=False)
    url = ensure_postgres_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return postgres_migration_url()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_then_downgrade(empty_database_url):
    upgrade_database(empty_database_url)
    assert table_names(empty_database_url) == EXPECTED_TABLES

    downgrade_database(empty_database_url, "base")
    assert table_names(empty_database_url) == {"alembic_version"}

    upgrade_database(empty_database_url)
    assert table_names(empty_database_url) == EXPECTED_TABLES


def test_models_match_migrations(empty_database_url):
    """Autogenerate finds no difference between the ORM models and the migrated schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade_database(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
