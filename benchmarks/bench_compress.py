"""The main job on a real model: time, memory, bytes and perplexity at every rate.

Runs ``uniql compress`` in a child process, so its peak RSS is measured alone. Then it
re-quantizes the same sorted model from the same checkpoints with round-to-nearest (and, with
``--orders``, with GPTQ in reverse column order). Last it measures the fp32 source model on the
same evaluation windows, and prints markdown tables for docs/benchmarks.md.

Run from the repository root: python -m benchmarks.bench_compress MODEL_DIR [--workdir DIR] [--samples 64 --length 512]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import machine_line, peak_rss_mib, today


def run_main_job(model_dir: Path, out: Path, samples: int, length: int, windows: int) -> tuple[float, float]:
    command = [sys.executable, "-m", "uniql.cli.main", "compress", str(model_dir), "--out", str(out), "--overwrite",
               "--keep-workdir", "--calibration-samples", str(samples), "--calibration-length", str(length),
               "--eval-windows", str(windows)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, peak_rss_mib(children=True)


def variant(model_dir: Path, workdir: Path, target: Path, windows: int, **overrides) -> dict:
    """Quantize, package and evaluate again from the main job's sort checkpoints with other settings."""
    from uniql.pipeline import CompressConfig, run_stage

    config_path = workdir / "artifact" / "manifest.json"
    settings = json.loads(config_path.read_text())["provenance"]["pipeline_config"] if config_path.exists() else {}
    settings.update(overrides, eval_windows=windows)
    config = CompressConfig.from_dict(settings)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for stage in ("calibrate", "sort", "allocate", "finetune"):
        if (workdir / stage).exists():
            shutil.copytree(workdir / stage, target / stage)
        shutil.copy(workdir / f"{stage}.done", target / f"{stage}.done")
    for stage in ("quantize", "package", "evaluate"):
        run_stage(stage, model_dir, target, config)
    return json.loads((target / "artifact" / "manifest.json").read_text())


def fp32_perplexity(model_dir: Path, windows: int, length: int) -> dict[str, float]:
    from uniql.evaluation.perplexity import evaluation_windows, perplexity
    from uniql.modeling.adapters import load_model
    from uniql.pipeline.data import load_corpus, load_tokenizer
    from uniql.pipeline.evaluate_stage import logits_function

    model = load_model(model_dir)
    tokenizer = load_tokenizer(model_dir)
    return {name: perplexity(logits_function(model), evaluation_windows(tokenizer, load_corpus(name), windows, length))
            for name in ("wiki", "books")}


def print_tables(manifests: dict[str, dict], fp32: dict[str, float], fp32_bytes: int) -> None:
    main = manifests["gptq"]
    print("| rate | bytes (MB) | x fp32 | params cut | " + " | ".join(f"{name} wiki | {name} books" for name in manifests) + " |")
    print("|---" * (4 + 2 * len(manifests)) + "|")
    print(f"| fp32 source | {fp32_bytes / 1e6:.1f} | 1.00 | 0 | " + " | ".join(f"{fp32['wiki']:.2f} | {fp32['books']:.2f}" for _ in manifests) + " |")
    for index, entry in enumerate(main["rate_table"]):
        cells = []
        for manifest in manifests.values():
            perplexity = manifest["rate_table"][index]["eval"]["perplexity"]
            cells.append(f"{perplexity['wiki']:.2f} | {perplexity['books']:.2f}")
        print(f"| {entry['rate']:.2f} | {entry['bytes'] / 1e6:.1f} | {entry['bytes'] / fp32_bytes:.3f} | "
              f"{entry['realized_rate']['params']:.3f} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path(".uniql/bench-compress"))
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--orders", action="store_true", help="Also run GPTQ in reverse column order on input-sliced matrices.")
    args = parser.parse_args()

    out = args.workdir / "gptq"
    seconds, rss = run_main_job(args.model_dir, out, args.samples, args.length, args.windows)
    workdir = out.with_name(out.name + ".work")
    manifests = {"gptq": json.loads((out / "manifest.json").read_text())}
    stage_seconds = {path.stem: json.loads(path.read_text())["seconds"] for path in sorted(workdir.glob("*.done"))}
    # the main job moved its artifact out of the work directory; the variants read its settings
    shutil.copytree(out, workdir / "artifact", dirs_exist_ok=True)
    manifests["rtn"] = variant(args.model_dir, workdir, args.workdir / "rtn", args.windows, method="rtn")
    if args.orders:
        manifests["gptq-reverse"] = variant(args.model_dir, workdir, args.workdir / "reverse", args.windows, gptq_order="reverse")
    fp32 = fp32_perplexity(args.model_dir, args.windows, args.length)
    fp32_bytes = sum(path.stat().st_size for path in args.model_dir.glob("*.safetensors"))

    print(f"# compress benchmark ({today()}; {machine_line()})")
    print(f"calibration {args.samples} x {args.length} tokens, eval {args.windows} x {args.length} tokens per text")
    print(f"main job (uniql compress, GPTQ, with evaluation): {seconds:.0f} s wall, peak RSS {rss:.0f} MiB")
    print("stage seconds: " + ", ".join(f"{stage} {value:.1f}" for stage, value in stage_seconds.items()))
    print_tables(manifests, fp32, fp32_bytes)


if __name__ == "__main__":
    main()
