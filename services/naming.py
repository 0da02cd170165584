"""Patterns for names in URLs: namespaces, models, tags, digests and ids.

Names follow the OCI distribution rules closely, so they are safe as path segments and store keys.
"""

from __future__ import annotations

NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
NAME_MAX_LENGTH = 64
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
ID_PATTERN = r"^[0-9a-f]{32}$"
