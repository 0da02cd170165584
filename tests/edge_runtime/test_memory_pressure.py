"""The daemon in a subprocess moves to a higher rate while another process keeps memory allocated, and back."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

HOLD_MIB = 1600
MARGIN_MIB = 700  # budget above the rate-0 footprint before the allocation; well above the noise of other processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_rate(client: httpx.Client, expected: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    rate = None
    while time.monotonic() < deadline:
        try:
            rate = client.get("/status").json()["rate"]
        except (httpx.HTTPError, ValueError):
            rate = None
        if rate == expected:
            return rate
        time.sleep(0.25)
    return rate


@pytest.mark.slow
def test_memory_pressure_switches_rate(tiny_artifacts, tmp_path):
    port = free_port()
    reserve_mib = psutil.virtual_memory().available / 2**20 - MARGIN_MIB
    config = {"artifact": str(tiny_artifacts("llama")), "port": port, "model_name": "tiny", "start_rate": 0.0,
              "reserve_mib": reserve_mib, "hysteresis_mib": 20, "min_dwell_seconds": 1, "monitor_interval": 0.3,
              "context_tokens": 256}
    (tmp_path / "edge.json").write_text(json.dumps(config))
    daemon = subprocess.Popen([sys.executable, "-m", "uniql.cli.main", "edge", "serve", "--config", str(tmp_path / "edge.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    holder = None
    failures, successes = [], [0]
    stop = threading.Event()
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        assert wait_for_rate(client, 0.0, 60) == 0.0

        def client_loop():
            for _ in range(2000):
                if stop.is_set():
                    return
                try:
                    response = client.post("/v1/completions", json={"prompt": "The quick", "max_tokens": 8})
                    if response.status_code == 200:
                        successes[0] += 1
                    else:
                        failures.append(response.text)
                except httpx.HTTPError as error:
                    failures.append(repr(error))

        loop = threading.Thread(target=client_loop)
        loop.start()
        holder = subprocess.Popen([sys.executable, "-c",
                                   f"import numpy, time; a = numpy.ones({HOLD_MIB} * 2**18, dtype=numpy.float32); time.sleep(60)"])
        assert wait_for_rate(client, 0.35, 30) == 0.35
        holder.kill()
        holder.wait()
        assert wait_for_rate(client, 0.0, 30) == 0.0, client.get("/status").json()
        stop.set()
        loop.join(timeout=60)

        switches = client.get("/status").json()["switches"]
        assert failures == [], failures[:3]
        assert successes[0] > 0
        assert [(s["old_rate"], s["new_rate"]) for s in switches][-2:] == [(0.0, 0.35), (0.35, 0.0)]
    finally:
        stop.set()
        if holder is not None and holder.poll() is None:
            holder.kill()
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
