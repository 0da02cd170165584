"""Text for calibration and evaluation: a prepared corpus name or a path to a text file."""

from __future__ import annotations

from pathlib import Path

import torch

from uniql.errors import DataError


def load_corpus(spec: str) -> list[str]:
    """Documents of a prepared corpus (``calibration``, ``wiki``, ``books``) or of a UTF-8 file, one per line."""
    path = Path(spec)
    if path.suffix or path.is_file():
        if not path.is_file():
            raise DataError(f"text file {spec} does not exist; pass a UTF-8 file with one document per line")
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    from uniql.data.texts import load_documents

    return load_documents(spec)


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def calibration_windows(model_dir: Path, config) -> torch.Tensor:
    """Packed calibration windows ``[samples, length]``; raises DataError before any model work."""
    from uniql.data.calibration import pack_token_windows

    documents = load_corpus(config.calibration_text)
    return pack_token_windows(
        load_tokenizer(model_dir), documents, config.calibration_samples, config.calibration_length, config.seed
    )
