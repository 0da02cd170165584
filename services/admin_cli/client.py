"""HTTP client of the admin commands: server and token resolution, requests, and exit codes.

Exit codes of every ``uniql jobs|models|tokens|devices`` command:

====  ==========================================================
0     success
1     the API rejected the request (conflict, invalid value, server error)
2     invalid command-line usage (click's own code)
3     the server is unreachable (connection refused, DNS, timeout)
4     authentication failed: no token, invalid token or missing scope
5     not found: unknown job, model, tag, token or device id
6     ``jobs submit --wait``: the job ended failed or cancelled
====  ==========================================================

The server address and the token come from ``--server``/``--token``, else ``UNIQL_SERVER``/
``UNIQL_TOKEN``, else the keys ``server`` and ``token`` of the TOML file
``$XDG_CONFIG_HOME/uniql/cli.toml`` (default ``~/.config/uniql/cli.toml``, or ``--cli-config``).
"""

from __future__ import annotations

import functools
import logging
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_NOT_FOUND = 5
EXIT_JOB_FAILED = 6

# httpx logs every request at INFO; the commands print their own results instead.
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_SERVER = "http://127.0.0.1:8000"
REQUEST_TIMEOUT_SECONDS = 30.0
UPLOAD_TIMEOUT_SECONDS = 3600.0


class CliError(click.ClickException):
    """An error the command prints as ``Error: <message>`` before exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_API_ERROR):
        super().__init__(message)
        self.exit_code = exit_code


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "uniql" / "cli.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """Read the CLI config file; a missing default file is empty, an unreadable one is a usage error."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CliError(f"cannot read the config file {path}: {error}; fix or remove it", EXIT_USAGE) from error


@dataclass(frozen=True)
class Connection:
    """Server URL and API token of one command."""

    server: str
    token: str | None


def resolve_connection(server: str | None, token: str | None, config_path: Path | None) -> Connection:
    """Pick server and token from the flags, then the environment, then the config file."""
    if config_path is not None and not config_path.is_file():
        raise CliError(f"config file {config_path} does not exist", EXIT_USAGE)
    config = read_config_file(config_path or default_config_path())
    server = server or os.environ.get("UNIQL_SERVER") or config.get("server") or DEFAULT_SERVER
    token = token or os.environ.get("UNIQL_TOKEN") or config.get("token")
    return Connection(server=str(server).rstrip("/"), token=str(token) if token else None)


def _error_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(detail, list):
        # FastAPI validation errors: one entry per invalid field.
        return "; ".join(f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}" for item in detail)
    return str(detail)


class ApiClient:
    """A thin httpx wrapper that turns transport and HTTP errors into ``CliError`` with an exit code."""

    def __init__(self, connection: Connection):
        self.connection = connection
        headers = {"User-Agent": "uniql-admin-cli"}
        if connection.token:
            headers["Authorization"] = f"Bearer {connection.token}"
        self.http = httpx.Client(base_url=connection.server, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.connection.token:
            raise CliError(
                f"no API token for {self.connection.server}: pass --token, set UNIQL_TOKEN, "
                f"or add token = \"uq_...\" to {default_config_path()}", EXIT_AUTH,
            )
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise CliError(
                f"cannot reach the server {self.connection.server} ({type(error).__name__}: {error}); "
                "check --server or UNIQL_SERVER and that the service runs", EXIT_UNREACHABLE,
            ) from error
        self._raise_for_status(method, path, response)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def _raise_for_status(self, method: str, path: str, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        detail = _error_detail(response)
        status = response.status_code
        if status in (401, 403):
            raise CliError(f"authentication failed ({status}): {detail}", EXIT_AUTH)
        if status == 404:
            raise CliError(f"not found: {detail}", EXIT_NOT_FOUND)
        if status == 405:
            raise CliError(f"the server does not support {method} {path} (405); upgrade the service", EXIT_API_ERROR)
        raise CliError(f"{method} {path} failed ({status}): {detail}", EXIT_API_ERROR)

    def close(self) -> None:
        self.http.close()


def connection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--server``, ``--token`` and ``--cli-config`` to a command."""
    function = click.option("--cli-config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                            help="CLI config file (TOML with 'server' and 'token') [default: ~/.config/uniql/cli.toml].")(function)
    function = click.option("--token", help="API token (uq_...) [default: UNIQL_TOKEN, else the config file].")(function)
    function = click.option("--server", help=f"Base URL of the cloud service [default: UNIQL_SERVER, else the config "
                            f"file, else {DEFAULT_SERVER}].")(function)
    return function


def with_client(function: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the connection options and call it with an ``ApiClient`` as first argument."""

    @connection_options
    @functools.wraps(function)
    def run_with_client(*args: Any, server: str | None, token: str | None, config_path: Path | None,
                        **kwargs: Any) -> Any:
        client = ApiClient(resolve_connection(server, token, config_path))
        try:
            return function(client, *args, **kwargs)
        finally:
            client.close()

    return run_with_client
