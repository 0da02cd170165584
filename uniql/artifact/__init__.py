"""The banded artifact format: manifest, band blobs, 4-bit packing and slicing arithmetic.

This package imports numpy and the standard library only, so the edge runtime can read
artifacts without torch. The format is described in docs/artifact-format.md.
"""

from uniql.artifact.layout import kept_ranges, band_ranges
from uniql.artifact.q4 import QuantizedTensor
from uniql.artifact.reader import Artifact
from uniql.artifact.store import BlobStore, digest_bytes

SCHEMA = "uniql.artifact"
FORMAT_VERSION = 1

__all__ = [
    "Artifact",
    "BlobStore",
    "FORMAT_VERSION",
    "QuantizedTensor",
    "SCHEMA",
    "band_ranges",
    "digest_bytes",
    "kept_ranges",
]
