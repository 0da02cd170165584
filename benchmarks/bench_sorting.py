"""One-pass sorting against a per-rate refit baseline, side by side on the same statistics.

UniQL sorts every module once; each rate then keeps a prefix. A MoDeGPT-style baseline
refits the MLP down projection for every rate with a Nystrom pseudo-inverse
``W_d' = (S^T C S)^+ S^T C W_d`` over the kept channels ``S``. Both run here on the same
calibration statistics for all rates, and the script prints the time of each and their ratio.

Run from the repository root: python -m benchmarks.bench_sorting MODEL_DIR [--samples 16 --length 256] [--layers N]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import machine_line, today
from uniql.allocation import Granularity, allocate
from uniql.calibration import collect_statistics
from uniql.data.calibration import pack_token_windows
from uniql.data.texts import load_documents
from uniql.modeling.adapters import load_model
from uniql.pipeline.config import DEFAULT_RATES
from uniql.pipeline.data import load_tokenizer
from uniql.sorting import sort_model


def nystrom_refit(down: torch.Tensor, second_moment: torch.Tensor, kept: int, order: torch.Tensor) -> torch.Tensor:
    """Refit ``down [d, D]`` on the ``kept`` best channels: ``(S^T C S)^+ S^T C W_d^T`` (float64)."""
    selected = order[:kept]
    covariance = second_moment.double()
    block = covariance[selected][:, selected]
    cross = covariance[selected]                                   # S^T C, [k, D]
    return (torch.linalg.pinv(block) @ cross @ down.double().T).T  # [d, k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--layers", type=int, default=None, help="Time only the first N layers on both sides (default: all).")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    model = load_model(args.model_dir)
    windows = pack_token_windows(load_tokenizer(args.model_dir), load_documents("calibration"), args.samples, args.length, 0)
    stats = collect_statistics(model, windows)
    rates = list(DEFAULT_RATES)
    allocation = allocate(model.config, stats.block_influence(), rates, Granularity(64, 16))
    if args.layers is not None:
        stats.layers = stats.layers[: args.layers]

    started = time.perf_counter()
    sorted_model = sort_model(model, stats)
    one_pass = time.perf_counter() - started

    from uniql.sorting.mlp import mlp_channel_order

    started = time.perf_counter()
    for kept in allocation:
        for index, layer in enumerate(stats.layers):
            order = mlp_channel_order(layer.down_second_moment, 0.01)
            nystrom_refit(model.params[f"layers.{index}.mlp.down_proj.weight"], layer.down_second_moment, kept[index].mlp, order)
    refit = time.perf_counter() - started

    print(f"# sorting cost, {len(stats.layers)} of {model.config.num_layers} layers, {len(rates)} rates ({today()}; {machine_line()})")
    print("| method | what runs | seconds |")
    print("|---|---|---|")
    print(f"| UniQL one-pass sort | MLP, Q/K and V/O of every layer, once for all rates | {one_pass:.1f} |")
    print(f"| per-rate Nystrom refit (MLP only) | one pseudo-inverse per layer and rate | {refit:.1f} |")
    print(f"ratio refit / one-pass: {refit / one_pass:.1f}x")
    del sorted_model


if __name__ == "__main__":
    main()
