"""Prometheus text exposition of the daemon status."""

from __future__ import annotations

from typing import Any


def render_metrics(status: dict[str, Any]) -> str:
    """Render gauges and counters from ``EdgeDaemon.status()`` in Prometheus text format 0.0.4."""
    memory = status["memory"]
    rows = [
        ("uniql_edge_rate", "gauge", "Current pruning rate.", status["rate"]),
        ("uniql_edge_available_memory_bytes", "gauge", "Memory available to the daemon.", memory["available_bytes"]),
        ("uniql_edge_rss_bytes", "gauge", "Resident set size of the daemon.", memory["rss_bytes"]),
        ("uniql_edge_cpu_load", "gauge", "One-minute load average per core.", memory["cpu_load"]),
        ("uniql_edge_requests_total", "counter", "Finished generation requests.", status["requests"]),
        ("uniql_edge_failed_requests_total", "counter", "Requests that failed with an error.", status["failed_requests"]),
        ("uniql_edge_switches_total", "counter", "Rate switches in the last ten recorded.", len(status["switches"])),
        ("uniql_edge_decode_tokens_per_second", "gauge", "Mean decode speed.", status["tokens_per_second"]["decode"]),
        ("uniql_edge_prefill_tokens_per_second", "gauge", "Mean prefill speed.", status["tokens_per_second"]["prefill"]),
    ]
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {float(value):g}"]
    return "\n".join(lines) + "\n"
