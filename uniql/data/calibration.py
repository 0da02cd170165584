"""Calibration windows: packed token sequences without padding, picked with a seed.

Every token of a window is text or the EOS token between two documents, so calibration
statistics never see pad tokens and need no attention mask.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from uniql.data.tokens import require_tokens, token_stream, validate_window_shape

logger = logging.getLogger(__name__)


def pack_token_windows(tokenizer: Any, documents: list[str], n_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """Return ``n_samples`` windows of ``seq_len`` tokens as a LongTensor of shape (n_samples, seq_len).

    The documents are tokenized and joined with EOS in between, the stream is cut into
    consecutive full windows (the remainder is dropped), and ``n_samples`` distinct windows are
    chosen by a permutation seeded with ``seed``. The same inputs always give the same tensor.
    Raises ConfigError for n_samples < 1 or seq_len < 16, and DataError when the text is empty or
    yields fewer than n_samples * seq_len tokens.
    """
    validate_window_shape(n_samples, seq_len, "n_samples")
    stream = token_stream(tokenizer, documents)
    require_tokens(stream, n_samples, seq_len, "n_samples", len(documents))

    available = stream.numel() // seq_len
    windows = stream[: available * seq_len].view(available, seq_len)  # (available, seq_len)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(available, generator=generator)[:n_samples]
    logger.info("packed %d calibration windows of %d tokens, chosen with seed %d from %d windows (%d tokens)",
                n_samples, seq_len, seed, available, stream.numel())
    return windows[chosen].clone()
