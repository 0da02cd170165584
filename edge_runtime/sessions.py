"""The serving engine and rate switches: requests lease an engine and finish on it.

A switch builds the new engine beside the old one when memory allows. Otherwise it drains:
new requests wait, in-flight requests finish, the old engine is dropped, and the new one is
built in its place. A failed build (missing or corrupted band) leaves the old engine serving.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

from edge_runtime.engine import Engine
from edge_runtime.loader import BandLoader
from uniql.errors import UniqlError

logger = logging.getLogger(__name__)


@dataclass
class SwitchRecord:
    """One finished or failed rate switch."""

    old_rate: float
    new_rate: float
    reason: str
    mode: str
    seconds: float
    rss_before: int
    rss_after: int
    error: str | None = None


class EngineManager:
    """Holds the current engine, counts leases and performs switches one at a time."""

    def __init__(self, loader: BandLoader, rate: float, drain_timeout: float = 120.0) -> None:
        self.loader = loader
        self._condition = threading.Condition()
        self._switch_lock = threading.Lock()
        self._in_flight = 0
        self._draining = False
        self.drain_timeout = drain_timeout
        self.switches: list[SwitchRecord] = []
        self.last_load_rss_growth = 0
        self.engine = self._build(rate)
        self._rate = rate

    @property
    def rate(self) -> float:
        """Rate of the serving engine; during a drain, the rate that served before it."""
        return self._rate

    def _build(self, rate: float) -> Engine:
        before = psutil.Process().memory_info().rss
        engine = self.loader.load(rate)
        self.last_load_rss_growth = psutil.Process().memory_info().rss - before
        return engine

    @contextmanager
    def lease(self, timeout: float = 120.0) -> Iterator[Engine]:
        """Yield the current engine; it stays alive until the block exits, even across a switch."""
        with self._condition:
            if not self._condition.wait_for(lambda: not self._draining, timeout=timeout):
                raise TimeoutError(f"no engine became ready within {timeout:g} s during a rate switch; retry")
            engine = self.engine
            self._in_flight += 1
        try:
            yield engine
        finally:
            with self._condition:
                self._in_flight -= 1
                self._condition.notify_all()

    def switch(self, rate: float, reason: str, build_beside: bool) -> SwitchRecord:
        """Move to ``rate``; raises nothing for a failed build, which is logged and recorded."""
        with self._switch_lock:
            old_rate = self.rate
            rss_before = psutil.Process().memory_info().rss
            started = time.perf_counter()
            mode = "beside" if build_beside else "drain"
            error = None
            try:
                if build_beside:
                    self._switch_beside(rate)
                else:
                    self._switch_drain(rate)
            except (UniqlError, OSError, TimeoutError) as failure:
                error = str(failure)
                logger.error("switch from rate %g to %g failed, still serving rate %g: %s",
                             old_rate, rate, self.rate, error)
            release_free_memory()
            record = SwitchRecord(old_rate, rate, reason, mode, time.perf_counter() - started,
                                  rss_before, psutil.Process().memory_info().rss, error)
            self.switches.append(record)
            if error is None:
                logger.info("switched rate %g -> %g (%s, %s) in %.2f s; RSS %.1f -> %.1f MB", old_rate, rate,
                            reason, mode, record.seconds, rss_before / 1e6, record.rss_after / 1e6)
            return record

    def _switch_beside(self, rate: float) -> None:
        engine = self._build(rate)
        with self._condition:
            self.engine = engine
            self._rate = rate

    def _switch_drain(self, rate: float) -> None:
        with self._condition:
            self._draining = True
            try:
                if not self._condition.wait_for(lambda: self._in_flight == 0, timeout=self.drain_timeout):
                    raise TimeoutError(f"requests still running after {self.drain_timeout:g} s; switch skipped")
                old_rate = self._rate
                # Free the old weights before the new build, so the peak stays near one session.
                # If the build fails, the old rate is rebuilt from its already verified bands.
                self.engine = None
                release_free_memory()
                try:
                    self.engine = self._build(rate)
                    self._rate = rate
                except BaseException:
                    self.engine = self._build(old_rate)
                    raise
            finally:
                self._draining = False
                self._condition.notify_all()


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS.

    glibc keeps the freed memory of a dropped onnxruntime session in its arenas. That kept RSS
    170 to 220 MiB above a fresh process after each switch (benchmarks/bench_edge_switch.py),
    and ``malloc_trim(0)`` returns it. Without glibc the trim is skipped.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        logger.debug("malloc_trim is not available; freed memory stays with the allocator")
