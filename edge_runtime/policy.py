"""Pick the lowest pruning rate whose footprint fits in free memory, without flapping."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicySettings:
    """Thresholds of the rate policy (bytes and seconds)."""

    reserve_bytes: int = 256 * 2**20
    hysteresis_bytes: int = 64 * 2**20
    min_dwell_seconds: float = 30.0
    context_tokens: int = 2048
    pinned_rate: float | None = None


@dataclass
class FootprintModel:
    """Bytes a session at each rate needs: weights + KV cache for the context + overhead.

    The weight bytes come from the manifest. The overhead starts as a guess (runtime buffers)
    and is replaced by the RSS growth measured when a session loads.
    """

    weight_bytes: dict[float, int]
    kv_bytes_per_token: dict[float, int]
    overhead_ratio: float = 1.0
    measured: dict[float, int] = field(default_factory=dict)

    def footprint(self, rate: float, context_tokens: int) -> int:
        """Bytes for ``rate``; never less than any higher rate's, because sub-networks nest."""
        higher = [self._own_footprint(other, context_tokens) for other in self.weight_bytes if other > rate]
        return max([self._own_footprint(rate, context_tokens), *higher])

    def _own_footprint(self, rate: float, context_tokens: int) -> int:
        if rate in self.measured:
            base = self.measured[rate]
        else:
            base = int(self.weight_bytes[rate] * (1.0 + self.overhead_ratio))
        return base + self.kv_bytes_per_token[rate] * context_tokens

    def calibrate(self, rate: float, rss_growth: int) -> None:
        """Record the measured RSS growth of loading ``rate`` and rescale the guesses for other rates."""
        if rss_growth <= 0:
            return
        self.measured[rate] = rss_growth
        self.overhead_ratio = max(rss_growth / max(self.weight_bytes[rate], 1) - 1.0, 0.0)
        logger.info("calibrated footprint at rate %g: %.1f MB, overhead ratio %.2f",
                    rate, rss_growth / 1e6, self.overhead_ratio)


class RatePolicy:
    """Chooses a rate from free memory, with hysteresis, a minimum dwell time and a manual pin."""

    def __init__(self, rates: list[float], footprints: FootprintModel, settings: PolicySettings) -> None:
        self.rates = sorted(rates)
        self.footprints = footprints
        self.settings = settings
        self.last_switch = float("-inf")

    def choose(self, current: float, available: int, now: float | None = None) -> tuple[float, str]:
        """Return ``(rate, reason)``; ``available`` excludes what the current session already uses."""
        now = time.monotonic() if now is None else now
        if self.settings.pinned_rate is not None:
            return self.settings.pinned_rate, "pinned"
        # Memory the current session occupies is free for a replacement built after draining.
        budget = available + self.footprints.footprint(current, self.settings.context_tokens) - self.settings.reserve_bytes
        target = self.rates[-1]
        for rate in self.rates:
            if self.footprints.footprint(rate, self.settings.context_tokens) <= budget:
                target = rate
                break
        if target == current:
            return current, "fits"
        if target > current:
            return target, f"memory pressure: budget {budget / 2**20:.0f} MiB"
        # Moving to a lower rate needs headroom beyond the hysteresis and a minimum dwell time.
        needed = self.footprints.footprint(target, self.settings.context_tokens) + self.settings.hysteresis_bytes
        if needed > budget or now - self.last_switch < self.settings.min_dwell_seconds:
            return current, "holding"
        return target, f"memory freed: budget {budget / 2**20:.0f} MiB"

    def record_switch(self, now: float | None = None) -> None:
        self.last_switch = time.monotonic() if now is None else now
