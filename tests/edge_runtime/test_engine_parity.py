"""The onnxruntime engine against the PyTorch reference slicer, for every tiny family and rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_runtime.engine import Engine
from edge_runtime.generation import greedy_continuation
from tests.edge_runtime.conftest import FAMILIES
from tests.helpers.tiny_artifacts import TINY_RATES
from uniql.slicing import model_from_artifact

# fp32 compute on both sides; observed max difference is about 3e-6 on logits of magnitude ~3.
LOGITS_ATOL = 1e-4
VOCAB = 384


def reference_logits(artifact_dir, rate, ids):
    model = model_from_artifact(artifact_dir, rate)
    with torch.no_grad():
        return model(torch.tensor(ids))[:, -1].numpy()


def reference_greedy(artifact_dir, rate, prompt, length):
    model = model_from_artifact(artifact_dir, rate)
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(length):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("family,tied", FAMILIES)
@pytest.mark.parametrize("rate", TINY_RATES)
def test_last_logits_match_reference(tiny_artifacts, family, tied, rate):
    artifact_dir = tiny_artifacts(family, tied)
    ids = np.random.default_rng(1).integers(0, VOCAB, (2, 24))
    engine = Engine.load(artifact_dir, rate)

    got = engine.logits(ids)
    expected = reference_logits(artifact_dir, rate, ids)

    difference = np.abs(got - expected)
    assert difference.max() < LOGITS_ATOL, f"max diff {difference.max():.3g}, mean {difference.mean():.3g}"


@pytest.mark.parametrize("family,tied", FAMILIES)
@pytest.mark.parametrize("rate", [TINY_RATES[0], TINY_RATES[-1]])
def test_greedy_32_tokens_match_reference(tiny_artifacts, family, tied, rate):
    artifact_dir = tiny_artifacts(family, tied)
    prompt = [5, 17, 99, 240, 3, 77]
    engine = Engine.load(artifact_dir, rate)

    assert greedy_continuation(engine, prompt, 32) == reference_greedy(artifact_dir, rate, prompt, 32)


@pytest.mark.parametrize("family,tied", FAMILIES)
def test_kv_cache_decode_equals_recompute(tiny_artifacts, family, tied):
    engine = Engine.load(tiny_artifacts(family, tied), TINY_RATES[1])
    ids = np.random.default_rng(2).integers(0, VOCAB, (1, 30))

    logits, cache = engine.forward(ids[:, :10], engine.empty_cache(1))
    for column in range(10, 30):
        logits, cache = engine.forward(ids[:, column:column + 1], cache)
    full = engine.logits(ids)

    assert cache.length == 30
    assert np.abs(logits - full).max() < LOGITS_ATOL


@pytest.mark.parametrize("family,tied", FAMILIES)
def test_batch_of_two_equals_singles(tiny_artifacts, family, tied):
    from edge_runtime.generation import SamplingParams, generate_tokens

    engine = Engine.load(tiny_artifacts(family, tied), TINY_RATES[2])
    prompts = [[4, 8, 15, 16, 23, 42, 7, 9], [100, 200, 300]]
    params = SamplingParams(max_tokens=16)

    batched = np.stack(list(generate_tokens(engine, prompts, params, eos_ids=set())), axis=1)
    singles = [greedy_continuation(engine, prompt, 16) for prompt in prompts]

    assert batched[0].tolist() == singles[0]
    assert batched[1].tolist() == singles[1]


def test_padded_batch_logits_match_single(tiny_artifacts):
    from edge_runtime.generation import left_pad

    engine = Engine.load(tiny_artifacts("llama"), 0.0)
    prompts = [[4, 8, 15, 16, 23, 42], [100, 200]]
    ids, mask = left_pad(prompts, pad_id=0)

    batched, _ = engine.forward(ids, engine.empty_cache(2), mask)

    assert np.abs(batched[1] - engine.logits(np.array([prompts[1]]))[0]).max() < LOGITS_ATOL


def test_sampling_is_reproducible_with_seed(tiny_artifacts):
    from edge_runtime.generation import SamplingParams, generate_tokens

    engine = Engine.load(tiny_artifacts("llama"), 0.0)
    params = SamplingParams(max_tokens=12, temperature=0.9, top_p=0.8, seed=7)

    first = [int(t[0]) for t in generate_tokens(engine, [[1, 2, 3]], params, eos_ids=set())]
    second = [int(t[0]) for t in generate_tokens(engine, [[1, 2, 3]], params, eos_ids=set())]

    assert first == second
    assert len(first) == 12
