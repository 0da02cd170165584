"""Prefill and decode speed and peak RSS of the edge engine at several rates, side by side.

Each rate runs in its own subprocess so peak RSS is per rate. Run:
    python benchmarks/bench_edge.py --artifact DIR --rates 0,0.15,0.35 --prompt 128 --generate 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(artifact: str, rate: float, prompt_length: int, generate: int, threads: int, accuracy_level: int = 0) -> dict:
    """Load the engine at ``rate`` and time one prefill and ``generate`` greedy decode steps (batch 1)."""
    import resource

    import numpy as np

    from edge_runtime.engine import Engine

    engine = Engine.load(artifact, rate, threads=threads, accuracy_level=accuracy_level)
    vocab = engine.config["vocab_size"]
    ids = np.random.default_rng(0).integers(0, vocab, (1, prompt_length))
    engine.logits(ids[:, :8])  # warm-up

    started = time.perf_counter()
    logits, cache = engine.forward(ids, engine.empty_cache(1))
    prefill = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(generate):
        logits, cache = engine.forward(logits.argmax(-1)[:, None], cache)
    decode = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rate": rate, "prefill_tok_s": prompt_length / prefill, "decode_tok_s": generate / decode,
            "peak_rss_mib": peak_kib / 1024, "build_s": engine.build_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True, help="artifact directory")
    parser.add_argument("--rates", default="0", help="comma-separated rates; the first is the baseline of the ratios")
    parser.add_argument("--prompt", type=int, default=128, help="prompt length in tokens")
    parser.add_argument("--generate", type=int, default=64, help="decode steps")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    parser.add_argument("--accuracy-level", type=int, default=0, choices=(0, 4),
                        help="MatMulNBits compute: 0 float32 activations (exact), 4 int8 activations")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(measure(args.artifact, args.one, args.prompt, args.generate, args.threads, args.accuracy_level)))
        return
    rows = []
    for rate in (float(value) for value in args.rates.split(",")):
        command = [sys.executable, __file__, "--artifact", args.artifact, "--prompt", str(args.prompt),
                   "--generate", str(args.generate), "--threads", str(args.threads), "--one", str(rate),
                   "--accuracy-level", str(args.accuracy_level)]
        rows.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
    base = rows[0]
    print(f"{'rate':>6} {'prefill tok/s':>14} {'decode tok/s':>13} {'peak RSS MiB':>13} {'prefill x':>9} {'decode x':>9} {'RSS x':>6}")
    for row in rows:
        print(f"{row['rate']:>6g} {row['prefill_tok_s']:>14.1f} {row['decode_tok_s']:>13.1f} {row['peak_rss_mib']:>13.1f} "
              f"{row['prefill_tok_s'] / base['prefill_tok_s']:>9.2f} {row['decode_tok_s'] / base['decode_tok_s']:>9.2f} "
              f"{row['peak_rss_mib'] / base['peak_rss_mib']:>6.2f}")


if __name__ == "__main__":
    main()
