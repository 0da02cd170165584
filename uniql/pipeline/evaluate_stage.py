"""The evaluate stage: perplexity (and optionally task accuracy) of the artifact at every rate."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from uniql.artifact import Artifact
from uniql.artifact.writer import write_manifest
from uniql.pipeline.context import StageContext

logger = logging.getLogger(__name__)

DEFAULT_TEXTS = {"wiki": "wiki", "books": "books"}


def logits_function(model):
    @torch.no_grad()
    def logits(input_ids: torch.Tensor) -> torch.Tensor:
        return model(input_ids)

    return logits


def evaluate_artifact(
    artifact_dir: Path, rates: list[float] | None, windows: int, length: int,
    tasks: list[str] | None = None, task_limit: int | None = None, progress=None, texts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Measure every requested rate and store the results in the manifest; return them by rate."""
    from uniql.evaluation.perplexity import evaluation_windows, perplexity
    from uniql.pipeline.data import load_corpus
    from uniql.slicing import model_from_artifact

    artifact = Artifact.open(artifact_dir)
    tokenizer = artifact_tokenizer(artifact)
    texts = texts or DEFAULT_TEXTS
    eval_windows = {name: evaluation_windows(tokenizer, load_corpus(spec), windows, length) for name, spec in texts.items()}
    rates = artifact.rates if rates is None else rates
    results: dict[str, Any] = {}
    for position, rate in enumerate(rates):
        model = model_from_artifact(artifact, rate)
        row: dict[str, Any] = {"perplexity": {}}
        for name, token_windows in eval_windows.items():
            value = perplexity(logits_function(model), token_windows)
            row["perplexity"][name] = value if math.isfinite(value) else None
        if tasks:
            from uniql.evaluation.tasks import evaluate_tasks

            row["tasks"] = evaluate_tasks(logits_function(model), tokenizer, tasks, task_limit, seed=0)
        row["settings"] = {"windows": windows, "length": length, "task_limit": task_limit}
        artifact.rate_entry(rate)["eval"] = row
        results[f"{rate:g}"] = row
        logger.info("rate %.2f: perplexity %s", rate, row["perplexity"])
        if progress is not None:
            progress(position + 1, len(rates))
    write_manifest(artifact.root, artifact.manifest)
    return results


def artifact_tokenizer(artifact: Artifact):
    """Load the artifact's tokenizer files into a transformers tokenizer."""
    import tempfile

    from uniql.pipeline.data import load_tokenizer

    with tempfile.TemporaryDirectory() as directory:
        for name in artifact.manifest["tokenizer"]["files"]:
            (Path(directory) / name).write_bytes(artifact.tokenizer_file(name))
        return load_tokenizer(Path(directory))


def run_evaluate(context: StageContext, artifact_dir: Path) -> dict[str, Any]:
    config = context.config
    results = evaluate_artifact(
        artifact_dir, None, config.eval_windows, config.eval_length, progress=context.step_reporter("evaluated rate"),
        texts=config.eval_texts,
    )
    return {"perplexity": {rate: row["perplexity"] for rate, row in results.items()}}
