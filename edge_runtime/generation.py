"""Greedy and sampled generation over an ``Engine``, one sequence or a left-padded batch.

Batches are left-padded: every prompt ends at the same column, padding has attention mask 0 and
real tokens get positions 0, 1, ... so each row computes what it would compute alone (up to
floating-point summation order).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.engine import Engine


class SamplingError(ValueError):
    """A sampling parameter is out of range."""


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens; ``temperature == 0`` is greedy."""

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise SamplingError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise SamplingError(f"temperature must be between 0 and 2, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if len(self.stop) > 4 or any(not isinstance(text, str) or not text for text in self.stop):
            raise SamplingError(f"stop must be at most 4 non-empty strings, got {list(self.stop)!r}")


@dataclass
class GenerationStats:
    """Token counts and timings of one generate call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    finish_reasons: list[str] = field(default_factory=list)


def pick_tokens(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> np.ndarray:
    """Choose one token per row of ``logits [B, V]``."""
    if params.temperature == 0.0:
        return logits.argmax(axis=-1)
    scaled = logits.astype(np.float64) / params.temperature
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    chosen = np.empty(logits.shape[0], dtype=np.int64)
    for row, row_probs in enumerate(probs):
        order = np.argsort(-row_probs)
        cumulative = np.cumsum(row_probs[order])
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        keep = order[: int(np.searchsorted(cumulative, params.top_p) + 1)]
        kept_probs = row_probs[keep] / row_probs[keep].sum()
        chosen[row] = keep[rng.choice(len(keep), p=kept_probs)]
    return chosen


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask ``[B, T]`` with every prompt right-aligned."""
    width = max(len(prompt) for prompt in prompts)
    ids = np.full((len(prompts), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt):] = prompt
            mask[row, width - len(prompt):] = 1
    return ids, mask


def generate_tokens(
    engine: Engine, prompts: list[list[int]], params: SamplingParams, eos_ids: set[int],
    stats: GenerationStats | None = None,
) -> Iterator[np.ndarray]:
    """Yield the next token of every row, ``[B]`` per step, until all rows hit EOS or max_tokens.

    Rows that already finished keep receiving EOS; the caller ignores them.
    """
    if any(not prompt for prompt in prompts):
        raise SamplingError("every prompt needs at least one token")
    stats = stats if stats is not None else GenerationStats()
    pad_id = min(eos_ids) if eos_ids else 0
    ids, mask = left_pad(prompts, pad_id)
    total = ids.shape[1] + params.max_tokens
    if total > engine.max_context:
        raise SamplingError(f"prompt of {ids.shape[1]} tokens plus max_tokens {params.max_tokens} exceeds the "
                            f"context of {engine.max_context} tokens; shorten the prompt or lower max_tokens")
    rng = np.random.default_rng(params.seed)
    finished = np.zeros(len(prompts), dtype=bool)
    stats.prompt_tokens += int(mask.sum())

    started = time.perf_counter()
    logits, cache = engine.forward(ids, engine.empty_cache(len(prompts)), mask)
    stats.prefill_seconds += time.perf_counter() - started
    started = time.perf_counter()
    for step in range(params.max_tokens):
        tokens = np.where(finished, pad_id, pick_tokens(logits, params, rng))
        stats.completion_tokens += int((~finished).sum())
        finished |= np.isin(tokens, list(eos_ids))
        yield tokens
        if finished.all() or step == params.max_tokens - 1:
            break
        logits, cache = engine.forward(tokens[:, None], cache)
    stats.decode_seconds += time.perf_counter() - started


def greedy_continuation(engine: Engine, prompt: list[int], length: int) -> list[int]:
    """``length`` greedy tokens after ``prompt``, ignoring EOS (for parity checks)."""
    params = SamplingParams(max_tokens=length)
    return [int(tokens[0]) for tokens in generate_tokens(engine, [prompt], params, eos_ids=set())]
