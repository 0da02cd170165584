"""Dashboard pages of the model registry: models with their tags, and one artifact's quality and size plots.

The plots come from the manifest's ``rate_table``: perplexity on each eval text, task accuracy
where it was measured, and the download size, each against the global pruning rate.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from services.dashboard.plots import Series, format_number, line_chart
from services.dashboard.session import UserDep, render, render_error
from services.deps import SessionDep, StoreDep
from services.errors import ServiceError
from services.naming import NAME_PATTERN
from services.registry import resolve_manifest
from services.routes.namespaces import list_namespaces
from services.routes.registry_content import get_repository
from services.routes.registry_models import list_models
from services.store import blob_key

router = APIRouter()

NamespaceName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
ModelName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
Reference = Annotated[str, Path(pattern=r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|sha256:[0-9a-f]{64})$")]
MEGABYTE = 1_000_000


def _percent(fraction: float) -> str:
    return f"{format_number(fraction * 100)} %"


def quality_charts(rate_table: list[dict[str, Any]]) -> list[str]:
    """Build the perplexity chart and, when any task was measured, the task accuracy chart."""
    perplexity: dict[str, list[tuple[float, float]]] = {}
    accuracy: dict[str, list[tuple[float, float]]] = {}
    for entry in rate_table:
        rate = float(entry["rate"]) * 100
        evaluation = entry.get("eval") or {}
        for text, value in (evaluation.get("perplexity") or {}).items():
            perplexity.setdefault(text, []).append((rate, float(value)))
        for task, value in (evaluation.get("tasks") or {}).items():
            accuracy.setdefault(task, []).append((rate, float(value) * 100))

    charts = [line_chart(
        "Perplexity against pruning rate (lower is better)", "global pruning rate (%)", "perplexity",
        [Series(text, points) for text, points in sorted(perplexity.items())],
    )]
    if accuracy:
        charts.append(line_chart(
            "Task accuracy against pruning rate (higher is better)", "global pruning rate (%)", "accuracy (%)",
            [Series(task, points) for task, points in sorted(accuracy.items())], y_from_zero=True,
        ))
    return charts


def size_chart(rate_table: list[dict[str, Any]]) -> str:
    sizes = [(float(entry["rate"]) * 100, entry["bytes"]) for entry in rate_table if "bytes" in entry]
    # Tiny test models weigh kilobytes; real ones megabytes or more.
    unit, divisor = ("MB", MEGABYTE) if max((size for _, size in sizes), default=0) >= MEGABYTE else ("kB", 1000)
    points = [(rate, size / divisor) for rate, size in sizes]
    return line_chart(
        "Download size against pruning rate", "global pruning rate (%)", f"size ({unit})", [Series("size", points)],
        y_from_zero=True,
    )


def table_columns(rate_table: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Return the eval text names and task names that appear in any row, sorted."""
    texts: set[str] = set()
    tasks: set[str] = set()
    for entry in rate_table:
        evaluation = entry.get("eval") or {}
        texts.update((evaluation.get("perplexity") or {}).keys())
        tasks.update((evaluation.get("tasks") or {}).keys())
    return sorted(texts), sorted(tasks)


@router.get("/models", response_class=HTMLResponse)
def read_models_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    models = []
    for namespace in list_namespaces(session, user.principal):
        models.extend(list_models(namespace.name, session, user.principal).items)
    return render(request, "models.html", user, models=models)


@router.get("/models/{namespace}/{model}/{reference}", response_class=HTMLResponse)
def read_artifact_page(
    request: Request, namespace: NamespaceName, model: ModelName, reference: Reference,
    session: SessionDep, store: StoreDep, user: UserDep,
) -> HTMLResponse:
    try:
        repository = get_repository(session, user.principal, namespace, model)
        manifest_row = resolve_manifest(session, repository, reference)
    except ServiceError as error:
        return render_error(request, user, error)
    manifest = json.loads(store.read_bytes(blob_key(manifest_row.digest)))
    rate_table = sorted(manifest.get("rate_table", []), key=lambda entry: entry["rate"])
    texts, tasks = table_columns(rate_table)
    return render(
        request, "artifact.html", user, namespace=namespace, model=model, reference=reference,
        digest=manifest_row.digest, manifest=manifest, rate_table=rate_table, texts=texts, tasks=tasks,
        quality_charts=quality_charts(rate_table), size_chart=size_chart(rate_table),
        format_number=format_number, percent=_percent,
    )
