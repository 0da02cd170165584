"""Model adapters: read a Hugging Face model directory into a ``DecoderModel``.

Supported families: Llama (MHA or GQA, tied or untied embeddings, optional attention biases)
and Qwen2 (biases on q, k and v). Checks run before any weight is read, so a bad model fails
in milliseconds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from uniql.errors import UnsupportedModelError
from uniql.modeling.config import ArchConfig
from uniql.modeling.model import DecoderModel

logger = logging.getLogger(__name__)

FAMILIES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
STATIC_ROPE_TYPES = {"default", "linear", "llama3", "yarn", "proportional"}


def read_hf_config(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise UnsupportedModelError(
            f"{model_dir} is not a Hugging Face model directory: config.json is missing. "
            "Pass the directory printed by 'uniql assets fetch' or one saved with save_pretrained()."
        )
    return json.loads(path.read_text())


def arch_config_from_hf(hf_config: dict[str, Any]) -> ArchConfig:
    """Validate a Hugging Face config and describe it; raise UnsupportedModelError otherwise."""
    architectures = hf_config.get("architectures") or []
    family = next((FAMILIES[name] for name in architectures if name in FAMILIES), None)
    if family is None:
        raise UnsupportedModelError(
            f"unsupported architecture {architectures or hf_config.get('model_type')!r}; "
            f"supported: {', '.join(sorted(FAMILIES))}"
        )
    _check_head_dim(hf_config)
    transformers_config = _transformers_config(hf_config)
    _check_shapes(transformers_config, family)
    inv_freq, scaling = _rope_frequencies(transformers_config, family)

    heads = transformers_config.num_attention_heads
    return ArchConfig(
        family=family,
        hidden_size=transformers_config.hidden_size,
        num_layers=transformers_config.num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=transformers_config.num_key_value_heads or heads,
        head_dim=getattr(transformers_config, "head_dim", None) or transformers_config.hidden_size // heads,
        intermediate_size=transformers_config.intermediate_size,
        vocab_size=transformers_config.vocab_size,
        rms_norm_eps=transformers_config.rms_norm_eps,
        hidden_act=transformers_config.hidden_act,
        max_position_embeddings=transformers_config.max_position_embeddings,
        tie_word_embeddings=bool(getattr(transformers_config, "tie_word_embeddings", False)),
        qkv_bias=family == "qwen2" or bool(getattr(transformers_config, "attention_bias", False)),
        o_bias=family == "llama" and bool(getattr(transformers_config, "attention_bias", False)),
        inv_freq=inv_freq.tolist(),
        rope_attention_scaling=float(scaling),
        bos_token_id=transformers_config.bos_token_id,
        eos_token_id=transformers_config.eos_token_id,
        hf_config=hf_config,
    )


def _check_head_dim(hf_config: dict[str, Any]) -> None:
    heads = hf_config.get("num_attention_heads") or 1
    head_dim = hf_config.get("head_dim") or hf_config.get("hidden_size", 0) // heads
    if head_dim % 2:
        raise UnsupportedModelError(
            f"head_dim {head_dim} is odd; RoPE pairs dims (j, j + head_dim/2), so head_dim must be even"
        )


def _transformers_config(hf_config: dict[str, Any]):
    from transformers import AutoConfig

    data = dict(hf_config)
    model_type = data.pop("model_type", None)
    if model_type is None:
        raise UnsupportedModelError("config.json has no model_type; is it a Hugging Face transformers config?")
    try:
        return AutoConfig.for_model(model_type, **data)
    except (ValueError, TypeError) as error:
        raise UnsupportedModelError(f"config.json is invalid for model_type {model_type!r}: {error}") from error


def _check_shapes(config, family: str) -> None:
    heads = config.num_attention_heads
    kv_heads = config.num_key_value_heads or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    if heads % kv_heads:
        raise UnsupportedModelError(f"{heads} query heads do not split into {kv_heads} KV groups")
    if head_dim % 2:
        raise UnsupportedModelError(
            f"head_dim {head_dim} is odd; RoPE pairs dims (j, j + head_dim/2), so head_dim must be even"
        )
    if config.hidden_act != "silu":
        raise UnsupportedModelError(f"hidden_act {config.hidden_act!r} is not supported; only 'silu' (SwiGLU MLP) is")
    if getattr(config, "mlp_bias", False):
        raise UnsupportedModelError("MLP biases (mlp_bias=true) are not supported yet")
    if family == "qwen2" and getattr(config, "use_sliding_window", False):
        raise UnsupportedModelError("Qwen2 with use_sliding_window=true is not supported; only full attention is")


def _rope_frequencies(config, family: str) -> tuple[torch.Tensor, float]:
    rope_type = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope_type not in STATIC_ROPE_TYPES:
        raise UnsupportedModelError(
            f"RoPE type {rope_type!r} changes with the sequence length; supported: {', '.join(sorted(STATIC_ROPE_TYPES))}"
        )
    if family == "qwen2":
        from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding as Rotary
    else:
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding as Rotary
    rotary = Rotary(config)
    return rotary.inv_freq.float(), float(rotary.attention_scaling)


def load_model(model_dir: Path, dtype: torch.dtype = torch.float32) -> DecoderModel:
    """Load a supported Hugging Face model directory as a ``DecoderModel`` in ``dtype``."""
    model_dir = Path(model_dir)
    config = arch_config_from_hf(read_hf_config(model_dir))
    raw = _read_safetensors(model_dir)

    params: dict[str, torch.Tensor] = {}
    for name, tensor in raw.items():
        canonical = name.removeprefix("model.")
        if canonical.endswith("rotary_emb.inv_freq"):
            continue
        params[canonical] = tensor.to(dtype)
    if "lm_head.weight" not in params:
        params["lm_head.weight"] = params["embed_tokens.weight"]

    params["rope_inv_freq"] = torch.tensor(config.inv_freq, dtype=torch.float32)
    identity_pairs = torch.arange(config.head_dim // 2).repeat(config.num_key_value_heads, 1)
    for index in range(config.num_layers):
        params[f"layers.{index}.self_attn.rope_pairs"] = identity_pairs.clone()
    _check_params(config, params)
    logger.info("loaded %s (%s, %d layers) from %s", config.family, config.hf_config.get("architectures"), config.num_layers, model_dir)
    return DecoderModel(config, params)


def _read_safetensors(model_dir: Path) -> dict[str, torch.Tensor]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise UnsupportedModelError(f"no *.safetensors weights in {model_dir}; save the model with safe_serialization=True")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return tensors


def _check_params(config: ArchConfig, params: dict[str, torch.Tensor]) -> None:
    expected = ["embed_tokens.weight", "norm.weight"]
    for index in range(config.num_layers):
        expected += [
            f"layers.{index}.{suffix}.weight"
            for suffix in ("input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                           "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
        ]
    missing = [name for name in expected if name not in params]
    if missing:
        raise UnsupportedModelError(f"the weights lack {len(missing)} tensors, first {missing[:3]}; is the checkpoint complete?")
