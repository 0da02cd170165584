#!/usr/bin/env bash
# Build the peers' environment for bench_edge_peers.py: onnxruntime-genai (and its int4 model
# built from the fp32 SmolLM2 directory) and llama-cpp-python (compiles llama.cpp, ~15 min on 2 cores).
# Usage: bash benchmarks/setup_peers.sh HF_DIR OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
hf_dir="$1"
out_dir="$2"
if [ ! -x .venv-peers/bin/python ]; then
    python3 -m venv .venv-peers
fi
.venv-peers/bin/python -m pip install --quiet --upgrade pip
.venv-peers/bin/python -m pip install --quiet onnxruntime-genai==0.18.0 llama-cpp-python==0.3.16 numpy \
    torch==2.13.0 transformers==5.25.0 onnx==1.23.2 accelerate==1.16.0 onnx-ir==1.1.0 onnxscript==0.7.2
# The builder's defaults for int4 on CPU: block size 32, int8 activations (accuracy level 4).
HF_HUB_OFFLINE=1 .venv-peers/bin/python -m onnxruntime_genai.models.builder \
    -i "$hf_dir" -o "$out_dir" -p int4 -e cpu -c "$out_dir/cache"
