"""Free memory and CPU load of the device, from psutil and the cgroup v2 limit when one is set."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class MemorySnapshot:
    """Memory in bytes: what is available to us, the system total, our RSS, and the CPU load (0..1)."""

    available: int
    total: int
    rss: int
    cpu_load: float
    cgroup_limited: bool


def cgroup_available(root: Path = CGROUP_ROOT) -> int | None:
    """Bytes left under this process's cgroup v2 ``memory.max``, or None when unlimited or absent."""
    try:
        limit = (root / "memory.max").read_text().strip()
        current = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(int(limit) - current, 0)


def read_memory(root: Path = CGROUP_ROOT) -> MemorySnapshot:
    """Take a snapshot; available memory is the smaller of the system's and the cgroup's."""
    virtual = psutil.virtual_memory()
    available = virtual.available
    limited = cgroup_available(root)
    if limited is not None:
        available = min(available, limited)
    load = psutil.getloadavg()[0] / (psutil.cpu_count() or 1)
    return MemorySnapshot(available, virtual.total, psutil.Process().memory_info().rss, load, limited is not None)
