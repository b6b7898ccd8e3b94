#!/usr/bin/env bash
# GPU checks of the search-transfer CUDA kernels, as one command, for a machine with an
# NVIDIA GPU, a CUDA build of PyTorch and nvcc (TensorRT not needed):
#   1. builds libttsr_st_cuda.so into build/gpu-check (for this GPU's architecture),
#   2. runs scripts/gpu_check.py (the front end of ttsr/bench/): accuracy against the PyTorch
#      reference block, compute-sanitizer memcheck, the block benchmark, a per-kernel breakdown,
#      the whole model with the kernels vs the PyTorch block, issue #9's targets; writes the JSON
#      report to $build_dir/report.json. Extra arguments go to gpu_check.py (see --help).
# Exit status 1 when the build fails or a check misses its bar.
# Environment: PYTHON (default .venv/bin/python, else python3), CUDA_ARCHS (default: this
# GPU's, see cuda_archs), GPU_CHECK_BUILD_DIR (default build/gpu-check).
set -euo pipefail
cd "$(dirname "$0")/.."

# The architectures to compile for: none without a visible GPU (the check has nothing to run
# on; CUDA_ARCHS still builds, e.g. to compile-check); else `native` where CMake knows it (3.24+;
# CMakeLists.txt accepts 3.18), else the compute capability nvidia-smi reports (9.0 -> 90).
cuda_archs() {
    local version caps
    caps=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d ' .' | sort -u \
        | grep -E '^[0-9]+$' | paste -sd ';') || true
    if [ -z "$caps" ]; then
        echo "gpu_check: nvidia-smi lists no GPU; run this on a machine with an NVIDIA GPU, or set CUDA_ARCHS (e.g. CUDA_ARCHS=90) to build only" >&2
        return 1
    fi
    version=$(cmake --version | sed -n '1s/^cmake version \([0-9][0-9.]*\).*/\1/p')
    if [ -n "$version" ] && [ "$(printf '%s\n' 3.24 "$version" | sort -V | head -1)" = 3.24 ]; then
        echo native
        return
    fi
    echo "$caps"
}

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
build_dir=${GPU_CHECK_BUILD_DIR:-build/gpu-check}
archs=${CUDA_ARCHS:-$(cuda_archs)}
arch_args=()
if [ -n "$archs" ]; then arch_args=(-DCMAKE_CUDA_ARCHITECTURES="$archs"); fi
mkdir -p "$(dirname "$build_dir")"
# Only the CUDA kernels: the CPU twin (TTSR_CPU_TWIN) needs an OpenBLAS wheel the GPU machine's
# Python may lack, and the check does not use it.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTTSR_CPU_TWIN=OFF \
    -DPython3_EXECUTABLE="$(command -v "$PYTHON")" ${arch_args[@]+"${arch_args[@]}"} > "$build_dir.log" 2>&1 \
    || { cat "$build_dir.log"; exit 1; }
if ! grep -q "cuBLAS:" "$build_dir.log"; then
    grep -i "skipped\|not found" "$build_dir.log" >&2 || true
    echo "gpu_check: CMake did not enable the CUDA kernels (needs nvcc and cuBLAS; see $build_dir.log)" >&2
    exit 1
fi
cmake --build "$build_dir" -j "$(nproc)" --target ttsr_st_cuda >> "$build_dir.log" 2>&1 \
    || { tail -50 "$build_dir.log"; exit 1; }
echo "gpu_check: built $build_dir/libttsr_st_cuda.so in ${SECONDS} s"
exec "$PYTHON" scripts/gpu_check.py --library "$build_dir/libttsr_st_cuda.so" --json "$build_dir/report.json" "$@"
