// The relevance GEMM on cuBLASLt: its heuristics see the real shape, strides,
// pointer alignment and a workspace, so they can pick the architecture's
// tensor-core kernels (sm90 on Hopper) instead of the generic ones that
// cublasGemmEx without workspace fell back to in issue #9's profile.
// FP16 operands accumulate in FP32; FP32 operands use CUBLAS_COMPUTE_32F,
// i.e. true FP32 SGEMM kernels and never TF32, which would break the
// contract's FP32 accuracy bar.  When cuBLASLt offers no algorithm the call
// falls back to cublasGemmEx.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <vector>

#include "plan.h"

namespace ttsr_st {

class RelevanceGemm {
public:
    // cuBLASLt's workspace: what NVIDIA recommends for Hopper (32 MiB) covers
    // the split-K and stream-K kernels of every earlier architecture too.
    static constexpr size_t kWorkspaceBytes = size_t(32) << 20;

    // Returns false (and holds nothing) when a handle or the workspace cannot be made.
    bool create();
    void destroy();

    // rel = op(kn) * op(qn) as GemmArgs says; element_bytes 4 (float) or 2 (half).
    cublasStatus_t run(const GemmArgs& g, int element_bytes, const void* kn, const void* qn,
                       float* rel, cudaStream_t stream);

private:
    struct Entry {
        GemmArgs args;
        int element_bytes;
        unsigned alignment;  // the smallest alignment of the three pointers, <= 256
        bool found;          // false: cuBLASLt had no algorithm, use the cuBLAS fallback
        cublasLtMatmulDesc_t desc;
        cublasLtMatrixLayout_t a, b, c;
        cublasLtMatmulAlgo_t algo;
    };
    // Heuristic queries cost tens of microseconds; a plan has a few GEMM
    // shapes (full and edge tiles), so results are kept per shape.
    Entry* lookup(const GemmArgs& g, int element_bytes, unsigned alignment);
    cublasStatus_t fallback(const GemmArgs& g, int element_bytes, const void* kn, const void* qn,
                            float* rel);

    cublasHandle_t handle_ = nullptr;
    cublasLtHandle_t lt_ = nullptr;
    void* workspace_ = nullptr;
    std::vector<Entry> entries_;
};

}  // namespace ttsr_st
