#!/usr/bin/env bash
# Install everything and run the whole test suite: unit, integration (real model, PostgreSQL,
# Redis, Celery workers) and browser tests.
# Usage: bash scripts/test.sh [PYTEST ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh dev
# shellcheck disable=SC1091
. .venv/bin/activate
bash scripts/services.sh

mkdir -p test-output
python -m pytest -p no:cacheprovider -ra --durations=15 "$@"
