"""``uniql jobs|models|tokens|devices`` against a live service: output and exit codes of each outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from services.admin_cli.client import (
    EXIT_API_ERROR,
    EXIT_AUTH,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from tests.dashboard.stack import ServiceStack, publish_evaluated_artifact, submit_job
from tests.services.fixtures import free_port
from uniql.cli.main import cli

pytestmark = pytest.mark.integration

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def run(tmp_path: Path, idle_stack: ServiceStack):
    """Run ``uniql ARGS`` with the stack's submit token, an empty config home and ``env`` on top."""

    def invoke(*args: str, token: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        environment = {"UNIQL_SERVER": idle_stack.url, "UNIQL_TOKEN": token or idle_stack.submit_token,
                       "XDG_CONFIG_HOME": str(tmp_path / "config"), **(env or {})}
        return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)

    return invoke


def test_jobs_list_json(run, idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "cli-list")
    result = run("jobs", "list", "--json")
    assert result.exit_code == 0, result.output
    ids = [item["id"] for item in json.loads(result.stdout)["items"]]
    assert job["id"] in ids


def test_jobs_list_table(run, idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "cli-table")
    result = run("jobs", "list", "--model", "cli-table")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "PROGRESS", "STAGE", "PUBLISHES", "CREATED"]
    assert lines[1].startswith(job["id"])
    assert "acme/cli-table:latest" in lines[1]


def test_jobs_submit_uploads_directory(run, tiny_model_dir):
    result = run("jobs", "submit", str(tiny_model_dir), "--model", "cli-submit", "--tag", "v2", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["state"] == "queued"
    assert job["reference"] == "acme/cli-submit:v2"
    assert "uploading" in result.stderr


def test_jobs_submit_rejects_invalid_pipeline_config(run, tmp_path, idle_source_model):
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps({"bits": 3}))
    result = run("jobs", "submit", "--source-model-id", idle_source_model, "--model", "cli-bad",
                 "--config", str(config))
    assert result.exit_code == EXIT_API_ERROR
    assert "bits=3 is not supported" in result.stderr


def test_jobs_submit_needs_one_source(run, tiny_model_dir, idle_source_model):
    result = run("jobs", "submit", str(tiny_model_dir), "--source-model-id", idle_source_model, "--model", "x")
    assert result.exit_code == EXIT_USAGE
    assert "either MODEL_DIR or --source-model-id" in result.stderr


def test_jobs_show_and_logs(run, idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "cli-show")
    shown = run("jobs", "show", job["id"])
    assert shown.exit_code == 0, shown.output
    assert f"job {job['id']}: queued, 0 %, publishes acme/cli-show:latest" in shown.stdout
    for stage in job["stages"]:
        assert stage["name"] in shown.stdout

    logs = run("jobs", "logs", job["id"])
    assert logs.exit_code == 0, logs.output
    assert "state job created: acme/cli-show:latest, queued" in logs.stdout


def test_jobs_cancel_retry_and_conflict(run, idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "cli-cancel")
    cancelled = run("jobs", "cancel", job["id"])
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == f"job {job['id']}: cancelled"

    again = run("jobs", "cancel", job["id"])
    assert again.exit_code == EXIT_API_ERROR
    assert "only queued or running jobs can be cancelled" in again.stderr

    retried = run("jobs", "retry", job["id"])
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.strip() == f"job {job['id']}: queued (retry 1)"


def test_unknown_job_is_exit_5(run):
    for verb in ("show", "cancel", "retry", "logs"):
        result = run("jobs", verb, UNKNOWN_ID)
        assert result.exit_code == EXIT_NOT_FOUND, verb
        assert f"job {UNKNOWN_ID} not found" in result.stderr


def test_bad_token_is_exit_4(run):
    result = run("jobs", "list", token="uq_invalid")
    assert result.exit_code == EXIT_AUTH
    assert "authentication failed (401)" in result.stderr


def test_missing_scope_is_exit_4(run, idle_stack):
    result = run("jobs", "list", token=idle_stack.pull_token)
    assert result.exit_code == EXIT_AUTH
    assert "needs the 'submit' scope" in result.stderr


def test_missing_token_is_exit_4(run):
    result = run("jobs", "list", env={"UNIQL_TOKEN": None})
    assert result.exit_code == EXIT_AUTH
    assert "no API token" in result.stderr


def test_server_down_is_exit_3(run):
    result = run("jobs", "list", env={"UNIQL_SERVER": f"http://127.0.0.1:{free_port()}"})
    assert result.exit_code == EXIT_UNREACHABLE
    assert "cannot reach the server" in result.stderr


def test_usage_error_is_exit_2(run):
    result = run("jobs", "list", "--state", "sleeping")
    assert result.exit_code == EXIT_USAGE
    assert "Invalid value for '--state'" in result.stderr


def test_config_file_supplies_server_and_token(run, tmp_path, idle_stack):
    config = tmp_path / "config" / "uniql" / "cli.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'server = "{idle_stack.url}"\ntoken = "{idle_stack.submit_token}"\n')
    result = run("jobs", "list", "--json", env={"UNIQL_SERVER": None, "UNIQL_TOKEN": None})
    assert result.exit_code == 0, result.output


def test_flag_overrides_environment(run, idle_stack):
    result = run("jobs", "list", "--token", idle_stack.submit_token, token="uq_invalid")
    assert result.exit_code == 0, result.output


def test_broken_config_file_is_exit_2(run, tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("server = [unclosed")
    result = run("jobs", "list", "--cli-config", str(config))
    assert result.exit_code == EXIT_USAGE
    assert f"cannot read the config file {config}" in result.stderr


def test_tokens_create_list_revoke(run, idle_stack):
    created = run("tokens", "create", "cli-made", "--scope", "pull", "--namespace", "acme", "--json",
                  token=idle_stack.admin_token)
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)
    assert token["secret"].startswith("uq_")
    assert token["scopes"] == ["pull"]

    listed = run("tokens", "list", "--json", token=idle_stack.admin_token)
    assert token["id"] in [item["id"] for item in json.loads(listed.stdout)]

    revoked = run("tokens", "revoke", str(token["id"]), token=idle_stack.admin_token)
    assert revoked.exit_code == 0, revoked.output
    assert run("devices", "list", token=token["secret"]).exit_code == EXIT_AUTH
    assert run("tokens", "revoke", "999999", token=idle_stack.admin_token).exit_code == EXIT_NOT_FOUND


def test_tokens_create_prints_only_secret_on_stdout(run, idle_stack):
    result = run("tokens", "create", "cli-plain", "--scope", "submit", "--namespace", "cli-new",
                 "--create-namespace", token=idle_stack.admin_token)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("uq_")
    assert "namespace cli-new created" in result.stderr


def test_tokens_need_admin_scope(run):
    result = run("tokens", "list")
    assert result.exit_code == EXIT_AUTH
    assert "needs the 'admin' scope" in result.stderr


def test_devices_list_and_show(run, idle_stack):
    with idle_stack.client(idle_stack.pull_token) as api:
        device = api.post("/v1/devices", json={"name": "cli-board", "hardware": {"cpu": "arm64"}}).json()
        beat = {"rate": 0.15, "bands": [0, 1, 2], "available_memory_bytes": 3_500_000_000, "tokens_per_second": 21.5}
        assert api.post(f"/v1/devices/{device['id']}/heartbeats", json=beat).status_code == 201

    listed = run("devices", "list", "--json", token=idle_stack.pull_token)
    assert listed.exit_code == 0, listed.output
    assert device["id"] in [item["id"] for item in json.loads(listed.stdout)["items"]]

    shown = run("devices", "show", device["id"], token=idle_stack.pull_token)
    assert shown.exit_code == 0, shown.output
    assert "cpu: arm64" in shown.stdout
    assert shown.stdout.splitlines()[-1].split()[2:] == ["15%", "0,1,2", "3.50", "GB", "21.5"]

    assert run("devices", "show", UNKNOWN_ID).exit_code == EXIT_NOT_FOUND


def test_models_list_show_delete_and_gc(run, idle_stack, tmp_path):
    publish_evaluated_artifact(idle_stack, tmp_path, "cli-model")
    listed = run("models", "list", "--json", token=idle_stack.pull_token)
    assert listed.exit_code == 0, listed.output
    names = {(item["namespace"], item["name"]) for item in json.loads(listed.stdout)["items"]}
    assert ("acme", "cli-model") in names

    shown = run("models", "show", "acme/cli-model:v1", token=idle_stack.pull_token)
    assert shown.exit_code == 0, shown.output
    assert "PPL books  PPL wiki  piqa %" in shown.stdout
    assert "0%    " in shown.stdout

    assert run("models", "show", "acme/cli-model:nope").exit_code == EXIT_NOT_FOUND
    assert run("models", "show", "not-a-reference").exit_code == EXIT_USAGE
    assert run("models", "delete", "acme/cli-model:v1", token=idle_stack.pull_token).exit_code == EXIT_AUTH

    deleted = run("models", "delete", "acme/cli-model:v1", token=idle_stack.admin_token)
    assert deleted.exit_code == 0, deleted.output
    assert run("models", "show", "acme/cli-model:v1").exit_code == EXIT_NOT_FOUND

    collected = run("models", "gc", "--json", token=idle_stack.admin_token)
    assert collected.exit_code == 0, collected.output
    assert json.loads(collected.stdout)["manifests_deleted"] >= 1


def test_models_tag_points_new_tag(run, idle_stack, tmp_path):
    publish_evaluated_artifact(idle_stack, tmp_path, "cli-tagged")
    result = run("models", "tag", "acme/cli-tagged:v1", "stable", token=idle_stack.admin_token)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_jobs_submit_wait_shows_progress_until_success(run, working_stack, tiny_model_dir, tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text('rates = [0.0, 0.35]\ncalibration_samples = 4\ncalibration_length = 64\nfinetune = {enabled = false}\n'
                      'eval_windows = 2\neval_length = 64\nbatch_size = 2\n')
    result = run("jobs", "submit", str(tiny_model_dir), "--model", "cli-wait", "--config", str(config), "--wait",
                 "--poll-interval", "0.5", env={"UNIQL_SERVER": working_stack.url,
                                                "UNIQL_TOKEN": working_stack.submit_token})
    assert result.exit_code == 0, result.output
    assert "succeeded, 100 %, publishes acme/cli-wait:latest" in result.stdout
    assert "100%" in result.stderr
