"""Bad input gets a clear error before calibration starts, and stored artifacts are never overwritten silently."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from uniql.cli.main import cli
from uniql.errors import ConfigError, UnsupportedModelError
from uniql.pipeline import CompressConfig, validate_model_dir


def edited_model(source, target, **changes):
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config.update(changes)
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_unsupported_architecture(tiny_model_dirs, tmp_path):
    model_dir = edited_model(tiny_model_dirs[("llama", False)], tmp_path / "m", architectures=["GPT2LMHeadModel"])
    with pytest.raises(UnsupportedModelError, match="unsupported architecture.*LlamaForCausalLM"):
        validate_model_dir(model_dir, CompressConfig())


def test_odd_head_dim(tiny_model_dirs, tmp_path):
    model_dir = edited_model(tiny_model_dirs[("llama", False)], tmp_path / "m", head_dim=63)
    with pytest.raises(UnsupportedModelError, match="head_dim 63 is odd"):
        validate_model_dir(model_dir, CompressConfig())


def test_group_size_that_cannot_tile(tiny_model_dirs, tmp_path):
    model_dir = edited_model(tiny_model_dirs[("llama", False)], tmp_path / "m", hidden_size=200)
    with pytest.raises(ConfigError, match="cannot tile hidden size 200"):
        validate_model_dir(model_dir, CompressConfig())


def test_head_dim_step_that_does_not_divide(tiny_model_dirs):
    with pytest.raises(ConfigError, match="head_dim_step=24"):
        validate_model_dir(tiny_model_dirs[("llama", False)], CompressConfig.from_dict({"head_dim_step": 24}))


@pytest.mark.parametrize("rates", [[-0.1], [0.9], [0.95], [0.2, 0.2], []])
def test_rate_outside_range(rates):
    with pytest.raises(ConfigError):
        CompressConfig.from_dict({"rates": rates})


@pytest.mark.parametrize("settings,message", [
    ({"group_size": 48}, "power of two"),
    ({"bits": 3}, "only 4-bit"),
    ({"method": "awq"}, "choose one of gptq, rtn"),
    ({"calibration_samples": 0}, "positive integer"),
    ({"calibration_length": 8}, "too short"),
    ({"learning_rate": 1.0}, "unknown config keys"),
])
def test_invalid_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        CompressConfig.from_dict(settings)


def test_cli_rejects_bad_rate_before_work(tiny_model_dirs, tmp_path):
    result = CliRunner().invoke(cli, ["compress", str(tiny_model_dirs[("llama", False)]), "--out", str(tmp_path / "a"),
                                      "--rates", "0,0.95"])
    assert result.exit_code == 1
    assert "rate 0.95 is outside [0, 0.9)" in result.output
    assert not (tmp_path / "a.work").exists(), "no stage may start on invalid input"


def test_cli_rejects_empty_calibration_text(tiny_model_dirs, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = CliRunner().invoke(cli, ["compress", str(tiny_model_dirs[("llama", False)]), "--out", str(tmp_path / "a"),
                                      "--calibration-text", str(empty)])
    assert result.exit_code == 1
    assert "empty" in result.output.lower()


def test_cli_rejects_short_calibration_text(tiny_model_dirs, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Only a few words here.\n")
    result = CliRunner().invoke(cli, ["compress", str(tiny_model_dirs[("llama", False)]), "--out", str(tmp_path / "a"),
                                      "--calibration-text", str(short), "--calibration-samples", "4"])
    assert result.exit_code == 1
    assert "token" in result.output.lower()


def test_cli_never_overwrites_a_different_artifact(tiny_model_dirs, tiny_artifacts, tmp_path):
    out = tmp_path / "existing"
    shutil.copytree(tiny_artifacts[("qwen2", False)], out)
    before = (out / "manifest.json").read_bytes()
    result = CliRunner().invoke(cli, ["compress", str(tiny_model_dirs[("llama", False)]), "--out", str(out)])
    assert result.exit_code == 1
    assert "already contains a different artifact" in result.output
    assert (out / "manifest.json").read_bytes() == before


def test_cli_rejects_non_empty_directory_without_artifact(tiny_model_dirs, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["compress", str(tiny_model_dirs[("llama", False)]), "--out", str(out)])
    assert result.exit_code == 1
    assert "contains no artifact" in result.output
    assert (out / "notes.txt").read_text() == "keep me"


def test_cli_reports_missing_model_directory(tmp_path):
    result = CliRunner().invoke(cli, ["compress", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "config.json is missing" in result.output
