"""The admin CLI tests run against the same live service stacks as the dashboard tests."""

from tests.dashboard.conftest import (  # noqa: F401
    dashboard_database_url,
    idle_source_model,
    idle_stack,
    tiny_model_dir,
    working_stack,
)
