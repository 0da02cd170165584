#!/usr/bin/env bash
# Create .venv (once) and install uniql with the given extras (default: dev, which is everything).
# Usage: bash scripts/setup.sh [EXTRAS]   e.g. bash scripts/setup.sh cloud,edge
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python_bin="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $("$python_bin" --version)" >&2
    "$python_bin" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch is pinned to 2.13.0 in pyproject.toml; a CPU wheel of it is all these machines need.
python -m pip install --quiet -e ".[${extras}]"
echo "installed uniql[${extras}] into .venv" >&2
