#!/usr/bin/env bash
# GPU checks of the search-transfer CUDA kernels, as one command, for a machine with an
# NVIDIA GPU, a CUDA build of PyTorch and nvcc (TensorRT not needed):
#   1. builds libttsr_st_cuda.so into build/gpu-check (for this GPU's architecture),
#   2. runs scripts/gpu_check.py: accuracy against the PyTorch reference block, then the
#      latency / peak-memory benchmark. Extra arguments go to gpu_check.py (see --help).
# Environment: PYTHON (default .venv/bin/python, else python3), CUDA_ARCHS (default: native).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
build_dir=build/gpu-check
mkdir -p build
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE="$(command -v "$PYTHON")" \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-native}" > "$build_dir.log" 2>&1 \
    || { cat "$build_dir.log"; exit 1; }
if ! grep -q "cuBLAS:" "$build_dir.log"; then
    grep -i "skipped\|not found" "$build_dir.log" >&2 || true
    echo "gpu_check: CMake did not enable the CUDA kernels (needs nvcc and cuBLAS; see $build_dir.log)" >&2
    exit 1
fi
cmake --build "$build_dir" -j "$(nproc)" --target ttsr_st_cuda >> "$build_dir.log" 2>&1 \
    || { tail -50 "$build_dir.log"; exit 1; }
exec "$PYTHON" scripts/gpu_check.py --library "$build_dir/libttsr_st_cuda.so" "$@"
