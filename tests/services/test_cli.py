"""Command-line entry points: ``uniql serve``/``uniql worker`` help and the first admin token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from services.app import create_app
from services.settings import Settings
from tests.services.fixtures import auth
from uniql.cli.main import cli

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("verb", ["serve", "worker"])
def test_verb_help_lists_options(verb):
    result = CliRunner().invoke(cli, [verb, "--help"])
    assert result.exit_code == 0, result.output
    assert "--database-url" in result.output
    assert "--broker-url" in result.output


def test_create_admin_token_from_command_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    output = subprocess.run([sys.executable, "-m", "services.tokens", "--database-url", url, "--name", "first"],
                            cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=True).stdout
    token = output.strip().splitlines()[-1]
    assert token.startswith("uq_")
    settings = Settings(home=tmp_path, database_url=url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        created = client.post("/v1/namespaces", json={"name": "team"}, headers=auth(token))
    assert created.status_code == 201
