#!/usr/bin/env bash
# cnn_hybrid s/epoch on a GPU at synthetic RetailRocket scale: the paper's batch (1024 rows) and a
# larger one (8192 rows, same learning rate: a speed measurement, not a tuned run).
#
#   bash benchmarks/gpu.sh                  # from anywhere; a fresh GPU machine with internet
#   OUT=/some/dir bash benchmarks/gpu.sh    # also copies the JSON to $OUT/gpu-benchmark.json
#   PYTHON=/path/to/python bash benchmarks/gpu.sh   # an interpreter that already has the project
#
# Installs into $VENV (default /tmp/recsys-gpu-venv) unless PYTHON is given: TensorFlow 2.21's
# Linux wheel finds a GPU only with CUDA 12 user-space libraries, which `tensorflow[and-cuda]`
# brings as nvidia-*-cu12 wheels; then the project with its loose ranges (pyproject.toml), since
# requirements.txt is the lock for Python 3.11 and GPU images often run another Python.
# Budget: one call under 8 minutes (install ~3 min on a fast network, data ~15 s, 2 x 2 epochs).
# Prints "no GPU visible" and stops (exit 2) when TensorFlow sees no GPU, rather than timing a CPU;
# ALLOW_CPU=1 skips that check (to try the script on a CPU, e.g. with SCALE=ci BATCHES=256,1024).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1

if [ -z "${PYTHON:-}" ]; then
    VENV=${VENV:-/tmp/recsys-gpu-venv}
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q "tensorflow[and-cuda]==2.21.0" -e .
    fi
    PYTHON=$VENV/bin/python
fi

if [ -z "${ALLOW_CPU:-}" ]; then
    "$PYTHON" -c 'import sys, tensorflow as tf; g = tf.config.list_physical_devices("GPU"); print(g); sys.exit(not g)' \
        || { echo "no GPU visible to TensorFlow: nothing measured"; exit 2; }
fi

RESULT=${RESULT:-benchmarks/results/$(date +%F)-gpu.json}
"$PYTHON" benchmarks/run.py --batches "${BATCHES:-1024,8192}" --scale "${SCALE:-retailrocket}" --json "$RESULT"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && cp "$RESULT" "$OUT/gpu-benchmark.json"
fi
