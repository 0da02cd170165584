"""Convert a GGUF checkpoint to a plain float32 Hugging Face directory, and check the result.

Loading a GGUF with transformers dequantizes every tensor, which takes 25 to 40 s for
SmolLM2-135M on 2 CPU cores. The saved directory reloads in under a second, so the conversion
runs once per cache. This module imports torch and transformers, so import it only to convert.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

# Set before transformers is imported, so huggingface_hub never tries the network. Loads also
# pass local_files_only=True, which covers a caller that imported transformers earlier.
os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from uniql.errors import UniqlError  # noqa: E402

logger = logging.getLogger(__name__)

# Keys that transformers 5.25 writes into tokenizer_config.json after a local load. They describe
# that load, not the tokenizer, and local_files_only would follow the directory to other machines.
_LOAD_ONLY_TOKENIZER_KEYS = ("is_local", "local_files_only")
_VERIFY_TEXT = "The capital of France is Paris. It has 2,102,650 residents (2023)."


def load_gguf(gguf_path: Path, progress: bool):
    """Load the model (dequantized to float32) and the tokenizer from ``gguf_path``."""
    previous = transformers_logging.is_progress_bar_enabled()
    if not progress:
        transformers_logging.disable_progress_bar()
    try:
        kwargs = dict(gguf_file=gguf_path.name, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
    finally:
        if previous:
            transformers_logging.enable_progress_bar()
    model.eval()
    return model, tokenizer


def save_hf_dir(model: PreTrainedModel, tokenizer, directory: Path) -> None:
    """Save ``model`` and ``tokenizer`` as a plain Hugging Face directory.

    transformers 5 refuses to save a GGUF-loaded model while it still carries the GGUF quantizer,
    although the weights are already float32, so the quantizer and its config are dropped first.
    """
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # GGUF metadata carries no maximum length, so the tokenizer would report 1e30.
    tokenizer.model_max_length = model.config.max_position_embeddings

    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    _complete_tokenizer_config(directory, tokenizer.chat_template)


def _complete_tokenizer_config(directory: Path, chat_template: str | None) -> None:
    """Copy the chat template into tokenizer_config.json and drop the load-only keys.

    transformers 5 saves the template to chat_template.jinja. The edge runtime reads
    tokenizer_config.json without transformers, so the template goes there as well.
    """
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in _LOAD_ONLY_TOKENIZER_KEYS:
        config.pop(key, None)
    if chat_template:
        config["chat_template"] = chat_template
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def verify_hf_dir(model: PreTrainedModel, tokenizer, directory: Path) -> None:
    """Reload ``directory`` and raise UniqlError unless it matches the in-memory model exactly."""
    reloaded_tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    expected_ids = tokenizer(_VERIFY_TEXT, add_special_tokens=False)["input_ids"]
    reloaded_ids = reloaded_tokenizer(_VERIFY_TEXT, add_special_tokens=False)["input_ids"]
    if reloaded_ids != expected_ids:
        raise UniqlError(f"the saved tokenizer in {directory} encodes a test sentence differently: "
                         f"{reloaded_ids} instead of {expected_ids}")
    if not reloaded_tokenizer.chat_template:
        raise UniqlError(f"the saved tokenizer in {directory} has no chat template")

    reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, local_files_only=True)
    reloaded.eval()
    input_ids = torch.tensor([expected_ids])
    with torch.inference_mode():
        expected = model(input_ids=input_ids).logits
        actual = reloaded(input_ids=input_ids).logits
    if not torch.equal(expected, actual):
        difference = (expected - actual).abs()
        raise UniqlError(
            f"the model saved in {directory} gives different logits after reload "
            f"(max difference {difference.max().item():.3g}, mean {difference.mean().item():.3g})"
        )


def parameter_count(model: PreTrainedModel) -> int:
    """Return the number of distinct parameters (tied embeddings count once)."""
    return sum(parameter.numel() for parameter in model.parameters())
