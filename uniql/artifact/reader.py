"""Reading a banded artifact at one rate, verifying every blob it uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from uniql.artifact.bands import BandPiece, decode_band
from uniql.artifact.pieces import TensorValue, join_pieces
from uniql.artifact.store import BlobStore
from uniql.artifact.writer import MANIFEST_NAME
from uniql.errors import ArtifactError

SUPPORTED_FORMAT_VERSIONS = (1,)


class Artifact:
    """An artifact directory (``manifest.json`` + ``blobs/``) opened for reading."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = Path(root)
        self.manifest = manifest
        self.store = BlobStore(self.root)

    @classmethod
    def open(cls, root: Path | str) -> "Artifact":
        root = Path(root)
        manifest_path = root / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ArtifactError(f"no artifact at {root}: {MANIFEST_NAME} is missing; run 'uniql compress' or 'uniql edge pull' first")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise ArtifactError(f"{manifest_path} is not valid JSON ({error}); pull the artifact again") from error
        if manifest.get("schema") != "uniql.artifact":
            raise ArtifactError(f"{manifest_path} is not a uniql artifact manifest (schema {manifest.get('schema')!r})")
        if manifest.get("format_version") not in SUPPORTED_FORMAT_VERSIONS:
            raise ArtifactError(
                f"{manifest_path} has format version {manifest.get('format_version')!r}; "
                f"this version of uniql reads {SUPPORTED_FORMAT_VERSIONS}; upgrade uniql"
            )
        return cls(root, manifest)

    @property
    def rates(self) -> list[float]:
        return list(self.manifest["rates"])

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["model"]["config"]

    def eos_token_ids(self) -> set[int]:
        """Return the end-of-sequence ids of the model config (it stores one id, a list or none)."""
        eos = self.config.get("eos_token_id")
        if eos is None:
            return set()
        if isinstance(eos, list):
            return set(eos)
        return {eos}

    def rate_entry(self, rate: float) -> dict[str, Any]:
        for entry in self.manifest["rate_table"]:
            if abs(entry["rate"] - rate) < 1e-9:
                return entry
        supported = ", ".join(f"{r:g}" for r in self.rates)
        raise ArtifactError(f"rate {rate:g} is not in this artifact; supported rates: {supported}")

    def bands_for_rate(self, rate: float) -> list[dict[str, Any]]:
        indices = set(self.rate_entry(rate)["bands"])
        return [band for band in self.manifest["bands"] if band["index"] in indices]

    def blobs_for_rate(self, rate: float) -> list[str]:
        """Digests a device needs for ``rate``: its bands and the tokenizer files."""
        digests = [band["digest"] for band in self.bands_for_rate(rate)]
        return digests + list(self.manifest["tokenizer"]["files"].values())

    def kept_sizes(self, rate: float) -> list[dict[str, int]]:
        return self.rate_entry(rate)["kept"]

    def missing_blobs(self, rate: float) -> list[str]:
        return [digest for digest in self.blobs_for_rate(rate) if not self.store.has(digest)]

    def tokenizer_file(self, name: str) -> bytes:
        digest = self.manifest["tokenizer"]["files"][name]
        return self.store.get(digest)

    def load_tensors(self, rate: float) -> dict[str, TensorValue]:
        """Assemble every tensor at ``rate`` from its bands, checking each blob's digest first."""
        pieces_by_tensor: dict[str, list[BandPiece]] = {}
        for band in self.bands_for_rate(rate):
            _, pieces = decode_band(self.store.get(band["digest"]))
            for piece in pieces:
                pieces_by_tensor.setdefault(piece.tensor, []).append(piece)

        tensors = {}
        for name, spec in self.manifest["tensors"].items():
            if name not in pieces_by_tensor:
                raise ArtifactError(f"tensor {name} has no pieces in the bands of rate {rate:g}; the artifact is incomplete")
            tensors[name] = join_pieces(spec, pieces_by_tensor[name])
        return tensors
