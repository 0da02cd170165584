"""Engine loaders: a local artifact directory, or one that pulls missing bands from a registry."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from edge_runtime.engine import Engine
from uniql.artifact import Artifact
from uniql.errors import ArtifactError

logger = logging.getLogger(__name__)


class BandLoader(Protocol):
    """Makes the bands of a rate present and builds an engine from them."""

    artifact: Artifact

    def load(self, rate: float) -> Engine: ...


class LocalLoader:
    """Loads from an artifact directory; a missing band is an error naming its digest."""

    def __init__(self, artifact_dir: Path | str, threads: int = 0, accuracy_level: int = 0) -> None:
        self.artifact = Artifact.open(artifact_dir)
        self.threads = threads
        self.accuracy_level = accuracy_level

    def ensure_bands(self, rate: float) -> None:
        missing = self.artifact.missing_blobs(rate)
        if missing:
            raise ArtifactError(f"rate {rate:g} needs {len(missing)} blob(s) not present in {self.artifact.root}: "
                                f"{', '.join(missing)}; pull them with 'uniql edge pull'")

    def load(self, rate: float) -> Engine:
        self.ensure_bands(rate)
        return Engine.load(self.artifact, rate, threads=self.threads, accuracy_level=self.accuracy_level)


class PullingLoader(LocalLoader):
    """Fetches missing bands with the registry puller before loading."""

    def __init__(self, artifact_dir: Path | str, reference: str, token: str | None = None, threads: int = 0,
                 accuracy_level: int = 0) -> None:
        super().__init__(artifact_dir, threads, accuracy_level)
        self.reference = reference
        self.token = token

    def ensure_bands(self, rate: float) -> None:
        if self.artifact.missing_blobs(rate):
            from edge_runtime.pull import pull  # imported late: the puller is optional on a device

            logger.info("pulling bands of rate %g from %s", rate, self.reference)
            pull(self.reference, rate, self.artifact.root, token=self.token)
        super().ensure_bands(rate)
