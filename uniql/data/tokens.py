"""Turn documents into one token stream and cut it into windows without padding.

Both calibration windows and perplexity windows come from this stream, so every token in a
window is real text or a document separator, never padding.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from uniql.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

MIN_SEQ_LEN = 16


def validate_window_shape(count: int, seq_len: int, count_name: str) -> None:
    """Raise ConfigError unless ``count`` >= 1 and ``seq_len`` >= 16 are integers."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"{count_name} must be an integer of at least 1, got {count!r}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < MIN_SEQ_LEN:
        raise ConfigError(f"seq_len must be an integer of at least {MIN_SEQ_LEN} tokens, got {seq_len!r}")


def token_stream(tokenizer: Any, documents: list[str], separator: str | None = None) -> torch.Tensor:
    """Tokenize ``documents`` and join them into a LongTensor of shape (N,).

    Documents are separated by the tokenizer's EOS token when ``separator`` is None. A text
    ``separator`` is prepended to every document but the first before tokenizing, so it gets the
    tokens it would get inside the joined text ("\n\n" before a word is two newline tokens in
    SmolLM2, not its single "\n\n" token). ``tokenizer`` is a Hugging Face tokenizer, called on
    a list of strings with ``add_special_tokens=False``. Raises DataError when the documents
    contain no text, and ConfigError when EOS is needed but the tokenizer has none.
    """
    texts = [document for document in documents if document.strip()]
    if not texts:
        raise DataError(f"the text is empty: {len(documents)} documents, none with any non-space character. "
                        "Pass documents that contain text, for example load_documents('calibration').")
    if separator is None:
        separator_ids = [_eos_token_id(tokenizer)]
    else:
        separator_ids = []
        texts = texts[:1] + [separator + text for text in texts[1:]]

    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream: list[int] = []
    for index, ids in enumerate(encoded):
        if index:
            stream.extend(separator_ids)
        stream.extend(ids)
    logger.debug("tokenized %d documents into %d tokens", len(texts), len(stream))
    return torch.tensor(stream, dtype=torch.long)


def _eos_token_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ConfigError(f"the tokenizer {type(tokenizer).__name__} has no eos_token_id, which separates "
                          "documents in the token stream. Set tokenizer.eos_token to one of its special tokens.")
    return eos


def require_tokens(stream: torch.Tensor, count: int, seq_len: int, count_name: str, documents: int) -> None:
    """Raise DataError unless ``stream`` contains at least ``count`` windows of ``seq_len`` tokens."""
    needed = count * seq_len
    if stream.numel() < needed:
        raise DataError(
            f"the text is too short: {documents} documents give {stream.numel()} tokens, but {count_name}={count} "
            f"windows of seq_len={seq_len} need {needed}. Add more documents or lower {count_name} or seq_len."
        )
