"""Time and peak RSS of the edge daemon's run-time rate switches, against each rate's steady RSS.

Each switch runs through ``EngineManager.switch`` with a ``LocalLoader``, once built beside the
old engine and once by drain and replace. Every switch runs first alone in a fresh process, then
all run in order in one process (as in a long-lived daemon), and four more run there while a
request loop leases the manager. A psutil thread samples RSS every
``--sample-ms`` during the switch. ``ru_maxrss`` is printed beside it as a cross-check, because a
sampling thread can miss a peak while a C call holds the GIL. The steady RSS of each rate comes
from a fresh subprocess (load, then one 64-token prefill). Goal: a switch under 1 s and a peak of
at most 1.10 x the larger steady RSS of the two rates. Run:
    python benchmarks/bench_edge_switch.py --artifact .uniql/artifacts-smollm2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Self

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_line, today

MIB = 2**20
TIME_GOAL_S = 1.0
PEAK_GOAL_RATIO = 1.10
PAIRS = ((0.0, 0.35), (0.35, 0.0), (0.0, 0.15), (0.15, 0.0))


def steady_rss(artifact: str, rate: float, prompt_length: int, threads: int) -> dict:
    """Load the engine at ``rate`` in this (fresh) process; RSS after load and after one prefill."""
    from edge_runtime.engine import Engine

    process = psutil.Process()
    engine = Engine.load(artifact, rate, threads=threads)
    after_load = process.memory_info().rss
    ids = np.random.default_rng(0).integers(0, engine.config["vocab_size"], (1, prompt_length))
    engine.forward(ids, engine.empty_cache(1))
    after_prefill = process.memory_info().rss
    return {"rate": rate, "load_rss": after_load, "prefill_rss": after_prefill,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


class RssSampler:
    """Background thread that records this process's RSS every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._process = psutil.Process()

    def _run(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), self._process.memory_info().rss))
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self._process.memory_info().rss))

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)

    @property
    def max_gap(self) -> float:
        times = [moment for moment, _ in self.samples]
        return max((later - earlier for earlier, later in pairwise(times)), default=0.0)


@dataclass
class RequestLoop:
    """Thread that sends short greedy requests through ``manager.lease`` until stopped."""

    manager: object
    prompt: list[int]
    max_tokens: int
    lease_timeout: float

    def __post_init__(self) -> None:
        self.succeeded = 0
        self.failed = 0
        self.errors: list[str] = []
        self.completions: list[tuple[float, float, float]] = []  # (start, end, engine rate)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-loop", daemon=True)

    def _run(self) -> None:
        from edge_runtime.generation import SamplingParams, generate_tokens

        params = SamplingParams(max_tokens=self.max_tokens)
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                with self.manager.lease(timeout=self.lease_timeout) as engine:
                    tokens = list(generate_tokens(engine, [self.prompt], params, eos_ids=set()))
                    rate = engine.rate
                if len(tokens) != self.max_tokens:
                    raise RuntimeError(f"expected {self.max_tokens} tokens, got {len(tokens)}")
            except Exception as error:  # noqa: BLE001 - every failed request is counted, whatever its type
                self.failed += 1
                self.errors.append(f"{type(error).__name__}: {error}")
                continue
            self.succeeded += 1
            self.completions.append((started, time.perf_counter(), rate))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def prefill(manager, prompt_length: int) -> None:
    """Run one prefill on the serving engine, so its memory arena matches the state of the steady RSS measurement."""
    with manager.lease() as engine:
        ids = np.random.default_rng(0).integers(0, engine.config["vocab_size"], (1, prompt_length))
        engine.forward(ids, engine.empty_cache(1))


def measure_switch(manager, rate: float, build_beside: bool, sample_interval: float,
                   loop: RequestLoop | None) -> dict:
    """Switch ``manager`` to ``rate`` while sampling RSS; returns timing, memory and request counts."""
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    counts_before = (loop.succeeded, loop.failed) if loop else (0, 0)
    with RssSampler(sample_interval) as sampler:
        window_start = time.perf_counter()
        record = manager.switch(rate, reason="benchmark", build_beside=build_beside)
        window_end = time.perf_counter()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if record.error is not None:
        raise RuntimeError(f"switch {record.old_rate:g} -> {rate:g} ({record.mode}) failed: {record.error}")
    if manager.rate != rate or manager.engine.rate != rate:
        raise RuntimeError(f"after switching to {rate:g} the manager serves {manager.rate:g}")

    row = {"old": record.old_rate, "new": rate, "mode": record.mode, "seconds": record.seconds,
           "rss_before": record.rss_before, "rss_after": record.rss_after, "peak": sampler.peak,
           "samples": len(sampler.samples), "max_gap": sampler.max_gap,
           "maxrss_before": maxrss_before, "maxrss_after": maxrss_after, "load": loop is not None}
    if loop is not None:
        # Requests that were running at some moment of the switch window and finished successfully.
        overlapping = [entry for entry in list(loop.completions) if entry[1] > window_start and entry[0] < window_end]
        row["ok_during"] = loop.succeeded - counts_before[0]
        row["failed_during"] = loop.failed - counts_before[1]
        row["overlapping"] = len(overlapping)
    return row


def new_manager(args: argparse.Namespace, rate: float):
    from edge_runtime.loader import LocalLoader
    from edge_runtime.sessions import EngineManager

    manager = EngineManager(LocalLoader(args.artifact, threads=args.threads), rate)
    prefill(manager, args.prompt)
    return manager


def run_one_switch(args: argparse.Namespace, old: float, new: float, build_beside: bool) -> dict:
    """Measure one switch in this (fresh) process, so no earlier switch has grown its heap."""
    manager = new_manager(args, old)
    row = measure_switch(manager, new, build_beside, args.sample_ms / 1000, None)
    row["history"] = "fresh process"
    return row


def run_isolated(args: argparse.Namespace) -> list[dict]:
    rows = []
    for mode in ("beside", "drain"):
        for old, new in PAIRS:
            command = [sys.executable, __file__, "--artifact", args.artifact, "--prompt", str(args.prompt),
                       "--threads", str(args.threads), "--sample-ms", str(args.sample_ms),
                       "--one-switch", f"{old},{new},{mode}"]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            rows.append(json.loads(result.stdout))
    return rows


def run_switches(args: argparse.Namespace) -> tuple[list[dict], RequestLoop | None]:
    """Run every switch in order in one process, then four more under a request loop."""
    manager = new_manager(args, PAIRS[0][0])
    rows = []
    interval = args.sample_ms / 1000
    for build_beside in (True, False):
        for old, new in PAIRS:
            if manager.rate != old:
                raise RuntimeError(f"expected the manager at rate {old:g}, it serves {manager.rate:g}")
            rows.append(measure_switch(manager, new, build_beside, interval, None) | {"history": "sequence"})
            prefill(manager, args.prompt)

    # Under load: a request loop runs while switching 0 -> 0.35 and back, in both modes.
    vocab = manager.engine.config["vocab_size"]
    prompt = [int(token) for token in np.random.default_rng(1).integers(0, vocab, args.load_prompt)]
    loop = RequestLoop(manager, prompt, args.load_tokens, lease_timeout=30.0)
    loop.start()
    try:
        for build_beside in (True, False):
            for _, new in PAIRS[:2]:
                time.sleep(args.load_gap)
                rows.append(measure_switch(manager, new, build_beside, interval, loop) | {"history": "sequence"})
        time.sleep(args.load_gap)
    finally:
        loop.stop()
    return rows, loop


def measure_steady(args: argparse.Namespace) -> dict[float, dict]:
    steady = {}
    for rate in sorted({rate for pair in PAIRS for rate in pair}):
        command = [sys.executable, __file__, "--artifact", args.artifact, "--prompt", str(args.prompt),
                   "--threads", str(args.threads), "--steady", str(rate)]
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        steady[rate] = json.loads(result.stdout)
    return steady


def print_report(args: argparse.Namespace, steady: dict[float, dict], rows: list[dict], loop: RequestLoop | None) -> None:
    print(f"## Edge rate switch, {today()}")
    print()
    print(f"Machine: {machine_line()}")
    print(f"Artifact: {args.artifact}; onnxruntime threads: {args.threads or 'all cores'}; "
          f"RSS sampled every {args.sample_ms:g} ms; steady RSS = fresh process after load and a "
          f"{args.prompt}-token prefill")
    print()
    print("| rate | steady RSS after load (MiB) | after prefill (MiB) | ru_maxrss (MiB) |")
    print("|---:|---:|---:|---:|")
    for rate, entry in steady.items():
        print(f"| {rate:g} | {entry['load_rss'] / MIB:.1f} | {entry['prefill_rss'] / MIB:.1f} | {entry['peak_rss'] / MIB:.1f} |")

    print()
    print(f"Goal: switch under {TIME_GOAL_S:g} s; peak RSS during the switch at most {PEAK_GOAL_RATIO:.2f} x "
          "the larger steady RSS (after prefill) of the two rates.")
    print()
    print("Process: 'fresh process' = the only switch of a new process after load and prefill at the old rate; "
          "'sequence' = one process that ran the rows above it in order.")
    print()
    print("| switch | mode | process | request loop | time (s) | RSS before (MiB) | peak RSS (MiB) | RSS after (MiB) "
          "| larger steady (MiB) | peak / steady | time goal | peak goal | samples (max gap ms) "
          "| ru_maxrss before -> after (MiB) | requests ok / failed during switch (ok that overlapped it) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|")
    for row in rows:
        larger = max(steady[row["old"]]["prefill_rss"], steady[row["new"]]["prefill_rss"])
        ratio = row["peak"] / larger
        requests = f"{row['ok_during']} / {row['failed_during']} ({row['overlapping']})" if row["load"] else "-"
        print(f"| {row['old']:g} -> {row['new']:g} | {row['mode']} | {row['history']} | {'yes' if row['load'] else 'no'} "
              f"| {row['seconds']:.2f} | {row['rss_before'] / MIB:.1f} | {row['peak'] / MIB:.1f} "
              f"| {row['rss_after'] / MIB:.1f} | {larger / MIB:.1f} | {ratio:.2f} "
              f"| {'met' if row['seconds'] < TIME_GOAL_S else 'missed'} "
              f"| {'met' if ratio <= PEAK_GOAL_RATIO else 'missed'} "
              f"| {row['samples']} ({row['max_gap'] * 1000:.0f}) "
              f"| {row['maxrss_before'] / MIB:.1f} -> {row['maxrss_after'] / MIB:.1f} | {requests} |")

    if loop is not None:
        print()
        print(f"Request loop ({args.load_prompt}-token prompt, {args.load_tokens} greedy tokens per request): "
              f"{loop.succeeded} succeeded, {loop.failed} failed in total.")
        for error in sorted(set(loop.errors))[:5]:
            print(f"- failure: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", default=".uniql/artifacts-smollm2", help="artifact directory")
    parser.add_argument("--prompt", type=int, default=64, help="prefill length in tokens for the steady RSS")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    parser.add_argument("--sample-ms", type=float, default=5.0, help="RSS sampling interval in milliseconds")
    parser.add_argument("--load-prompt", type=int, default=16, help="prompt length in tokens of the request loop")
    parser.add_argument("--load-tokens", type=int, default=8, help="greedy tokens per request of the request loop")
    parser.add_argument("--load-gap", type=float, default=1.0,
                        help="seconds the request loop runs alone before each loaded switch and after the last")
    parser.add_argument("--steady", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--one-switch", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one_switch is not None:
        old, new, mode = args.one_switch.split(",")
        print(json.dumps(run_one_switch(args, float(old), float(new), mode == "beside")))
        return

    if args.steady is not None:
        print(json.dumps(steady_rss(args.artifact, args.steady, args.prompt, args.threads)))
        return
    steady = measure_steady(args)
    rows = run_isolated(args)
    sequence_rows, loop = run_switches(args)
    rows += sequence_rows
    print_report(args, steady, rows, loop)


if __name__ == "__main__":
    main()
