"""Architecture description shared by the adapters, the pipeline and the artifact manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ArchConfig:
    """Shape and numerics of a Llama-family decoder.

    ``inv_freq`` contains the RoPE inverse frequencies with any scaling already applied, so the
    runtime never needs to know the RoPE variant.
    """

    family: str
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    hidden_act: str
    max_position_embeddings: int
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    inv_freq: list[float]
    rope_attention_scaling: float = 1.0
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    hf_config: dict[str, Any] = field(default_factory=dict)

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def softmax_scale(self) -> float:
        return self.head_dim ** -0.5

    def manifest_config(self) -> dict[str, Any]:
        """Return the runtime part of the manifest's ``model.config``."""
        data = asdict(self)
        for key in ("hf_config", "inv_freq", "family", "qkv_bias", "o_bias", "tie_word_embeddings"):
            data.pop(key)
        data["softmax_scale"] = self.softmax_scale
        return data
