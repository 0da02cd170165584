"""Tests of uniql.data.calibration.pack_token_windows and the token stream behind it."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.tiny_models import TINY_TEXT, make_tiny_tokenizer
from uniql.data.calibration import pack_token_windows
from uniql.data.tokens import token_stream
from uniql.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def documents():
    return [f"Document {index}: " + " ".join(TINY_TEXT[index % 5 : index % 5 + 3]) for index in range(12)]


def _is_slice_of(window: torch.Tensor, stream: torch.Tensor, seq_len: int) -> bool:
    starts = range(0, stream.numel() - seq_len + 1, seq_len)
    return any(torch.equal(window, stream[start : start + seq_len]) for start in starts)


def test_token_stream_joins_documents_with_eos(tokenizer):
    first = tokenizer("alpha beta", add_special_tokens=False)["input_ids"]
    second = tokenizer("gamma", add_special_tokens=False)["input_ids"]
    stream = token_stream(tokenizer, ["alpha beta", "   ", "gamma"])
    assert stream.tolist() == first + [tokenizer.eos_token_id] + second


def test_token_stream_text_separator_tokenized_in_place(tokenizer):
    joined = tokenizer("alpha beta\n\ngamma", add_special_tokens=False)["input_ids"]
    assert token_stream(tokenizer, ["alpha beta", "gamma"], separator="\n\n").tolist() == joined


def test_windows_have_shape_and_no_padding(tokenizer, documents):
    windows = pack_token_windows(tokenizer, documents, n_samples=6, seq_len=16, seed=0)
    stream = token_stream(tokenizer, documents)

    assert windows.shape == (6, 16)
    assert windows.dtype == torch.long
    for window in windows:
        assert _is_slice_of(window, stream, 16)
    assert len({tuple(window.tolist()) for window in windows}) == 6
    assert (windows == tokenizer.eos_token_id).sum() > 0, "documents must be separated by EOS"


def test_windows_depend_only_on_seed(tokenizer, documents):
    first = pack_token_windows(tokenizer, documents, n_samples=4, seq_len=16, seed=7)
    again = pack_token_windows(tokenizer, documents, n_samples=4, seq_len=16, seed=7)
    other = pack_token_windows(tokenizer, documents, n_samples=4, seq_len=16, seed=8)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_exactly_enough_tokens_uses_all(tokenizer, documents):
    stream = token_stream(tokenizer, documents)
    count = stream.numel() // 16
    windows = pack_token_windows(tokenizer, documents, n_samples=count, seq_len=16, seed=0)
    assert sorted(map(tuple, windows.tolist())) == sorted(map(tuple, stream[: count * 16].view(count, 16).tolist()))


@pytest.mark.parametrize("documents", [[], [""], ["  ", "\n\t"]])
def test_empty_text_raises_data_error(tokenizer, documents):
    with pytest.raises(DataError, match="the text is empty"):
        pack_token_windows(tokenizer, documents, n_samples=1, seq_len=16, seed=0)


def test_short_text_reports_token_counts(tokenizer):
    available = token_stream(tokenizer, ["The quick brown fox."]).numel()
    with pytest.raises(DataError) as error:
        pack_token_windows(tokenizer, ["The quick brown fox."], n_samples=2, seq_len=16, seed=0)
    message = str(error.value)
    assert f"give {available} tokens" in message
    assert "need 32" in message
    assert "lower n_samples or seq_len" in message


@pytest.mark.parametrize("n_samples", [0, -3, 1.5, True, "4"])
def test_bad_n_samples_raises_config_error(tokenizer, documents, n_samples):
    with pytest.raises(ConfigError, match="n_samples must be an integer of at least 1"):
        pack_token_windows(tokenizer, documents, n_samples=n_samples, seq_len=16, seed=0)


@pytest.mark.parametrize("seq_len", [15, 0, 16.0, None])
def test_bad_seq_len_raises_config_error(tokenizer, documents, seq_len):
    with pytest.raises(ConfigError, match="seq_len must be an integer of at least 16 tokens"):
        pack_token_windows(tokenizer, documents, n_samples=1, seq_len=seq_len, seed=0)


def test_tokenizer_without_eos_raises_config_error(tokenizer, documents):
    class NoEos:
        eos_token_id = None

        def __call__(self, texts, add_special_tokens):
            return tokenizer(texts, add_special_tokens=add_special_tokens)

    with pytest.raises(ConfigError, match="no eos_token_id"):
        pack_token_windows(NoEos(), documents, n_samples=1, seq_len=16, seed=0)


@pytest.mark.integration
def test_real_calibration_windows():
    from transformers import AutoTokenizer

    from uniql.assets import fetch_model
    from uniql.data.texts import load_documents

    tokenizer = AutoTokenizer.from_pretrained(fetch_model("smollm2-135m", progress=False))
    documents = load_documents("calibration")
    windows = pack_token_windows(tokenizer, documents, n_samples=128, seq_len=512, seed=0)
    assert windows.shape == (128, 512)
    assert torch.equal(windows, pack_token_windows(tokenizer, documents, n_samples=128, seq_len=512, seed=0))
    assert int(windows.max()) < len(tokenizer)
