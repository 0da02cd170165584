"""Pull an artifact from a uniql registry at one pruning rate: only the bands that rate needs.

``pull("HOST/NAMESPACE/MODEL:TAG", rate, dest_dir)`` downloads the manifest, then the band and
tokenizer blobs of ``rate`` that ``dest_dir`` lacks. A partly downloaded blob resumes with an
HTTP ``Range`` request. Every blob's sha256 is checked before the blob is renamed into place. The
manifest is written last, so an interrupted pull leaves the installed model as it was. Blobs
of other rates already in ``dest_dir`` are kept, so moving to a lower rate later downloads only
the extra bands.

Imports: numpy (through ``uniql.artifact``), httpx and the standard library; never torch.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from uniql.artifact.reader import Artifact
from uniql.artifact.store import digest_bytes, digest_file, parse_digest, write_atomic
from uniql.artifact.writer import MANIFEST_NAME
from uniql.errors import ArtifactError

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class PullError(ArtifactError):
    """A pull failed: bad reference, registry error, or network failure after the retries."""


class DigestMismatchError(PullError):
    """A downloaded blob or manifest does not hash to its digest; it was discarded."""


@dataclass(frozen=True)
class Reference:
    """A parsed ``[SCHEME://]HOST/NAMESPACE/MODEL(:TAG|@sha256:HEX)``."""

    base_url: str
    namespace: str
    model: str
    reference: str  # tag or digest

    @classmethod
    def parse(cls, text: str) -> Reference:
        scheme = None
        rest = text
        if "://" in text:
            scheme, rest = text.split("://", 1)
            if scheme not in ("http", "https"):
                raise PullError(f"invalid reference {text!r}: the scheme must be http or https")
        parts = rest.split("/")
        if len(parts) != 3 or not all(parts):
            raise PullError(f"invalid reference {text!r}: expected HOST/NAMESPACE/MODEL:TAG, e.g. "
                            "registry.example.com/acme/llama-1b:latest")
        host, namespace, name = parts
        if "@" in name:
            model, reference = name.split("@", 1)
            parse_digest(reference)
        elif ":" in name:
            model, reference = name.rsplit(":", 1)
        else:
            model, reference = name, "latest"
        if not model or not reference:
            raise PullError(f"invalid reference {text!r}: empty model name or tag")
        if scheme is None:
            hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            scheme = "http" if hostname in LOOPBACK_HOSTS else "https"
        return cls(f"{scheme}://{host}", namespace, model, reference)

    def url(self, kind: str, name: str) -> str:
        return f"{self.base_url}/v1/namespaces/{self.namespace}/models/{self.model}/{kind}/{name}"


@dataclass
class PullResult:
    reference: str
    manifest_digest: str
    rate: float
    bands: list[int]
    dest_dir: Path
    bytes_downloaded: int = 0
    blobs_downloaded: list[str] = field(default_factory=list)
    blobs_reused: list[str] = field(default_factory=list)


def pull(
    reference: str,
    rate: float,
    dest_dir: Path | str,
    token: str | None = None,
    *,
    client: httpx.Client | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    verify_existing: bool = True,
    on_bytes: Callable[[int], None] | None = None,
) -> PullResult:
    """Download what ``rate`` needs of ``reference`` into ``dest_dir``; return what was transferred.

    ``retries`` is per blob, for network errors; each retry resumes where the last one stopped.
    ``verify_existing`` re-hashes blobs already on disk before trusting them.
    Raises PullError (DigestMismatchError for corrupted bytes) with the failing URL or digest.
    """
    parsed = Reference.parse(reference)
    dest = Path(dest_dir)
    blobs_dir = dest / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        with _locked(dest):
            manifest_bytes, manifest_digest = _fetch_manifest(http, parsed, headers)
            result = PullResult(reference, manifest_digest, rate, [], dest, bytes_downloaded=len(manifest_bytes))
            artifact = Artifact(dest, _parse_manifest(manifest_bytes, reference))
            entry = artifact.rate_entry(rate)
            result.bands = list(entry["bands"])
            sizes = {band["digest"]: int(band["size"]) for band in artifact.bands_for_rate(rate)}
            for digest in artifact.blobs_for_rate(rate):
                downloaded = _ensure_blob(http, parsed, headers, blobs_dir, digest, sizes.get(digest), retries,
                                          verify_existing, on_bytes)
                if downloaded is None:
                    result.blobs_reused.append(digest)
                else:
                    result.blobs_downloaded.append(digest)
                    result.bytes_downloaded += downloaded
            _check_total(artifact, rate, blobs_dir, entry)
            # Last: only now does the installed manifest name blobs that are all present.
            write_atomic(dest / MANIFEST_NAME, manifest_bytes)
    finally:
        if own_client:
            http.close()
    logger.info("pulled %s at rate %g into %s: %d blobs downloaded (%d bytes), %d already present",
                reference, rate, dest, len(result.blobs_downloaded), result.bytes_downloaded, len(result.blobs_reused))
    return result


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """Serialize pulls into the same directory (the daemon and a manual ``uniql edge pull``)."""
    with open(dest / ".pull.lock", "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _fetch_manifest(http: httpx.Client, parsed: Reference, headers: dict[str, str]) -> tuple[bytes, str]:
    url = parsed.url("manifests", parsed.reference)
    try:
        response = http.get(url, headers=headers)
    except httpx.HTTPError as error:
        raise PullError(f"GET {url} failed: {error}; check the host and the network") from error
    _raise_for_status(response, url)
    data = response.content
    digest = digest_bytes(data)
    expected = parsed.reference if parsed.reference.startswith("sha256:") else response.headers.get("Uniql-Content-Digest")
    if expected is not None and expected != digest:
        raise DigestMismatchError(f"manifest from {url} hashes to {digest}, expected {expected}; nothing was installed")
    return data, digest


def _parse_manifest(data: bytes, reference: str) -> dict:
    try:
        manifest = json.loads(data)
    except json.JSONDecodeError as error:
        raise PullError(f"manifest of {reference} is not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("schema") != "uniql.artifact" or manifest.get("format_version") != 1:
        raise PullError(f"{reference} is not a version 1 uniql artifact; upgrade uniql or check the reference")
    return manifest


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text[:200]
    hint = {401: "pass a valid token (--token or UNIQL_TOKEN)", 403: "the token needs the 'pull' scope",
            404: "check the namespace, model and tag"}.get(response.status_code, "try again later")
    raise PullError(f"GET {url} failed with status {response.status_code}: {detail}; {hint}")


def _ensure_blob(
    http: httpx.Client, parsed: Reference, headers: dict[str, str], blobs_dir: Path, digest: str,
    size: int | None, retries: int, verify_existing: bool, on_bytes: Callable[[int], None] | None,
) -> int | None:
    """Make sure a verified copy of the blob exists; return the bytes downloaded (None: none needed)."""
    final = blobs_dir / parse_digest(digest)
    if final.is_file():
        if not verify_existing or digest_file(final) == digest:
            return None
        logger.warning("blob %s on disk is corrupted; downloading it again", digest)
        final.unlink()

    partial = final.with_name(final.name + ".partial")
    downloaded = 0
    # A mismatch after resuming may come from a stale partial file, so that case gets one fresh download.
    resuming = partial.is_file() and partial.stat().st_size > 0
    for fresh_start in ((False, True) if resuming else (False,)):
        if fresh_start:
            partial.unlink(missing_ok=True)
        downloaded += _download_with_retries(http, parsed.url("blobs", digest), headers, partial, size, retries,
                                             on_bytes)
        actual = digest_file(partial)
        if actual == digest:
            _fsync(partial)
            os.replace(partial, final)
            _fsync(blobs_dir)
            return downloaded
        logger.warning("blob %s hashes to %s; discarding the download", digest, actual)
    partial.unlink(missing_ok=True)
    raise DigestMismatchError(f"blob {digest} from {parsed.base_url} hashes to {actual}; the registry copy is "
                              "corrupted, so the blob was rejected and the installed model was left unchanged")


def _download_with_retries(
    http: httpx.Client, url: str, headers: dict[str, str], partial: Path, size: int | None, retries: int,
    on_bytes: Callable[[int], None] | None,
) -> int:
    downloaded = 0
    for attempt in range(retries + 1):
        try:
            return downloaded + _download(http, url, headers, partial, size, on_bytes)
        except _Transferred as progress:
            downloaded += progress.count
            if attempt == retries:
                raise PullError(f"GET {url} failed after {retries + 1} attempts: {progress.error}") from progress.error
            logger.warning("GET %s interrupted (%s); resuming in %.1f s", url, progress.error, 0.5 * 2**attempt)
            time.sleep(0.5 * 2**attempt)
    return downloaded


class _Transferred(Exception):
    """A network error after ``count`` bytes of this attempt were written to the partial file."""

    def __init__(self, count: int, error: httpx.HTTPError):
        super().__init__(str(error))
        self.count = count
        self.error = error


def _download(http: httpx.Client, url: str, headers: dict[str, str], partial: Path, size: int | None,
              on_bytes: Callable[[int], None] | None) -> int:
    """Append the rest of the blob to ``partial`` (all of it when the server ignores Range)."""
    offset = partial.stat().st_size if partial.exists() else 0
    if size is not None and offset >= size:
        if offset == size:
            return 0
        partial.unlink()
        offset = 0
    request_headers = dict(headers, Range=f"bytes={offset}-") if offset else headers
    count = 0
    try:
        with http.stream("GET", url, headers=request_headers) as response:
            if response.status_code == 416 and offset:
                partial.unlink()
                raise _Transferred(0, httpx.RemoteProtocolError(f"range from byte {offset} rejected; restarting"))
            if response.status_code >= 500:
                raise _Transferred(0, httpx.RemoteProtocolError(f"server error {response.status_code}"))
            if response.status_code not in (200, 206):
                response.read()
                _raise_for_status(response, url)
            resumed = response.status_code == 206 and response.headers.get("Content-Range", "").startswith(
                f"bytes {offset}-")
            with open(partial, "ab" if resumed else "wb") as stream:
                # Chunks as they arrive: a buffered chunk would be lost if the transfer broke off.
                for chunk in response.iter_bytes():
                    stream.write(chunk)
                    count += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except httpx.HTTPError as error:
        raise _Transferred(count, error) from error
    return count


def _check_total(artifact: Artifact, rate: float, blobs_dir: Path, entry: dict) -> None:
    total = sum((blobs_dir / parse_digest(digest)).stat().st_size for digest in artifact.blobs_for_rate(rate))
    if "bytes" in entry and total != entry["bytes"]:
        logger.warning("rate %g: blobs on disk total %d bytes, but the manifest's rate_table lists %d", rate, total,
                       entry["bytes"])


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
