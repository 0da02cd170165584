"""Artifact store: registry blobs, uploaded source archives and job work directories.

Keys are relative, slash-separated paths built by the service from validated ids and digests:
``blobs/sha256/<hex>``, ``sources/<id>.tar``, ``jobs/<id>/work/...``.
"""

from __future__ import annotations

from services.settings import Settings
from services.store.base import ArtifactStore, StoreError, blob_key
from services.store.local import LocalStore


def create_store(settings: Settings) -> ArtifactStore:
    """Build the backend that ``settings.store_backend`` selects."""
    if settings.store_backend == "s3":
        from services.store.s3 import S3Store

        return S3Store(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            cache_root=settings.local_cache_path,
        )
    return LocalStore(settings.local_store_path)


__all__ = ["ArtifactStore", "LocalStore", "StoreError", "blob_key", "create_store"]
