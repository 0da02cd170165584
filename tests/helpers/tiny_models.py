"""Tiny random Hugging Face models and a tiny byte-level BPE tokenizer for tests.

They exercise every code path of the real models (GQA or MHA, tied or untied embeddings,
Qwen2-style q/k/v biases) in well under a second.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "Compression keeps the most important channels of every layer.",
    "An edge device chooses the pruning rate that fits in its free memory.",
    "Rotary position embeddings rotate pairs of dimensions by position.",
    "Quantization stores each weight in four bits with a scale per group.",
] * 4

TINY_SHAPES = {
    "llama": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=64),
    "llama-mha": dict(hidden_size=96, intermediate_size=192, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, head_dim=64),
    "qwen2": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32),
}

VOCAB_SIZE = 384


def make_tiny_tokenizer(path: Path):
    """Train a byte-level BPE tokenizer on a few sentences and save it to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(TINY_TEXT, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
    )
    wrapped.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    wrapped.save_pretrained(str(path))
    return wrapped


def make_tiny_model_dir(
    path: Path, family: str = "llama", tied: bool = False, seed: int = 0, init_std: float = 0.08
) -> Path:
    """Write a random tiny model of ``family`` (llama, llama-mha or qwen2) to ``path``."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer(path)
    shape = dict(TINY_SHAPES[family], vocab_size=len(tokenizer), tie_word_embeddings=tied,
                 max_position_embeddings=256, initializer_range=init_std,
                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    if family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shape))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))
    _perturb_norms(model, seed)
    model.save_pretrained(str(path))
    return path


def _perturb_norms(model, seed: int) -> None:
    """Give norms and biases non-trivial values so folding and bias handling are really tested."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.2 * torch.randn(parameter.shape, generator=generator))
            elif name.endswith(".bias"):
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
