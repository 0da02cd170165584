"""HTTP byte ranges (RFC 9110, section 14) for blob downloads: one range per request."""

from __future__ import annotations

import re

from services.errors import RangeNotSatisfiableError

RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return ``(start, stop)`` (stop exclusive) for a ``Range`` header, or None to send the whole blob.

    A header this server does not support (several ranges, other units, bad syntax) is ignored,
    as RFC 9110 allows. A well-formed range outside the blob raises RangeNotSatisfiableError (416).
    """
    if header is None:
        return None
    match = RANGE_PATTERN.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(header, size)
        return max(0, size - suffix), size
    start = int(first)
    stop = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(header, size)
    return start, stop


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiableError:
    error = RangeNotSatisfiableError(
        f"range {header!r} is outside the blob of {size} bytes; request bytes between 0 and {max(size - 1, 0)}"
    )
    error.headers = {"Content-Range": f"bytes */{size}"}
    return error
