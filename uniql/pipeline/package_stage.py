"""The package stage: cut the quantized model into bands and write the artifact."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

import uniql
from uniql.artifact import QuantizedTensor
from uniql.artifact.writer import ArtifactContent, write_artifact
from uniql.pipeline import checkpoints as ckpt
from uniql.pipeline.context import StageContext
from uniql.pipeline.stages import ARTIFACT_DIR, STAGES, read_allocation
from uniql.specs import tensor_specs

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")
DENSE_DTYPES = {"f32": np.float32, "f16": np.float16, "i16": np.int16}


def source_digest(model_dir: Path) -> str:
    """sha256 over config.json and the safetensors files, in name order."""
    hasher = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")) + [Path(model_dir) / "config.json"]:
        hasher.update(path.name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def build_tensors(arch, state: dict[str, Any], zero_point: bool) -> dict[str, tuple[dict, Any]]:
    dense = state["dense"]
    has_bias = {name.removesuffix(".bias"): True for name in dense if name.endswith(".bias")}
    specs = tensor_specs(arch, state["groups"], zero_point, has_bias)
    tensors = {}
    for name, spec in specs.items():
        if spec["format"] == "q4":
            weight = state["weights"][name]
            zeros = weight["zeros"].numpy() if zero_point else None
            value = QuantizedTensor.from_codes(weight["codes"].numpy(), weight["scales"].numpy(), zeros, spec["group_size"])
        else:
            value = dense[name].detach().cpu().numpy().astype(DENSE_DTYPES[spec["format"]])
        tensors[name] = (spec, value)
    return tensors


def run_package(context: StageContext) -> dict[str, Any]:
    from uniql.modeling.adapters import arch_config_from_hf, read_hf_config

    config = context.config
    arch = arch_config_from_hf(read_hf_config(context.model_dir))
    state = torch.load(context.workdir / "quantize" / "quantized.pt", weights_only=False)
    allocation = read_allocation(context.workdir)
    tokenizer_files = {
        name: (context.model_dir / name).read_bytes() for name in TOKENIZER_FILES if (context.model_dir / name).is_file()
    }
    content = ArtifactContent(
        model={"family": arch.family, "config": arch.manifest_config(), "hf_config": arch.hf_config},
        tensors=build_tensors(arch, state, zero_point=config.scheme == "asymmetric"),
        rates=allocation["rates"],
        kept=allocation["kept"],
        tokenizer_files=tokenizer_files,
        quantization={"method": config.method, "bits": config.bits, "scheme": config.scheme,
                      "group_size": config.group_size, "groups": state["groups"],
                      "rotation": {"kind": state["rotation"], "seed": config.rotation_seed},
                      "embedding": "round-to-nearest", "gptq_order": config.gptq_order},
        provenance={
            "source_model_digest": source_digest(context.model_dir),
            "calibration": {"text": config.calibration_text, "samples": config.calibration_samples,
                            "length": config.calibration_length, "seed": config.seed},
            "pipeline_config": config.to_dict(),
            "code_version": uniql.__version__,
            "block_influence": allocation["block_influence"],
            "stage_seconds": _stage_seconds(context.workdir),
        },
    )
    out = context.workdir / ARTIFACT_DIR
    if out.exists():
        shutil.rmtree(out)
    manifest = write_artifact(content, out)
    table = {f"{row['rate']:g}": row["bytes"] for row in manifest["rate_table"]}
    logger.info("packaged %d bands into %s; bytes per rate %s", len(manifest["bands"]), out, table)
    return {"bytes": table, "bands": len(manifest["bands"])}


def _stage_seconds(workdir: Path) -> dict[str, float]:
    seconds = {}
    for stage in STAGES:
        if ckpt.is_done(workdir, stage):
            seconds[stage] = ckpt.read_metrics(workdir, stage).get("seconds", 0.0)
    return seconds
