"""The main job on the real SmolLM2-135M-Instruct, with a small calibration set."""

from __future__ import annotations

import json
import math
import os

import pytest
from click.testing import CliRunner

from uniql.cli.main import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUALITY_BOUND = 1.3   # 4-bit rate 0 against fp32 on the same 2 windows; 8 x 512 windows give 1.12 (docs/benchmarks.md)


@pytest.fixture(scope="module")
def smollm2_dir():
    from uniql.assets.fetch import fetch_data, fetch_model

    fetch_data()
    return fetch_model("smollm2-135m", progress=False)


@pytest.fixture(scope="module")
def smollm2_artifact(smollm2_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "artifact"
    config = tmp_path_factory.mktemp("config") / "config.json"
    config.write_text(json.dumps({"eval_length": 256, "batch_size": 2}))
    result = CliRunner().invoke(cli, [
        "compress", str(smollm2_dir), "--out", str(out), "--config", str(config), "--rates", "0,0.35",
        "--calibration-samples", "8", "--calibration-length", "256", "--eval-windows", "2",
    ])
    assert result.exit_code == 0, result.output
    return out


def fp32_wiki_perplexity(model_dir, windows: int, length: int) -> float:
    from uniql.evaluation.perplexity import evaluation_windows, perplexity
    from uniql.modeling.adapters import load_model
    from uniql.pipeline.data import load_corpus, load_tokenizer
    from uniql.pipeline.evaluate_stage import logits_function

    token_windows = evaluation_windows(load_tokenizer(model_dir), load_corpus("wiki"), windows, length)
    return perplexity(logits_function(load_model(model_dir)), token_windows)


def test_compressed_smollm2_perplexity_is_finite_and_ordered(smollm2_artifact, smollm2_dir):
    result = CliRunner().invoke(cli, ["eval", str(smollm2_artifact), "--rates", "0,0.35", "--windows", "2",
                                      "--length", "256", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["rate"]: row for row in json.loads(result.stdout)["rates"]}
    assert set(rows) == {0.0, 0.35}
    for rate, row in rows.items():
        for text, value in row["perplexity"].items():
            assert value is not None and math.isfinite(value), f"rate {rate} {text}: perplexity {value}"
    assert rows[0.0]["perplexity"]["wiki"] < rows[0.35]["perplexity"]["wiki"]
    assert rows[0.0]["perplexity"]["books"] < rows[0.35]["perplexity"]["books"]
    fp32 = fp32_wiki_perplexity(smollm2_dir, 2, 256)
    assert rows[0.0]["perplexity"]["wiki"] < QUALITY_BOUND * fp32, f"fp32 wiki perplexity is {fp32:.2f}"
    assert rows[0.35]["bytes"] < rows[0.0]["bytes"]


def test_compressed_smollm2_is_small(smollm2_artifact, smollm2_dir):
    manifest = json.loads((smollm2_artifact / "manifest.json").read_text())
    fp32_bytes = sum(os.path.getsize(path) for path in smollm2_dir.glob("*.safetensors"))
    rate_zero = next(entry for entry in manifest["rate_table"] if entry["rate"] == 0.0)
    assert rate_zero["bytes"] <= 0.3 * fp32_bytes, f"{rate_zero['bytes']} bytes against {fp32_bytes} in fp32"


def test_generate_at_a_rate(smollm2_artifact):
    result = CliRunner().invoke(cli, ["generate", str(smollm2_artifact), "The capital of France is",
                                      "--rate", "0.35", "--max-tokens", "8", "--no-chat"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip(), "generation printed nothing"
