"""Small artifacts in the documented format with random band contents, for registry and puller tests.

The bands are real band blobs (``uniql.artifact.bands.encode_band``) whose pieces hold random
bytes, so the registry and the puller see the real layout without running the pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from uniql.artifact.bands import BandPiece, encode_band
from uniql.artifact.store import BlobStore
from uniql.artifact.writer import write_manifest

DEFAULT_RATES = (0.0, 0.1, 0.2, 0.3)


def make_random_artifact(
    out_dir: Path, rates: tuple[float, ...] = DEFAULT_RATES, band_bytes: tuple[int, ...] = (40_000, 9_000, 7_000, 5_000),
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``manifest.json`` and blobs to ``out_dir``; band ``i`` carries ``band_bytes[i]`` random bytes."""
    rng = np.random.default_rng(seed)
    store = BlobStore(Path(out_dir))
    descending = sorted(rates, reverse=True)
    bands = []
    start = 0
    for index, rate in enumerate(descending):
        size = band_bytes[index]
        piece = BandPiece(tensor="layers.0.mlp.up_proj.weight", part="qweight", axis=0, start=start,
                          stop=start + size, array=rng.integers(0, 256, size=size, dtype=np.uint8))
        start += size
        blob = encode_band(index, rate, [piece])
        bands.append({"index": index, "rate": rate, "digest": store.put(blob), "size": len(blob)})

    tokenizer_bytes = b'{"model": "random"}' + rng.integers(0, 256, size=300, dtype=np.uint8).tobytes()
    tokenizer = {"tokenizer.json": store.put(tokenizer_bytes)}
    rate_table = []
    for rate in sorted(rates):
        count = descending.index(rate) + 1
        rate_table.append({
            "rate": rate, "bands": list(range(count)),
            "bytes": sum(band["size"] for band in bands[:count]) + len(tokenizer_bytes),
            "weight_bytes": sum(band_bytes[:count]), "kept": [], "eval": {},
        })
    manifest = {
        "schema": "uniql.artifact", "format_version": 1,
        "model": {"family": "llama", "config": {}, "hf_config": {}},
        "tokenizer": {"files": tokenizer},
        "quantization": {"method": "rtn", "bits": 4, "scheme": "asymmetric", "group_size": 32},
        "rates": sorted(rates), "bands": bands, "rate_table": rate_table, "tensors": {},
        "provenance": {"seed": seed},
    }
    write_manifest(Path(out_dir), manifest)
    return manifest
