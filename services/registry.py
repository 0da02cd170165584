"""The model registry: publishing a job's artifact, resolving references, tags and garbage collection.

Blobs are stored once under ``blobs/sha256/<hex>``, whatever namespace uses them. A caller can read
a blob only through a repository with a manifest that lists it, so sharing leaks nothing.
Manifests are stored as blobs too, with the exact bytes the pipeline wrote.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.db.base import utcnow
from services.db.models import Blob, Manifest, ManifestBlob, Repository, Tag
from services.errors import NotFoundError
from services.store import ArtifactStore, blob_key
from uniql.artifact.store import digest_bytes, digest_file, parse_digest
from uniql.errors import ArtifactError

logger = logging.getLogger(__name__)

MANIFEST_MEDIA_TYPE = "application/vnd.uniql.artifact.manifest.v1+json"


def referenced_blobs(manifest: dict[str, Any]) -> dict[str, int | None]:
    """Return digest -> size (None when the manifest gives none) of every blob the manifest lists."""
    if manifest.get("schema") != "uniql.artifact" or manifest.get("format_version") != 1:
        raise ArtifactError(
            f"not a version 1 uniql artifact manifest (schema {manifest.get('schema')!r}, "
            f"format_version {manifest.get('format_version')!r})"
        )
    blobs: dict[str, int | None] = {band["digest"]: int(band["size"]) for band in manifest["bands"]}
    for digest in manifest.get("tokenizer", {}).get("files", {}).values():
        blobs.setdefault(digest, None)
    for digest in blobs:
        parse_digest(digest)
    return blobs


def publish_artifact(
    session: Session, store: ArtifactStore, artifact_dir: Path, namespace_id: int, model: str, tag: str, job_id: str
) -> str:
    """Copy a verified artifact into the registry, point ``tag`` at it, and return the manifest digest.

    Publishing the same artifact again changes nothing, so a retried publish is harmless.
    """
    manifest_bytes = (artifact_dir / "manifest.json").read_bytes()
    blobs = referenced_blobs(json.loads(manifest_bytes))
    sizes = {digest: _verified_size(artifact_dir, digest, size) for digest, size in blobs.items()}

    # Touch the blob rows first, so garbage collection spares them while the files are copied.
    _upsert_blobs(session, sizes)
    session.commit()
    for digest, size in sizes.items():
        if store.size(blob_key(digest)) != size:
            store.put_file(blob_key(digest), artifact_dir / "blobs" / "sha256" / parse_digest(digest))
    manifest_digest = digest_bytes(manifest_bytes)
    store.put_bytes(blob_key(manifest_digest), manifest_bytes)

    repository = _get_or_create_repository(session, namespace_id, model)
    manifest = session.scalar(
        select(Manifest).where(Manifest.repository_id == repository.id, Manifest.digest == manifest_digest)
    )
    if manifest is None:
        manifest = Manifest(repository_id=repository.id, digest=manifest_digest, size=len(manifest_bytes), job_id=job_id)
        session.add(manifest)
        session.flush()
        session.add_all(ManifestBlob(manifest_id=manifest.id, blob_digest=digest) for digest in sizes)
    point_tag(session, repository, tag, manifest)
    logger.info(
        "published %s:%s (manifest %s, %d blobs, %d bytes)", model, tag, manifest_digest, len(sizes), sum(sizes.values())
    )
    return manifest_digest


def point_tag(session: Session, repository: Repository, tag: str, manifest: Manifest) -> Tag:
    """Create ``tag`` in ``repository`` or move it to ``manifest``, and return the tag row (not committed).

    A single upsert, so concurrent requests for the same new tag do not fail on the unique
    (repository, name) constraint. A tag that already points at ``manifest`` keeps its ``updated_at``.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Tag).values(repository_id=repository.id, name=tag, manifest_id=manifest.id, updated_at=utcnow())
    statement = statement.on_conflict_do_update(
        index_elements=["repository_id", "name"],
        set_={"manifest_id": statement.excluded.manifest_id, "updated_at": statement.excluded.updated_at},
        where=Tag.manifest_id != statement.excluded.manifest_id,
    )
    session.execute(statement)
    # populate_existing replaces a copy of the row that this session loaded before the upsert.
    return session.scalars(
        select(Tag)
        .where(Tag.repository_id == repository.id, Tag.name == tag)
        .execution_options(populate_existing=True)
    ).one()


def _verified_size(artifact_dir: Path, digest: str, expected_size: int | None) -> int:
    path = artifact_dir / "blobs" / "sha256" / parse_digest(digest)
    if not path.is_file():
        raise ArtifactError(f"artifact in {artifact_dir} lists blob {digest} but has no file for it")
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ArtifactError(f"blob {digest} in {artifact_dir} has {size} bytes, but the manifest lists {expected_size}")
    actual = digest_file(path)
    if actual != digest:
        raise ArtifactError(f"blob {digest} in {artifact_dir} is corrupted: its bytes hash to {actual}")
    return size


def _upsert_blobs(session: Session, sizes: dict[str, int]) -> None:
    if not sizes:
        return
    rows = [{"digest": digest, "size": size, "touched_at": utcnow()} for digest, size in sizes.items()]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Blob).values(rows)
    statement = statement.on_conflict_do_update(index_elements=["digest"], set_={"touched_at": statement.excluded.touched_at})
    session.execute(statement)


def _get_or_create_repository(session: Session, namespace_id: int, name: str) -> Repository:
    repository = find_repository(session, namespace_id, name)
    if repository is None:
        repository = Repository(namespace_id=namespace_id, name=name)
        session.add(repository)
        session.flush()
    return repository


def find_repository(session: Session, namespace_id: int, name: str) -> Repository | None:
    return session.scalar(select(Repository).where(Repository.namespace_id == namespace_id, Repository.name == name))


def resolve_manifest(session: Session, repository: Repository, reference: str) -> Manifest:
    """Find a manifest by tag or by ``sha256:`` digest in ``repository``."""
    if reference.startswith("sha256:"):
        manifest = session.scalar(
            select(Manifest).where(Manifest.repository_id == repository.id, Manifest.digest == reference)
        )
    else:
        tag = session.scalar(select(Tag).where(Tag.repository_id == repository.id, Tag.name == reference))
        manifest = tag.manifest if tag else None
    if manifest is None:
        raise NotFoundError(f"manifest {reference!r} not found in model {repository.name!r}; list its tags first")
    return manifest


def find_blob(session: Session, repository: Repository, digest: str) -> Blob:
    """Return a blob that a manifest of ``repository`` lists (404 for any other digest)."""
    listed = exists().where(
        ManifestBlob.blob_digest == Blob.digest,
        ManifestBlob.manifest_id == Manifest.id,
        Manifest.repository_id == repository.id,
    )
    blob = session.scalar(select(Blob).where(Blob.digest == digest, listed))
    if blob is None:
        raise NotFoundError(f"blob {digest} not found in model {repository.name!r}")
    return blob


def collect_garbage(session: Session, store: ArtifactStore, grace_seconds: float) -> tuple[int, int, int]:
    """Delete untagged manifests and then blobs no manifest lists; return (manifests, blobs, bytes freed)."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    untagged = list(session.scalars(
        select(Manifest).where(~exists().where(Tag.manifest_id == Manifest.id), Manifest.created_at <= cutoff)
    ))
    manifest_digests = {manifest.digest for manifest in untagged}
    for manifest in untagged:
        session.delete(manifest)
    session.flush()

    unlinked = exists().where(ManifestBlob.blob_digest == Blob.digest)
    garbage = list(session.scalars(select(Blob).where(~unlinked, Blob.touched_at <= cutoff)))
    session.execute(delete(Blob).where(Blob.digest.in_([blob.digest for blob in garbage])))
    still_used = set(session.scalars(select(Manifest.digest).where(Manifest.digest.in_(manifest_digests))))
    session.commit()

    # Files go after the commit: a crash in between leaves orphan files, never rows without files.
    freed = 0
    for blob in garbage:
        store.delete(blob_key(blob.digest))
        freed += blob.size
    for digest in manifest_digests - still_used:
        freed += store.size(blob_key(digest)) or 0
        store.delete(blob_key(digest))
    logger.info("garbage collection: %d manifests, %d blobs, %d bytes freed", len(untagged), len(garbage), freed)
    return len(untagged), len(garbage), freed
