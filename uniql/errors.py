"""Exception hierarchy of the core library.

The CLI prints these without a traceback and the API maps them to 4xx responses, so every
message names the offending value and the fix.
"""


class UniqlError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(UniqlError):
    """A pipeline or tool setting is invalid."""


class UnsupportedModelError(UniqlError):
    """The model's architecture or shape is not supported."""


class DataError(UniqlError):
    """Calibration or evaluation data is missing, empty or too short."""


class ArtifactError(UniqlError):
    """An artifact is missing, corrupted, or would be overwritten."""
