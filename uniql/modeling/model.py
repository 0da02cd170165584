"""Functional forward pass of a Llama-family decoder at full, masked or sliced sizes.

Weights live in a flat dict with the artifact's tensor names (docs/artifact-format.md).
Three modes share one code path:
- full: the weights as loaded or sorted;
- masked: full-size weights, with the channels a rate drops zeroed (fine-tuning, tests);
- sliced: weights already cut to a rate (the reference slicer); kept sizes follow the shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from uniql.modeling.config import ArchConfig

# observer(point, layer_index, tensor); points: layer_input, attn_input, o_input, mlp_input,
# down_input, layer_output (layer_index is -1 for final_norm_output)
Observer = Callable[[str, int, torch.Tensor], None]


@dataclass(frozen=True)
class LayerKept:
    """Kept sizes of one layer: the head dim of every attention head and the MLP width."""

    attn_head_dim: int
    mlp: int

    def as_dict(self) -> dict[str, int]:
        return {"attn_head_dim": self.attn_head_dim, "mlp": self.mlp}


def layer_name(index: int, suffix: str) -> str:
    return f"layers.{index}.{suffix}"


@dataclass
class DecoderModel:
    """A decoder as a config plus a flat dict of weights."""

    config: ArchConfig
    params: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> "DecoderModel":
        return DecoderModel(self.config, {name: tensor.to(device) for name, tensor in self.params.items()})

    def layer_param(self, index: int, suffix: str) -> torch.Tensor | None:
        return self.params.get(layer_name(index, suffix))

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.params["embed_tokens.weight"])

    def forward(
        self,
        input_ids: torch.Tensor,
        kept: list[LayerKept] | None = None,
        observer: Observer | None = None,
    ) -> torch.Tensor:
        """Return logits ``[B, T, V]``; ``kept`` turns on masked mode."""
        hidden = self.embed(input_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        for index in range(self.config.num_layers):
            layer_kept = kept[index] if kept is not None else None
            hidden = self.layer_forward(index, hidden, positions, layer_kept, observer)
        return self.head(hidden, observer)

    __call__ = forward

    def head(self, hidden: torch.Tensor, observer: Observer | None = None) -> torch.Tensor:
        normed = rms_norm(hidden, self.params["norm.weight"], self.config.rms_norm_eps)
        if observer is not None:
            observer("final_norm_output", -1, normed)
        return F.linear(normed, self.params["lm_head.weight"])

    def layer_forward(
        self,
        index: int,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        kept: LayerKept | None = None,
        observer: Observer | None = None,
    ) -> torch.Tensor:
        """Run decoder layer ``index`` on the residual stream ``hidden [B, T, d]``."""
        eps = self.config.rms_norm_eps
        if observer is not None:
            observer("layer_input", index, hidden)

        normed = rms_norm(hidden, self.layer_param(index, "input_layernorm.weight"), eps)
        hidden = hidden + self.attention(index, normed, positions, kept, observer)

        normed = rms_norm(hidden, self.layer_param(index, "post_attention_layernorm.weight"), eps)
        hidden = hidden + self.mlp(index, normed, kept, observer)

        if observer is not None:
            observer("layer_output", index, hidden)
        return hidden

    def attention(
        self, index: int, x: torch.Tensor, positions: torch.Tensor, kept: LayerKept | None, observer: Observer | None
    ) -> torch.Tensor:
        cfg = self.config
        batch, length, _ = x.shape
        if observer is not None:
            observer("attn_input", index, x)

        q = self._linear(index, "self_attn.q_proj", x)
        k = self._linear(index, "self_attn.k_proj", x)
        v = self._linear(index, "self_attn.v_proj", x)
        head_dim = q.shape[-1] // cfg.num_attention_heads
        q = q.view(batch, length, cfg.num_attention_heads, head_dim)      # (B, T, Hq, k)
        k = k.view(batch, length, cfg.num_key_value_heads, head_dim)      # (B, T, Hkv, k)
        v = v.view(batch, length, cfg.num_key_value_heads, head_dim)

        if kept is not None:
            pair_mask = head_pair_mask(head_dim, kept.attn_head_dim, x.device, x.dtype)
            q = q * pair_mask
            k = k * pair_mask
            v = v * head_prefix_mask(head_dim, kept.attn_head_dim, x.device, x.dtype)

        pairs = self.layer_param(index, "self_attn.rope_pairs")[:, : head_dim // 2]
        cos, sin = rope_tables(self.params["rope_inv_freq"], pairs, positions, cfg.rope_attention_scaling)
        k = apply_rope(k, cos, sin)
        q = apply_rope(q, cos.repeat_interleave(cfg.group_size, dim=1), sin.repeat_interleave(cfg.group_size, dim=1))

        k = k.repeat_interleave(cfg.group_size, dim=2)
        v = v.repeat_interleave(cfg.group_size, dim=2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, scale=cfg.softmax_scale
        )                                                                  # (B, Hq, T, k)
        out = out.transpose(1, 2).reshape(batch, length, cfg.num_attention_heads * head_dim)
        if observer is not None:
            observer("o_input", index, out)
        return self._linear(index, "self_attn.o_proj", out)

    def mlp(self, index: int, x: torch.Tensor, kept: LayerKept | None, observer: Observer | None) -> torch.Tensor:
        if observer is not None:
            observer("mlp_input", index, x)
        inner = F.silu(self._linear(index, "mlp.gate_proj", x)) * self._linear(index, "mlp.up_proj", x)
        if kept is not None:
            inner = inner * prefix_mask(inner.shape[-1], kept.mlp, x.device, x.dtype)
        if observer is not None:
            observer("down_input", index, inner)
        return self._linear(index, "mlp.down_proj", inner)

    def _linear(self, index: int, module: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.layer_param(index, f"{module}.weight"), self.layer_param(index, f"{module}.bias"))


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    variance = x.pow(2).mean(dim=-1, keepdim=True)
    return x * torch.rsqrt(variance + eps) * weight


def rope_tables(
    inv_freq: torch.Tensor, pairs: torch.Tensor, positions: torch.Tensor, scaling: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos and sin ``[T, Hkv, k/2]`` for each KV head's kept pairs, by original frequency."""
    angles = positions.to(inv_freq.dtype)[:, None, None] * inv_freq[pairs.long()][None]
    return angles.cos() * scaling, angles.sin() * scaling


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on ``x [B, T, H, k]`` where pair ``t`` is ``(t, t + k/2)``."""
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


def prefix_mask(size: int, kept: int, device, dtype) -> torch.Tensor:
    mask = torch.zeros(size, device=device, dtype=dtype)
    mask[:kept] = 1
    return mask


def head_prefix_mask(head_dim: int, kept: int, device, dtype) -> torch.Tensor:
    """Mask ``[head_dim]`` keeping ``[0, kept)``; broadcasts over heads."""
    return prefix_mask(head_dim, kept, device, dtype)


def head_pair_mask(head_dim: int, kept: int, device, dtype) -> torch.Tensor:
    """Mask ``[head_dim]`` keeping the first ``kept/2`` RoPE pairs: ``[0, k/2)`` and ``[dh/2, dh/2 + k/2)``."""
    mask = torch.zeros(head_dim, device=device, dtype=dtype)
    mask[: kept // 2] = 1
    mask[head_dim // 2 : head_dim // 2 + kept // 2] = 1
    return mask
