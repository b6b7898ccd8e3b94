#!/usr/bin/env bash
# Makes .venv with the pinned dependencies and builds the native code (CPU twin,
# CUDA kernels where nvcc exists, TensorRT plugin where TensorRT exists) into build/.
# Safe to re-run: it only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.ttsr-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install --quiet --upgrade pip
    # torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
    .venv/bin/pip install --quiet torch==2.13.0
    .venv/bin/pip install --quiet -e '.[dev,serve]'
    # Triton Inference Server binaries (see the serve extra in pyproject.toml for why --no-deps).
    .venv/bin/pip install --quiet --no-deps nvidia-pytriton==0.7.0
    # Type stubs only; their dependency on tensorrt itself is not wanted here.
    .venv/bin/pip install --quiet --no-deps tensorrt-stubs==10.13.0.35.1
    touch "$stamp"
fi
if [ -f CMakeLists.txt ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$PWD/.venv/bin/python" > build.log 2>&1 \
        || { cat build.log; exit 1; }
    cmake --build build -j 2 >> build.log 2>&1 || { tail -50 build.log; exit 1; }
fi
