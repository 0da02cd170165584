"""Perplexity on fixed windows of a text corpus.

Perplexity is exp of the mean next-token negative log-likelihood over every predicted token:
a window of T tokens predicts tokens 2..T, so N windows contribute N * (T - 1) predictions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from uniql.data.tokens import require_tokens, token_stream, validate_window_shape
from uniql.errors import ConfigError, DataError, UniqlError
from uniql.evaluation.logits import LogitsFn

logger = logging.getLogger(__name__)

# Evaluation text is joined as plain paragraphs. An EOS separator would add, at every document
# boundary, the prediction of a chat control token (<|im_end|> in SmolLM2-Instruct), which
# measures chat formatting rather than language modelling.
DOCUMENT_SEPARATOR = "\n\n"


def evaluation_windows(
    tokenizer: Any, documents: list[str], n_windows: int, seq_len: int, separator: str = DOCUMENT_SEPARATOR
) -> torch.Tensor:
    """Return ``n_windows`` windows of ``seq_len`` tokens spread evenly over the corpus.

    The documents are joined with ``separator`` into one token stream of N tokens, and window i
    starts at token i * (N // n_windows), so the windows never overlap and sample the whole
    corpus rather than its first documents. Returns a LongTensor of shape (n_windows, seq_len).
    Raises ConfigError for n_windows < 1 or seq_len < 16, and DataError when the text is empty
    or shorter than n_windows * seq_len tokens.
    """
    validate_window_shape(n_windows, seq_len, "n_windows")
    stream = token_stream(tokenizer, documents, separator)
    require_tokens(stream, n_windows, seq_len, "n_windows", len(documents))

    stride = stream.numel() // n_windows
    return torch.stack([stream[index * stride : index * stride + seq_len] for index in range(n_windows)])


def perplexity(
    logits_fn: LogitsFn,
    windows: torch.Tensor,
    batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Return the perplexity of ``logits_fn`` on ``windows`` (a LongTensor of shape (N, T)).

    Windows run ``batch_size`` at a time. The per-token log-likelihoods come from float32
    log-softmax and are summed in float64. ``progress``, when given, is called after each batch
    with the number of windows done and the total. Raises UniqlError when the logits have the
    wrong shape or are not finite.
    """
    _validate_windows(windows, batch_size)
    count, length = windows.shape
    total_nll = torch.zeros((), dtype=torch.float64)
    started = time.monotonic()

    for begin in range(0, count, batch_size):
        batch = windows[begin : begin + batch_size]                        # (B, T)
        logits = logits_fn(batch)                                           # (B, T, V)
        _check_logits(logits, batch)
        predicted = logits[:, :-1].float()                                  # (B, T-1, V)
        targets = batch[:, 1:].to(predicted.device)                         # (B, T-1)
        token_nll = F.cross_entropy(predicted.transpose(1, 2), targets, reduction="none")  # (B, T-1)
        total_nll += token_nll.double().sum().cpu()
        if progress is not None:
            progress(min(begin + batch_size, count), count)

    predictions = count * (length - 1)
    mean_nll = total_nll.item() / predictions
    if not math.isfinite(mean_nll):
        raise UniqlError(f"the mean negative log-likelihood is {mean_nll}, so the model's logits contain NaN or inf")
    value = math.exp(mean_nll)
    logger.info("perplexity %.3f over %d windows of %d tokens (%d predictions) in %.1f s",
                value, count, length, predictions, time.monotonic() - started)
    return value


def _validate_windows(windows: torch.Tensor, batch_size: int) -> None:
    if not isinstance(windows, torch.Tensor):
        raise DataError(f"windows must be a 2-D LongTensor (N, T), got a {type(windows).__name__}. "
                        "Build them with evaluation_windows().")
    if windows.dim() != 2 or windows.dtype != torch.long:
        description = f"{windows.dtype} tensor of shape {tuple(windows.shape)}"
        raise DataError(f"windows must be a 2-D LongTensor (N, T), got a {description}. "
                        "Build them with evaluation_windows().")
    if windows.shape[0] < 1 or windows.shape[1] < 2:
        raise DataError(f"windows of shape {tuple(windows.shape)} predict no token. Pass at least one window "
                        "of at least 2 tokens")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer of at least 1, got {batch_size!r}")


def _check_logits(logits: torch.Tensor, batch: torch.Tensor) -> None:
    if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(batch.shape):
        raise UniqlError(f"logits_fn returned shape {tuple(logits.shape)} for input of shape {tuple(batch.shape)}, "
                         "expected (B, T, vocabulary size)")
