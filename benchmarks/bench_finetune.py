"""Perplexity of sorted-only vs sorted + masked-LoRA fine-tuned models, in float and after 4-bit GPTQ.

Run:  python benchmarks/bench_finetune.py --model-dir DIR [--workdir DIR]
DIR is a Hugging Face model directory such as the one ``uniql assets fetch smollm2-135m`` prints.
NOTE: the defaults are a guess at a 30-minute CPU run and were never timed end to end. On 2 busy
cores one masked SmolLM2-135M perplexity pass over 2 windows of 128 tokens took about 20 s, so
lower --eval-windows, --steps or --train-windows when time is short. Both variants share one calibration, sort and allocation;
fine-tuning uses the ``calibration`` corpus and perplexity uses ``wiki`` and ``books``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from uniql.finetune.stage import kept_sizes_by_rate
from uniql.modeling.adapters import arch_config_from_hf, read_hf_config
from uniql.pipeline import CompressConfig, run_stage
from uniql.pipeline import checkpoints as ckpt
from uniql.pipeline.stages import read_allocation

logger = logging.getLogger("bench_finetune")

SHARED_STAGES = ("calibrate", "sort", "allocate")
QUANTIZED_STAGES = ("quantize", "package", "evaluate")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="Hugging Face model directory")
    parser.add_argument("--workdir", type=Path, default=Path("bench-finetune.work"), help="job directories (default: %(default)s)")
    parser.add_argument("--rates", default="0,0.15,0.25,0.35", help="comma-separated pruning rates (default: %(default)s)")
    parser.add_argument("--calibration-samples", type=int, default=32, help="calibration windows for sorting and GPTQ")
    parser.add_argument("--calibration-length", type=int, default=256, help="tokens per calibration window")
    parser.add_argument("--steps", type=int, default=60, help="fine-tuning optimizer steps (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="peak AdamW learning rate")
    parser.add_argument("--seq-len", type=int, default=256, help="fine-tuning window length in tokens")
    parser.add_argument("--micro-batch", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument("--train-windows", type=int, default=256, help="fine-tuning windows")
    parser.add_argument("--finetune-eval-windows", type=int, default=8, help="held-out windows for model selection")
    parser.add_argument("--eval-every", type=int, default=20, help="steps between held-out evaluations")
    parser.add_argument("--eval-windows", type=int, default=8, help="perplexity windows per text")
    parser.add_argument("--eval-length", type=int, default=256, help="tokens per perplexity window")
    parser.add_argument("--method", choices=("gptq", "rtn"), default="gptq", help="4-bit quantization method")
    return parser.parse_args()


def job_config(args: argparse.Namespace, finetune: dict | None) -> CompressConfig:
    return CompressConfig.from_dict({
        "rates": [float(rate) for rate in args.rates.split(",")],
        "calibration_samples": args.calibration_samples,
        "calibration_length": args.calibration_length,
        "eval_windows": args.eval_windows,
        "eval_length": args.eval_length,
        "method": args.method,
        "finetune": finetune,
        "device": "cpu",
    })


def finetune_settings(args: argparse.Namespace) -> dict:
    return {
        "enabled": True, "steps": args.steps, "warmup_steps": max(1, args.steps // 10),
        "learning_rate": args.learning_rate, "seq_len": args.seq_len, "micro_batch": args.micro_batch,
        "grad_accum": args.grad_accum, "train_windows": args.train_windows,
        "eval_windows": args.finetune_eval_windows, "eval_every": args.eval_every, "text": "calibration",
    }


def float_perplexity(model_dir: Path, workdir: Path, weights: Path, config: CompressConfig) -> dict[str, dict[str, float]]:
    """Perplexity per rate and text of float weights run in masked mode (equal to the sliced model)."""
    from uniql.evaluation.perplexity import evaluation_windows, perplexity
    from uniql.pipeline.data import load_corpus, load_tokenizer

    model = ckpt.load_saved_model(arch_config_from_hf(read_hf_config(model_dir)), weights)
    tokenizer = load_tokenizer(model_dir)
    kept_by_rate = kept_sizes_by_rate(read_allocation(workdir))
    results: dict[str, dict[str, float]] = {}
    for name, spec in config.eval_texts.items():
        windows = evaluation_windows(tokenizer, load_corpus(spec), config.eval_windows, config.eval_length)
        for rate, kept in kept_by_rate.items():
            with torch.no_grad():
                value = perplexity(lambda ids, kept=kept: model(ids, kept=kept), windows)
            results.setdefault(f"{rate:g}", {})[name] = value
    return results


def run_variant(args, workdir: Path, shared: Path, finetune: dict | None) -> dict:
    config = job_config(args, finetune)
    if not ckpt.is_done(workdir, "allocate"):
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.copytree(shared, workdir)
    started = time.perf_counter()
    if finetune is not None:
        run_stage("finetune", args.model_dir, workdir, config)
    weights = workdir / ("finetune" if finetune else "sort") / "model.safetensors"
    result = {"float": float_perplexity(args.model_dir, workdir, weights, config)}
    quantized = {stage: run_stage(stage, args.model_dir, workdir, config) for stage in QUANTIZED_STAGES}
    result["q4"] = quantized["evaluate"]["perplexity"]
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def print_table(results: dict[str, dict], rates: list[float]) -> None:
    texts = sorted(next(iter(results["sorted"]["float"].values())))
    print("| rate | " + " | ".join(f"{variant} {kind} {text}" for variant in results for kind in ("float", "q4")
                                     for text in texts) + " |")
    print("|---" * (1 + len(results) * 2 * len(texts)) + "|")
    for rate in rates:
        key = f"{rate:g}"
        cells = [f"{results[variant][kind][key][text]:.2f}" for variant in results for kind in ("float", "q4")
                 for text in texts]
        print(f"| {key} | " + " | ".join(cells) + " |")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    shared = args.workdir / "shared"
    base_config = job_config(args, None)
    started = time.perf_counter()
    for stage in SHARED_STAGES:
        run_stage(stage, args.model_dir, shared, base_config)
    logger.info("calibrate, sort and allocate took %.1f s", time.perf_counter() - started)

    results = {
        "sorted": run_variant(args, args.workdir / "sorted", shared, None),
        "finetuned": run_variant(args, args.workdir / "finetuned", shared, finetune_settings(args)),
    }
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1))
    print_table(results, base_config.rates)
    print(f"total {time.perf_counter() - started:.0f} s; results in {args.workdir / 'results.json'}")


if __name__ == "__main__":
    main()
