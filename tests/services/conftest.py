from tests.services.fixtures import (  # noqa: F401
    database_url,
    live_server,
    make_token,
    postgres_url,
    redis_url,
    session_factory,
    settings,
)
