"""Low-rank adapters on the prunable linears of a ``DecoderModel``, and their merge.

An adapted linear computes ``x W^T + b + scaling * dropout(x) A^T B^T`` with ``A [r, in]`` and
``B [out, r]``. ``B`` starts at zero, so an untrained adapter leaves the model unchanged.
The delta is added inside ``DecoderModel._linear``, before the masked forward zeroes the dropped
q/k/v and MLP channels, so a rate masks the delta exactly as it masks the base weights. o_proj and
down_proj read inputs whose dropped channels are already zero, so their delta on those inputs
vanishes as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from uniql.modeling.model import DecoderModel, layer_name

PRUNABLE_LINEARS = (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
)


@dataclass
class LoraAdapters:
    """Trainable ``A`` and ``B`` matrices keyed by linear name (``layers.3.mlp.up_proj``)."""

    rank: int
    scaling: float
    a: dict[str, torch.Tensor] = field(default_factory=dict)
    b: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def create(cls, model: DecoderModel, rank: int, scaling: float, seed: int) -> "LoraAdapters":
        """Adapters for every prunable linear: ``A`` uniform in ``±1/sqrt(in)``, ``B`` zero."""
        generator = torch.Generator().manual_seed(seed)
        adapters = cls(rank, scaling)
        for index in range(model.config.num_layers):
            for module in PRUNABLE_LINEARS:
                name = layer_name(index, module)
                weight = model.params[f"{name}.weight"]
                out_features, in_features = weight.shape
                bound = 1.0 / math.sqrt(in_features)
                a = (torch.rand(rank, in_features, generator=generator) * 2 - 1) * bound
                adapters.a[name] = a.to(weight.device).requires_grad_(True)
                adapters.b[name] = torch.zeros(out_features, rank, device=weight.device, requires_grad=True)
        return adapters

    def parameters(self) -> list[torch.Tensor]:
        return [tensor for name in sorted(self.a) for tensor in (self.a[name], self.b[name])]

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"{name}.lora_a": tensor.detach().clone() for name, tensor in self.a.items()}
        state.update({f"{name}.lora_b": tensor.detach().clone() for name, tensor in self.b.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy saved values into the existing tensors (the optimizer keeps pointing at them)."""
        expected = set(self.state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(f"adapter state does not match the model: missing {missing[:4]}, unexpected {extra[:4]}")
        with torch.no_grad():
            for name in self.a:
                self.a[name].copy_(state[f"{name}.lora_a"])
                self.b[name].copy_(state[f"{name}.lora_b"])

    def delta(self, name: str) -> torch.Tensor:
        """Weight update ``scaling * B A`` of linear ``name``, shape ``[out, in]``."""
        return self.scaling * (self.b[name] @ self.a[name])


class LoraDecoderModel(DecoderModel):
    """A frozen ``DecoderModel`` with adapters added to its prunable linears.

    ``dropout`` applies to the adapter input only while ``training`` is set. Its masks come from
    ``generator`` so that a resumed run draws the same masks as an uninterrupted one.
    """

    def __init__(self, base: DecoderModel, adapters: LoraAdapters, dropout: float = 0.0):
        super().__init__(base.config, base.params)
        self.adapters = adapters
        self.dropout = dropout
        self.training = False
        self.generator: torch.Generator | None = None

    def _linear(self, index: int, module: str, x: torch.Tensor) -> torch.Tensor:
        output = super()._linear(index, module, x)
        name = layer_name(index, module)
        if name not in self.adapters.a:
            return output
        adapter_input = self._dropout(x)
        low_rank = F.linear(adapter_input, self.adapters.a[name])                  # (B, T, r)
        return output + self.adapters.scaling * F.linear(low_rank, self.adapters.b[name])

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropout == 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.dropout
        return x * keep.to(x.dtype) / (1.0 - self.dropout)


def merge_adapters(model: DecoderModel, adapters: LoraAdapters) -> DecoderModel:
    """Return a new model with ``W <- W + scaling * B A`` in every adapted linear, biases unchanged."""
    params = dict(model.params)
    with torch.no_grad():
        for name in adapters.a:
            key = f"{name}.weight"
            weight = model.params[key]
            params[key] = weight + adapters.delta(name).to(weight.device, weight.dtype)
    return DecoderModel(model.config, params)
