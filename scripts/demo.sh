#!/usr/bin/env bash
# The main job on a fresh machine: install, fetch SmolLM2-135M-Instruct and the texts, compress it
# into one banded 4-bit artifact, evaluate every rate, generate a sentence, and serve it at RATE.
# Usage: bash scripts/demo.sh [RATE]          (RATE defaults to 0.15; SERVE=0 skips serving)
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-0.15}"
artifact="${UNIQL_ARTIFACT:-.uniql/artifacts/smollm2-135m}"

bash scripts/setup.sh cloud,edge
# shellcheck disable=SC1091
. .venv/bin/activate

model_dir="$(uniql assets fetch smollm2-135m | tail -n 1)"
echo "model directory: $model_dir" >&2

# Resumes from checkpoints if interrupted; does nothing if the artifact is already current.
# Evaluates every rate and prints the perplexity and size table at the end.
uniql compress "$model_dir" --out "$artifact"
uniql edge status --artifact "$artifact"
uniql generate "$artifact" "Write one sentence about the sea." --rate "$rate"

if [ "${SERVE:-1}" = "1" ]; then
    echo "serving $artifact at rate $rate on http://127.0.0.1:${PORT:-8400} (Ctrl+C stops)" >&2
    exec uniql edge serve --artifact "$artifact" --rate "$rate" --port "${PORT:-8400}"
fi
