"""Tar archives of model directories for upload tests, good and malicious."""

from __future__ import annotations

import io
import json
import tarfile

# config.json of a tiny Llama (the shape of tests.helpers.tiny_models "llama"), enough for
# uniql.pipeline.validate_model_dir; no weights are needed to create a job.
TINY_LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
    "vocab_size": 384, "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "hidden_act": "silu",
    "rope_theta": 10000.0, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 0,
}


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def model_archive(prefix: str = "", extra: dict[str, bytes] | None = None, compress: bool = True) -> bytes:
    """Return a tar(.gz) of a model directory holding config.json (and ``extra`` files) under ``prefix``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as archive:
        _add_file(archive, f"{prefix}config.json", json.dumps(TINY_LLAMA_CONFIG).encode())
        for name, data in (extra or {}).items():
            _add_file(archive, f"{prefix}{name}", data)
    return buffer.getvalue()


def archive_with_member(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    """Return a tar of config.json plus one crafted member (a traversal path, a link or a device)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _add_file(archive, "config.json", json.dumps(TINY_LLAMA_CONFIG).encode())
        if member.isreg():
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
        else:
            archive.addfile(member)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info
