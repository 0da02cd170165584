"""Run the Alembic migrations of ``migrations/`` against a database URL."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

logger = logging.getLogger(__name__)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def migrations_root() -> Path:
    """Find the folder with ``alembic.ini`` and ``migrations/``: the source tree, else the working directory.

    A non-editable install puts ``services`` in site-packages without the migrations, so the
    service images run from a folder that contains both (see deploy/Dockerfile.service).
    """
    for root in (REPOSITORY_ROOT, Path.cwd()):
        if (root / "alembic.ini").is_file() and (root / "migrations" / "env.py").is_file():
            return root
    raise FileNotFoundError(
        f"alembic.ini and migrations/ not found in {REPOSITORY_ROOT} or {Path.cwd()}; "
        "run the service from the repository root or the image's /opt/uniql"
    )


def alembic_config(url: str) -> Config:
    root = migrations_root()
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    # ConfigParser treats '%' as interpolation; URLs may contain percent-encoded passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    logger.info("migrating database %s to %s", _safe(url), revision)
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str, revision: str = "base") -> None:
    logger.info("downgrading database %s to %s", _safe(url), revision)
    command.downgrade(alembic_config(url), revision)


def _safe(url: str) -> str:
    """Return the URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
