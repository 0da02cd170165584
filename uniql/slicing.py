"""PyTorch reference slicer: materialize a model at one rate, from float weights or an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from uniql.artifact import Artifact, QuantizedTensor
from uniql.artifact.layout import kept_ranges, kept_size_for
from uniql.modeling.adapters import arch_config_from_hf
from uniql.modeling.model import DecoderModel, LayerKept


def slice_tensor(tensor: torch.Tensor, spec: dict[str, Any], kept: list[LayerKept]) -> torch.Tensor:
    """Cut one float tensor to the kept ranges its spec gives at these kept sizes."""
    slice_spec = spec.get("slice")
    if slice_spec is None:
        return tensor
    axis = int(slice_spec["axis"])
    size = kept_size_for(slice_spec, kept[int(spec["layer"])].as_dict())
    ranges = kept_ranges(slice_spec, tensor.shape[axis], size)
    index = torch.cat([torch.arange(start, stop) for start, stop in ranges])
    return tensor.index_select(axis, index.to(tensor.device)).contiguous()


def slice_model(model: DecoderModel, specs: dict[str, dict[str, Any]], kept: list[LayerKept]) -> DecoderModel:
    """Return ``model`` cut to ``kept`` sizes (float weights, e.g. a sorted model before quantization)."""
    params = {}
    for name, tensor in model.params.items():
        spec = specs.get(name)
        params[name] = slice_tensor(tensor, spec, kept) if spec is not None else tensor
    return DecoderModel(model.config, params)


def model_from_artifact(artifact: Artifact | Path | str, rate: float, dtype: torch.dtype = torch.float32) -> DecoderModel:
    """Dequantize an artifact at ``rate`` into a ``DecoderModel`` (the reference the engine must match)."""
    if not isinstance(artifact, Artifact):
        artifact = Artifact.open(artifact)
    config = arch_config_from_hf(artifact.manifest["model"]["hf_config"])
    params = {}
    for name, value in artifact.load_tensors(rate).items():
        if isinstance(value, QuantizedTensor):
            array = value.dequantize()
        else:
            array = np.asarray(value)
        tensor = torch.from_numpy(np.array(array))
        params[name] = tensor.long() if name.endswith("rope_pairs") else tensor.to(dtype)
    return DecoderModel(config, params)
