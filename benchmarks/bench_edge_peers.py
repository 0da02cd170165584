"""Our edge engine against onnxruntime-genai, llama.cpp and the memory-bandwidth ceiling.

Every system runs in its own subprocess (so peak RSS is its own), in rounds that alternate
the systems, because these shared machines drift by +-25 % within minutes. Reported numbers
are medians over the rounds. The peers need their own environment, since llama-cpp-python
compiles llama.cpp and onnxruntime-genai's model builder needs torch:

    bash benchmarks/setup_peers.sh            # creates .venv-peers (about 15 minutes, once)
    python -m benchmarks.bench_edge_peers --artifact ART --genai-dir GENAI_DIR --gguf GGUF --rounds 3

Batch 1, greedy, 2 threads, random prompt tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import machine_line, today

HERE = Path(__file__).resolve().parent


def run_json(command: list[str]) -> dict:
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def ours(artifact: str, rate: float, prompt: int, generate: int, threads: int, accuracy_level: int = 0) -> dict:
    return run_json([sys.executable, str(HERE / "bench_edge.py"), "--artifact", artifact, "--prompt", str(prompt),
                     "--generate", str(generate), "--threads", str(threads), "--one", str(rate),
                     "--accuracy-level", str(accuracy_level)])


def peer(python: str, system: str, path: str, prompt: int, generate: int, threads: int) -> dict:
    return run_json([python, str(HERE / "peer_runner.py"), system, path, str(prompt), str(generate), str(threads)])


def read_bandwidth_gb_s(threads: int, megabytes: int = 1024) -> float:
    """Read bandwidth of ``threads`` threads summing disjoint halves of a large array."""
    import threading

    import numpy as np

    data = np.ones(megabytes * 2**20 // 8)
    parts = np.array_split(data, threads)
    best = 0.0
    for _ in range(5):
        workers = [threading.Thread(target=np.sum, args=(part,)) for part in parts]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, data.nbytes / (time.perf_counter() - started) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--genai-dir", help="onnxruntime-genai model folder (built by setup_peers.sh)")
    parser.add_argument("--gguf", help="the original GGUF file for llama.cpp")
    parser.add_argument("--peer-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--rates", default="0,0.15,0.25,0.35")
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--generate", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--int8", action="store_true", help="Also run our engine with int8 activations (accuracy level 4).")
    args = parser.parse_args()

    rates = [float(value) for value in args.rates.split(",")]
    samples: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for rate in rates:
            samples.setdefault(f"uniql {rate:.2f}", []).append(ours(args.artifact, rate, args.prompt, args.generate, args.threads))
            if args.int8:
                samples.setdefault(f"uniql {rate:.2f} int8", []).append(
                    ours(args.artifact, rate, args.prompt, args.generate, args.threads, accuracy_level=4))
        if args.genai_dir:
            samples.setdefault("onnxruntime-genai int4", []).append(
                peer(args.peer_python, "genai", args.genai_dir, args.prompt, args.generate, args.threads))
        if args.gguf:
            samples.setdefault("llama.cpp Q4_1 GGUF", []).append(
                peer(args.peer_python, "llamacpp", args.gguf, args.prompt, args.generate, args.threads))
    bandwidth = read_bandwidth_gb_s(args.threads)

    from uniql.artifact import Artifact

    artifact = Artifact.open(args.artifact)
    print(f"# edge speed ({today()}; {machine_line()}); batch 1, prompt {args.prompt}, generate {args.generate}, "
          f"{args.threads} threads, median of {args.rounds} alternating rounds")
    print(f"read bandwidth: {bandwidth:.1f} GB/s")
    base = statistics.median(row["decode_tok_s"] for row in samples[f"uniql {rates[0]:.2f}"])
    print("| system | prefill tok/s | decode tok/s | decode x uniql rate 0 | peak RSS MiB | weight MB | decode ceiling tok/s |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in samples.items():
        prefill = statistics.median(row["prefill_tok_s"] for row in rows)
        decode = statistics.median(row["decode_tok_s"] for row in rows)
        rss = statistics.median(row["peak_rss_mib"] for row in rows)
        weight_bytes = rows[0].get("weight_bytes")
        if name.startswith("uniql"):
            weight_bytes = artifact.rate_entry(float(name.split()[1]))["weight_bytes"]
        ceiling = f"{bandwidth * 1e9 / weight_bytes:.0f}" if weight_bytes else "-"
        weight = f"{weight_bytes / 1e6:.0f}" if weight_bytes else "-"
        print(f"| {name} | {prefill:.0f} | {decode:.1f} | {decode / base:.2f} | {rss:.0f} | {weight} | {ceiling} |")


if __name__ == "__main__":
    main()
