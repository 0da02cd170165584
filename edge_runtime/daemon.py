"""The edge daemon: an engine manager, the memory monitor loop and the rate policy wired together."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from edge_runtime.config import EdgeSettings
from edge_runtime.generation import GenerationStats
from edge_runtime.loader import BandLoader, LocalLoader
from edge_runtime.memory import MemorySnapshot, read_memory
from edge_runtime.policy import FootprintModel, RatePolicy
from edge_runtime.sessions import EngineManager
from edge_runtime.text import EdgeTokenizer

logger = logging.getLogger(__name__)


@dataclass
class Counters:
    """Request and token counters for /status and /metrics."""

    requests: int = 0
    failed_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stats: GenerationStats) -> None:
        with self.lock:
            self.requests += 1
            self.prompt_tokens += stats.prompt_tokens
            self.completion_tokens += stats.completion_tokens
            self.prefill_seconds += stats.prefill_seconds
            self.decode_seconds += stats.decode_seconds


class EdgeDaemon:
    """Serves one artifact and keeps its rate matched to free memory."""

    def __init__(self, settings: EdgeSettings, loader: BandLoader | None = None) -> None:
        self.settings = settings
        self.loader = loader or LocalLoader(settings.artifact, threads=settings.threads,
                                                  accuracy_level=settings.accuracy_level)
        artifact = self.loader.artifact
        self.model_name = settings.model_name or artifact.root.name
        self.tokenizer = EdgeTokenizer(artifact)
        self.counters = Counters()
        policy_settings = settings.policy_settings()
        start_rate = policy_settings.pinned_rate if policy_settings.pinned_rate is not None else settings.start_rate
        self.manager = EngineManager(self.loader, start_rate if start_rate is not None else max(artifact.rates))

        engine = self.manager.engine
        weight_bytes = {entry["rate"]: entry["weight_bytes"] for entry in artifact.manifest["rate_table"]}
        kv_per_token = {rate: engine.kv_bytes_per_token() for rate in artifact.rates}
        self.footprints = FootprintModel(weight_bytes, kv_per_token)
        self.footprints.calibrate(engine.rate, self.manager.last_load_rss_growth)
        self.policy = RatePolicy(artifact.rates, self.footprints, policy_settings)
        self.memory: MemorySnapshot = read_memory()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_monitor(self) -> None:
        self._thread = threading.Thread(target=self._monitor_loop, name="edge-monitor", daemon=True)
        self._thread.start()
        logger.info("memory monitor started: every %.1f s, reserve %d MiB", self.settings.monitor_interval,
                    self.policy.settings.reserve_bytes // 2**20)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        logger.info("edge daemon stopped at rate %g", self.manager.rate)

    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.settings.monitor_interval):
            self.check_memory()

    def check_memory(self) -> None:
        """Read memory once and switch rate when the policy decides to."""
        self.memory = read_memory()
        current = self.manager.rate
        target, reason = self.policy.choose(current, self.memory.available)
        if target == current:
            return
        new_footprint = self.footprints.footprint(target, self.policy.settings.context_tokens)
        beside = self.memory.available - self.policy.settings.reserve_bytes > new_footprint
        record = self.manager.switch(target, reason, build_beside=beside)
        if record.error is None:
            self.policy.record_switch()
            self.footprints.calibrate(target, self.manager.last_load_rss_growth if beside else 0)

    def status(self) -> dict:
        artifact = self.loader.artifact
        rate = self.manager.rate
        counters = self.counters
        return {
            "model": self.model_name,
            "rate": rate,
            "rates": artifact.rates,
            "bands_present": [band["index"] for band in artifact.manifest["bands"] if artifact.store.has(band["digest"])],
            "bands_needed": [band["index"] for band in artifact.bands_for_rate(rate)],
            "pinned": self.policy.settings.pinned_rate is not None,
            "memory": {"available_bytes": self.memory.available, "total_bytes": self.memory.total,
                       "rss_bytes": self.memory.rss, "cpu_load": round(self.memory.cpu_load, 3),
                       "cgroup_limited": self.memory.cgroup_limited,
                       "reserve_bytes": self.policy.settings.reserve_bytes},
            "footprint_bytes": {str(r): self.footprints.footprint(r, self.policy.settings.context_tokens) for r in artifact.rates},
            "tokens_per_second": {
                "prefill": counters.prompt_tokens / counters.prefill_seconds if counters.prefill_seconds else 0.0,
                "decode": counters.completion_tokens / counters.decode_seconds if counters.decode_seconds else 0.0},
            "requests": counters.requests, "failed_requests": counters.failed_requests,
            "switches": [record.__dict__ for record in self.manager.switches[-10:]],
        }
