"""Masked LoRA fine-tuning: masks equal slices, training lowers held-out loss, runs resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_artifacts import tiny_config, write_random_calibration
from tests.helpers.tiny_models import make_tiny_model_dir
from uniql.errors import ConfigError
from uniql.finetune import FinetuneConfig, LoraAdapters, LoraDecoderModel, MaskedLoraTrainer, merge_adapters
from uniql.finetune.stage import kept_sizes_by_rate
from uniql.modeling.adapters import arch_config_from_hf, read_hf_config
from uniql.pipeline import Cancelled, run_stage
from uniql.pipeline import checkpoints as ckpt
from uniql.pipeline.stages import read_allocation
from uniql.slicing import slice_model
from uniql.specs import tensor_specs

FAMILIES = ("llama", "llama-mha", "qwen2")
SLICE_ATOL = 1e-5       # fp32 masked vs sliced forward: same maths, different summation lengths


def prepare_sorted(root: Path, family: str, **overrides):
    """Sort and allocate a tiny random model. Returns (model_dir, workdir, sorted model, kept by rate)."""
    model_dir = make_tiny_model_dir(root / "model", family)
    workdir = root / "work"
    config = tiny_config(**overrides)
    write_random_calibration(model_dir, workdir, config)
    for stage in ("sort", "allocate"):
        run_stage(stage, model_dir, workdir, config)
    arch = arch_config_from_hf(read_hf_config(model_dir))
    model = ckpt.load_saved_model(arch, workdir / "sort" / "model.safetensors")
    return model_dir, workdir, model, kept_sizes_by_rate(read_allocation(workdir))


@pytest.fixture(scope="module", params=FAMILIES)
def sorted_family(request, tmp_path_factory):
    return prepare_sorted(tmp_path_factory.mktemp(request.param), request.param)


def specs_for(model):
    has_bias = {name.removesuffix(".bias"): True for name in model.params if name.endswith(".bias")}
    return tensor_specs(model.config, {"hidden": 32, "o_proj": 16, "down_proj": 16}, True, has_bias)


def random_adapters(model, seed: int = 3) -> LoraAdapters:
    """Adapters with non-zero ``B`` so that the delta really reaches every output channel."""
    adapters = LoraAdapters.create(model, rank=4, scaling=2.0, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, b in adapters.b.items():
            b.copy_(0.05 * torch.randn(b.shape, generator=generator))
    return adapters


def max_diff(a: torch.Tensor, b: torch.Tensor) -> str:
    difference = (a - b).abs()
    return f"max diff {difference.max().item():.3e}, mean diff {difference.mean().item():.3e}"


def structured_windows(count: int, length: int, vocab: int, offset: int) -> torch.Tensor:
    """Windows of a fixed cycle of 11 tokens at shifted starts: learnable next-token structure."""
    cycle = torch.tensor([5, 17, 42, 8, 99, 23, 61, 7, 150, 33, 12]) % vocab
    starts = torch.arange(count) * 3 + offset
    positions = starts[:, None] + torch.arange(length)[None, :]
    return cycle[positions % cycle.numel()]


def small_config(**overrides) -> FinetuneConfig:
    settings = {"rank": 4, "alpha": 8.0, "dropout": 0.05, "learning_rate": 3e-3, "steps": 12, "warmup_steps": 2,
                "seq_len": 32, "micro_batch": 4, "grad_accum": 1, "train_windows": 16, "eval_windows": 4,
                "rate_sampling": "uniform", "eval_every": 4}
    settings.update(overrides)
    return FinetuneConfig.from_dict(settings)


def test_masked_lora_equals_sliced_merged(sorted_family):
    _, _, model, kept_by_rate = sorted_family
    adapters = random_adapters(model)
    adapted = LoraDecoderModel(model, adapters)
    merged = merge_adapters(model, adapters)
    specs = specs_for(model)
    input_ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))

    for rate, kept in kept_by_rate.items():
        sliced = slice_model(merged, specs, kept)(input_ids)
        with torch.no_grad():
            before_merge = adapted(input_ids, kept=kept)
        after_merge = merged(input_ids, kept=kept)
        assert torch.allclose(before_merge, sliced, atol=SLICE_ATOL), f"rate {rate} unmerged: {max_diff(before_merge, sliced)}"
        assert torch.allclose(after_merge, sliced, atol=SLICE_ATOL), f"rate {rate} merged: {max_diff(after_merge, sliced)}"


def test_pruned_rates_change_with_adapter_delta(sorted_family):
    # Guards the test above: the adapters must move the outputs, or equality would prove nothing.
    _, _, model, kept_by_rate = sorted_family
    merged = merge_adapters(model, random_adapters(model))
    input_ids = torch.randint(0, model.config.vocab_size, (1, 8), generator=torch.Generator().manual_seed(1))
    kept = kept_by_rate[max(kept_by_rate)]
    assert not torch.allclose(merged(input_ids, kept=kept), model(input_ids, kept=kept), atol=1e-3)


def test_untrained_merge_equals_sorted(sorted_family):
    _, _, model, kept_by_rate = sorted_family
    adapters = LoraAdapters.create(model, rank=8, scaling=2.0, seed=0)
    merged = merge_adapters(model, adapters)
    for name, tensor in model.params.items():
        assert torch.equal(merged.params[name], tensor), f"{name} changed by a zero-initialised adapter"

    input_ids = torch.randint(0, model.config.vocab_size, (1, 10), generator=torch.Generator().manual_seed(2))
    kept = kept_by_rate[0.0]
    with torch.no_grad():
        adapted = LoraDecoderModel(model, adapters)(input_ids, kept=kept)
    assert torch.equal(adapted, model(input_ids, kept=kept))


def test_training_lowers_heldout_loss_every_rate(tmp_path):
    _, _, model, kept_by_rate = prepare_sorted(tmp_path, "llama")
    vocab = model.config.vocab_size
    train = structured_windows(16, 32, vocab, offset=0)
    held_out = structured_windows(4, 32, vocab, offset=1)     # other phases of the cycle than most training rows
    trainer = MaskedLoraTrainer(model, kept_by_rate, small_config(steps=24, eval_every=24))
    result = trainer.train(train, held_out)

    initial, final = result.history[0]["eval_loss_by_rate"], result.history[-1]["eval_loss_by_rate"]
    trained_rates = {str(rate) for rate in kept_by_rate}
    assert set(initial) == trained_rates
    for rate in trained_rates:
        assert final[rate] < 0.8 * initial[rate], f"rate {rate}: held-out loss {initial[rate]:.3f} -> {final[rate]:.3f}"
    assert result.best_step == 24


def test_training_keeps_base_frozen(tmp_path):
    _, _, model, kept_by_rate = prepare_sorted(tmp_path, "qwen2")
    original = {name: tensor.clone() for name, tensor in model.params.items()}
    vocab = model.config.vocab_size
    trainer = MaskedLoraTrainer(model, kept_by_rate, small_config(steps=2, eval_every=2))
    trainer.train(structured_windows(8, 32, vocab, 0), structured_windows(4, 32, vocab, 1))
    for name, tensor in model.params.items():
        assert torch.equal(tensor, original[name]), f"{name} was modified by training"


def test_resume_continues_from_checkpoint(tmp_path):
    _, _, model, kept_by_rate = prepare_sorted(tmp_path, "llama")
    vocab = model.config.vocab_size
    train, held_out = structured_windows(16, 32, vocab, 0), structured_windows(4, 32, vocab, 1)
    config = small_config(steps=8, eval_every=4, checkpoint_every=2)
    reference = MaskedLoraTrainer(model, kept_by_rate, config).train(train, held_out)

    checkpoint = tmp_path / "checkpoint.pt"

    def interrupt_after_five(step, total, metrics):
        if step == 5:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        MaskedLoraTrainer(model, kept_by_rate, config).train(train, held_out, checkpoint, interrupt_after_five)
    assert torch.load(checkpoint, weights_only=False)["step"] == 4

    seen_steps = []
    resumed = MaskedLoraTrainer(model, kept_by_rate, config).train(
        train, held_out, checkpoint, lambda step, total, metrics: seen_steps.append(step)
    )
    assert resumed.start_step == 4
    assert seen_steps == [5, 6, 7, 8]
    for name, tensor in reference.model.params.items():
        assert torch.allclose(resumed.model.params[name], tensor, atol=1e-6), f"{name}: {max_diff(resumed.model.params[name], tensor)}"


def test_cancel_writes_checkpoint(tmp_path):
    _, _, model, kept_by_rate = prepare_sorted(tmp_path, "llama-mha")
    vocab = model.config.vocab_size
    config = small_config(steps=6, eval_every=6, checkpoint_every=6)
    checkpoint = tmp_path / "checkpoint.pt"

    def cancel_at_three(step, total, metrics):
        if step == 3:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        MaskedLoraTrainer(model, kept_by_rate, config).train(
            structured_windows(8, 32, vocab, 0), structured_windows(4, 32, vocab, 1), checkpoint, cancel_at_three
        )
    assert torch.load(checkpoint, weights_only=False)["step"] == 3


def test_finetune_stage_writes_model(tmp_path):
    text = tmp_path / "finetune.txt"
    sentences = ["The quick brown fox jumps over the lazy dog.", "Quantization stores each weight in four bits."]
    text.write_text("\n".join(sentences * 60), encoding="utf-8")
    finetune = {"enabled": True, "rank": 4, "steps": 3, "warmup_steps": 1, "seq_len": 32, "micro_batch": 2,
                "grad_accum": 1, "train_windows": 8, "eval_windows": 2, "eval_every": 3, "learning_rate": 1e-3,
                "text": str(text)}
    model_dir, workdir, _, _ = prepare_sorted(tmp_path, "llama", finetune=finetune)
    config = tiny_config(finetune=finetune)
    events = []
    metrics = run_stage("finetune", model_dir, workdir, config, progress=events.append)

    assert (workdir / "finetune" / "model.safetensors").is_file()
    assert metrics["best_step"] in (0, 3)
    assert any("fine-tuning step 3/3" in event.message for event in events)
    assert run_stage("quantize", model_dir, workdir, config)["method"] == "gptq"


@pytest.mark.parametrize("settings, fragment", [
    ({"rank": 0}, "rank=0"),
    ({"dropout": 1.0}, "dropout=1.0"),
    ({"rate_sampling": "linear"}, "rate_sampling='linear'"),
    ({"text": "wiki"}, "evaluation corpus"),
    ({"steps": 0, "alpha": -1}, "alpha=-1"),
    ({"eval_rates": []}, "eval_rates"),
])
def test_config_rejects_invalid_values(settings, fragment):
    with pytest.raises(ConfigError, match=fragment):
        FinetuneConfig.from_dict(settings)


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown finetune keys \\['lora_rank'\\]"):
        FinetuneConfig.from_dict({"lora_rank": 8})


def test_config_defaults():
    config = FinetuneConfig.from_dict({})
    assert (config.rank, config.alpha, config.dropout, config.seq_len) == (8, 16.0, 0.05, 256)
    assert config.scaling == 2.0


def test_exponential_rate_probabilities():
    from uniql.finetune import rate_probabilities

    probabilities = rate_probabilities([0.0, 0.15, 0.35], "exponential", 0.1)
    weights = torch.exp(-0.1 * torch.arange(3, dtype=torch.float64))
    expected = (weights / weights.sum()).tolist()
    assert list(probabilities) == [0.35, 0.15, 0.0]
    assert list(probabilities.values()) == pytest.approx(expected, abs=1e-12)
    assert rate_probabilities([0.0, 0.2], "uniform", 0.1) == {0.2: 0.5, 0.0: 0.5}
