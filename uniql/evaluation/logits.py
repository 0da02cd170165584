"""The function type through which evaluation calls a model, and an adapter for transformers models."""

from __future__ import annotations

from collections.abc import Callable

import torch

# Maps input ids of shape (B, T) to next-token logits of shape (B, T, V). Evaluation depends only
# on this, so the same code scores a transformers model, a sliced model or an ONNX session.
LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def model_logits_fn(model: torch.nn.Module) -> LogitsFn:
    """Wrap a causal language model (a transformers ``*ForCausalLM``) as a LogitsFn.

    The model is put in eval mode and runs under ``torch.inference_mode`` on the device of its
    first parameter. The logits are returned on the CPU as float32.
    """
    model.eval()
    device = next(model.parameters()).device

    def logits_fn(input_ids: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            output = model(input_ids=input_ids.to(device), use_cache=False)
        return output.logits.float().cpu()

    return logits_fn
