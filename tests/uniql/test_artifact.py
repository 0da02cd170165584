"""The banded artifact: band contents, byte accounting, digests and nesting."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from uniql.artifact import Artifact, QuantizedTensor, kept_ranges
from uniql.artifact.bands import decode_band
from uniql.artifact.layout import band_ranges
from uniql.artifact.q4 import pack_nibbles, unpack_nibbles
from uniql.errors import ArtifactError


def test_nibble_packing_round_trip():
    codes = np.random.default_rng(0).integers(0, 16, size=(5, 64), dtype=np.uint8)
    packed = pack_nibbles(codes, 32)
    assert packed.shape == (5, 2, 16)
    assert packed[0, 0, 0] == codes[0, 0] | (codes[0, 1] << 4)
    assert np.array_equal(unpack_nibbles(packed), codes)


def test_dequantize_follows_matmulnbits_formula():
    codes = np.array([[0, 15, 8, 3] * 4], dtype=np.uint8)
    tensor = QuantizedTensor.from_codes(codes, np.array([[0.5]], np.float16), np.array([[8]], np.uint8), 16)
    assert np.array_equal(tensor.dequantize()[0, :4], np.array([-4.0, 3.5, 0.0, -2.5], np.float32))


@pytest.mark.parametrize("layout", ["prefix", "head_prefix", "head_pairs"])
def test_band_ranges_rebuild_kept_ranges(layout):
    spec = {"layout": layout, "heads": 3, "head_dim": 16}
    sizes = [16, 12, 8, 4]
    union: list[tuple[int, int]] = []
    previous = 0
    for size in reversed(sizes):
        union += band_ranges(spec, 48, size, previous)
        previous = size
        covered = sorted(index for start, stop in union for index in range(start, stop))
        expected = [index for start, stop in kept_ranges(spec, 48, size) for index in range(start, stop)]
        assert covered == expected


def test_rate_bytes_equal_band_and_tokenizer_blobs(tiny_artifacts):
    artifact = Artifact.open(tiny_artifacts[("llama", False)])
    manifest = artifact.manifest
    for entry in manifest["rate_table"]:
        digests = artifact.blobs_for_rate(entry["rate"])
        on_disk = sum(artifact.store.path(digest).stat().st_size for digest in digests)
        assert entry["bytes"] == on_disk
    sizes = [entry["bytes"] for entry in sorted(manifest["rate_table"], key=lambda e: e["rate"])]
    assert sizes == sorted(sizes, reverse=True)
    assert len(set(sizes)) == len(sizes)


def test_highest_rate_needs_only_band_zero(tiny_artifacts):
    artifact = Artifact.open(tiny_artifacts[("qwen2", False)])
    highest = max(artifact.rates)
    assert [band["index"] for band in artifact.bands_for_rate(highest)] == [0]
    header, pieces = decode_band(artifact.store.get(artifact.manifest["bands"][1]["digest"]))
    assert header["band"] == 1
    assert all(piece.axis is not None for piece in pieces), "only band 0 may hold whole tensors"


def test_corrupted_blob_is_rejected(tiny_artifacts, tmp_path):
    copy = tmp_path / "artifact"
    shutil.copytree(tiny_artifacts[("llama", False)], copy)
    artifact = Artifact.open(copy)
    path = artifact.store.path(artifact.manifest["bands"][0]["digest"])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupted"):
        artifact.load_tensors(max(artifact.rates))


def test_missing_blob_is_reported(tiny_artifacts, tmp_path):
    copy = tmp_path / "artifact"
    shutil.copytree(tiny_artifacts[("llama", False)], copy)
    artifact = Artifact.open(copy)
    last_band = artifact.manifest["bands"][-1]["digest"]
    artifact.store.path(last_band).unlink()
    assert artifact.missing_blobs(0.0) == [last_band]
    assert artifact.missing_blobs(max(artifact.rates)) == []
    with pytest.raises(ArtifactError, match="missing"):
        artifact.load_tensors(0.0)


def test_unknown_rate_lists_supported_rates(tiny_artifacts):
    artifact = Artifact.open(tiny_artifacts[("llama", False)])
    with pytest.raises(ArtifactError, match="supported rates: 0, 0.15, 0.35"):
        artifact.rate_entry(0.2)


def test_future_format_version_is_rejected(tiny_artifacts, tmp_path):
    copy = tmp_path / "artifact"
    shutil.copytree(tiny_artifacts[("llama", False)], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format version 99"):
        Artifact.open(copy)


def test_artifact_package_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, uniql.artifact; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
