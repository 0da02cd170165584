"""``uniql models``: browse the registry, show an artifact's per-rate results, tag, delete and collect garbage."""

from __future__ import annotations

import re
from typing import Any

import click

from services.admin_cli.client import EXIT_USAGE, ApiClient, CliError, with_client
from services.admin_cli.output import (
    echo_json,
    echo_table,
    human_bytes,
    json_option,
    short_time,
)

REFERENCE_PATTERN = re.compile(r"^(?P<namespace>[^/:@]+)/(?P<model>[^/:@]+)(?::(?P<tag>[^/:@]+)|@(?P<digest>sha256:[0-9a-f]{64}))?$")


def parse_reference(reference: str) -> tuple[str, str, str]:
    """Split ``NAMESPACE/MODEL[:TAG|@DIGEST]`` into namespace, model and tag or digest (default tag ``latest``)."""
    match = REFERENCE_PATTERN.match(reference)
    if match is None:
        raise CliError(f"invalid model reference {reference!r}; write NAMESPACE/MODEL[:TAG] or NAMESPACE/MODEL@sha256:...",
                       EXIT_USAGE)
    return match["namespace"], match["model"], match["tag"] or match["digest"] or "latest"


def model_path(namespace: str, model: str) -> str:
    return f"/v1/namespaces/{namespace}/models/{model}"


@click.group(name="models")
def models() -> None:
    """Browse and manage the model registry of a cloud service.

    Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 authentication failed, 5 not found.
    """


@models.command(name="list")
@click.option("--namespace", help="List only this namespace [default: every namespace the token can read].")
@json_option
@with_client
def list_models(client: ApiClient, namespace: str | None, as_json: bool) -> None:
    """List models with their tags."""
    names = [namespace] if namespace else [item["name"] for item in client.get_json("/v1/namespaces")]
    items = [model for name in names for model in client.get_json(f"/v1/namespaces/{name}/models")["items"]]
    if as_json:
        echo_json({"items": items})
        return
    echo_table(["MODEL", "TAGS", "CREATED"],
               [[f"{model['namespace']}/{model['name']}", ", ".join(tag["name"] for tag in model["tags"]) or "-",
                 short_time(model["created_at"])] for model in items])


def rate_rows(manifest: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Return table headers and one row per rate: size, bands, perplexity per text and task accuracy."""
    rate_table = sorted(manifest.get("rate_table", []), key=lambda entry: entry["rate"])
    texts = sorted({text for entry in rate_table for text in ((entry.get("eval") or {}).get("perplexity") or {})})
    tasks = sorted({task for entry in rate_table for task in ((entry.get("eval") or {}).get("tasks") or {})})
    headers = ["RATE", "SIZE", "BANDS"] + [f"PPL {text}" for text in texts] + [f"{task} %" for task in tasks]
    rows = []
    for entry in rate_table:
        evaluation = entry.get("eval") or {}
        perplexity = evaluation.get("perplexity") or {}
        accuracy = evaluation.get("tasks") or {}
        rows.append(
            [f"{entry['rate'] * 100:g}%", human_bytes(entry.get("bytes")), len(entry.get("bands", []))]
            + [f"{perplexity[text]:.2f}" if text in perplexity else "-" for text in texts]
            + [f"{accuracy[task] * 100:.1f}" if task in accuracy else "-" for task in tasks]
        )
    return headers, rows


@models.command(name="show")
@click.argument("reference")
@json_option
@with_client
def show_model(client: ApiClient, reference: str, as_json: bool) -> None:
    """Show the artifact REFERENCE (NAMESPACE/MODEL[:TAG]) with its size and quality at every rate."""
    namespace, model, tag = parse_reference(reference)
    response = client.request("GET", f"{model_path(namespace, model)}/manifests/{tag}")
    manifest = response.json()
    if as_json:
        echo_json({"digest": response.headers.get("Uniql-Content-Digest"), "manifest": manifest})
        return
    quantization = manifest.get("quantization", {})
    click.echo(f"{namespace}/{model}:{tag}  manifest {response.headers.get('Uniql-Content-Digest')}")
    click.echo(f"family {manifest.get('model', {}).get('family', '-')}, {quantization.get('method', '-')} "
               f"{quantization.get('bits', '-')}-bit, group size {quantization.get('group_size', '-')}")
    headers, rows = rate_rows(manifest)
    echo_table(headers, rows)


@models.command(name="tag")
@click.argument("source")
@click.argument("tag")
@with_client
def tag_model(client: ApiClient, source: str, tag: str) -> None:
    """Point TAG at the manifest of SOURCE (NAMESPACE/MODEL[:TAG]), in the same model."""
    namespace, model, reference = parse_reference(source)
    digest = client.request("HEAD", f"{model_path(namespace, model)}/manifests/{reference}").headers[
        "Uniql-Content-Digest"]
    client.request("PUT", f"{model_path(namespace, model)}/tags/{tag}", json={"digest": digest})
    click.echo(f"{namespace}/{model}:{tag} -> {digest}")


@models.command(name="delete")
@click.argument("reference")
@with_client
def delete_model_tag(client: ApiClient, reference: str) -> None:
    """Delete the tag of REFERENCE (NAMESPACE/MODEL:TAG); `uniql models gc` then frees unreferenced blobs."""
    namespace, model, tag = parse_reference(reference)
    if tag.startswith("sha256:"):
        raise CliError("delete takes a tag, not a digest; untagged manifests go with `uniql models gc`", EXIT_USAGE)
    client.request("DELETE", f"{model_path(namespace, model)}/tags/{tag}")
    click.echo(f"deleted tag {namespace}/{model}:{tag}")


@models.command(name="gc")
@json_option
@with_client
def collect_garbage(client: ApiClient, as_json: bool) -> None:
    """Delete untagged manifests and unreferenced blobs (needs an admin token without a namespace)."""
    result = client.request("POST", "/v1/registry/gc").json()
    if as_json:
        echo_json(result)
        return
    click.echo(f"deleted {result['manifests_deleted']} manifests and {result['blobs_deleted']} blobs, "
               f"freed {human_bytes(result['bytes_freed'])}")
