"""Writing a banded artifact: band blobs, tokenizer blobs and the manifest."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uniql.artifact.bands import encode_band
from uniql.artifact.layout import band_ranges, kept_size_for
from uniql.artifact.pieces import TensorValue, cut_pieces, tensor_parts
from uniql.artifact.store import BlobStore, write_atomic

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"


@dataclass
class ArtifactContent:
    """Everything an artifact holds, before it is cut into bands.

    ``rates`` is ascending; ``kept[i]`` lists one ``{"attn_head_dim", "mlp"}`` dict per layer
    for ``rates[i]``.
    """

    model: dict[str, Any]
    tensors: dict[str, tuple[dict[str, Any], TensorValue]]
    rates: list[float]
    kept: list[list[dict[str, int]]]
    tokenizer_files: dict[str, bytes]
    quantization: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)


def write_artifact(content: ArtifactContent, out_dir: Path) -> dict[str, Any]:
    """Write blobs and ``manifest.json`` into ``out_dir``; return the manifest."""
    store = BlobStore(out_dir)
    _check_nested(content)

    descending = sorted(range(len(content.rates)), key=lambda i: -content.rates[i])
    bands = []
    previous_kept: list[dict[str, int]] | None = None
    for band_index, rate_index in enumerate(descending):
        kept = content.kept[rate_index]
        blob = encode_band(band_index, content.rates[rate_index], _band_pieces(content, kept, previous_kept))
        digest = store.put(blob)
        bands.append({"index": band_index, "rate": content.rates[rate_index], "digest": digest, "size": len(blob)})
        logger.info("wrote band %d (rate %.2f): %.2f MB", band_index, content.rates[rate_index], len(blob) / 1e6)
        previous_kept = kept

    tokenizer = {name: store.put(data) for name, data in sorted(content.tokenizer_files.items())}
    tokenizer_bytes = sum(len(data) for data in content.tokenizer_files.values())

    manifest = {
        "schema": "uniql.artifact",
        "format_version": 1,
        "model": content.model,
        "tokenizer": {"files": tokenizer},
        "quantization": content.quantization,
        "rates": list(content.rates),
        "bands": bands,
        "rate_table": _rate_table(content, bands, descending, tokenizer_bytes),
        "tensors": {name: spec for name, (spec, _) in content.tensors.items()},
        "provenance": content.provenance,
    }
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    write_atomic(Path(out_dir) / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=False).encode())


def _check_nested(content: ArtifactContent) -> None:
    order = sorted(range(len(content.rates)), key=lambda i: content.rates[i])
    for lower, higher in zip(order, order[1:]):
        for layer, (small_rate, big_rate) in enumerate(zip(content.kept[lower], content.kept[higher])):
            for module, size in big_rate.items():
                if size > small_rate[module] or size <= 0:
                    raise ValueError(
                        f"kept sizes are not nested: layer {layer} {module} keeps {small_rate[module]} at rate "
                        f"{content.rates[lower]} but {size} at rate {content.rates[higher]}"
                    )


def _band_pieces(content: ArtifactContent, kept: list[dict[str, int]], previous: list[dict[str, int]] | None):
    pieces = []
    for name, (spec, value) in content.tensors.items():
        slice_spec = spec.get("slice")
        if slice_spec is None:
            if previous is None:
                pieces.extend(cut_pieces(name, spec, value, None))
            continue
        layer = int(spec["layer"])
        size = kept_size_for(slice_spec, kept[layer])
        size_before = 0 if previous is None else kept_size_for(slice_spec, previous[layer])
        axis_length = int(spec["shape"][slice_spec["axis"]])
        ranges = band_ranges(slice_spec, axis_length, size, size_before)
        if ranges:
            pieces.extend(cut_pieces(name, spec, value, ranges))
    return pieces


def _rate_table(content, bands, descending, tokenizer_bytes) -> list[dict[str, Any]]:
    full_params, full_bytes = _sized_totals(content, content.kept[_index_of_min_rate(content)])
    table = []
    for rate_index, rate in enumerate(content.rates):
        band_count = descending.index(rate_index) + 1
        params, weight_bytes = _sized_totals(content, content.kept[rate_index])
        table.append({
            "rate": rate,
            "bands": list(range(band_count)),
            "bytes": sum(band["size"] for band in bands[:band_count]) + tokenizer_bytes,
            "weight_bytes": weight_bytes,
            "realized_rate": {
                "params": round(1.0 - params / full_params, 6),
                "bytes": round(1.0 - weight_bytes / full_bytes, 6),
            },
            "kept": content.kept[rate_index],
            "eval": {},
        })
    return table


def _index_of_min_rate(content: ArtifactContent) -> int:
    return min(range(len(content.rates)), key=lambda i: content.rates[i])


def _sized_totals(content: ArtifactContent, kept: list[dict[str, int]]) -> tuple[int, int]:
    """Count prunable parameters and all weight bytes at the given kept sizes."""
    params = 0
    weight_bytes = 0
    for spec, value in content.tensors.values():
        fraction = 1.0
        slice_spec = spec.get("slice")
        if slice_spec is not None:
            axis_length = int(spec["shape"][slice_spec["axis"]])
            size = kept_size_for(slice_spec, kept[int(spec["layer"])])
            ranges = band_ranges(slice_spec, axis_length, size, 0)
            fraction = sum(stop - start for start, stop in ranges) / axis_length
            params += round(fraction * spec["shape"][0] * spec["shape"][1]) if len(spec["shape"]) == 2 else 0
        weight_bytes += round(fraction * sum(part.nbytes for part in tensor_parts(value).values()))
    return params, weight_bytes
