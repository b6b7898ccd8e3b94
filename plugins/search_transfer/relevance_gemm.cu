#include "relevance_gemm.h"

#include <stdint.h>

namespace ttsr_st {
namespace {

constexpr size_t kMaxEntries = 32;
constexpr unsigned kMaxAlignment = 256;  // what cuBLASLt assumes when not told otherwise

unsigned pointer_alignment(const void* pointer) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
    unsigned alignment = 1;
    while (alignment < kMaxAlignment && (address & alignment) == 0) alignment <<= 1;
    return alignment;
}

cublasOperation_t cublas_op(GemmOp op) { return op == GemmOp::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

bool same(const GemmArgs& x, const GemmArgs& y) {
    return x.transa == y.transa && x.transb == y.transb && x.m == y.m && x.n == y.n &&
           x.k == y.k && x.lda == y.lda && x.ldb == y.ldb && x.ldc == y.ldc &&
           x.alpha == y.alpha && x.beta == y.beta;
}

}  // namespace

bool RelevanceGemm::create() {
    if (cublasCreate(&handle_) != CUBLAS_STATUS_SUCCESS) return false;
    // FP32 GEMMs in FP32 (no TF32), as the contract's precision section requires.
    if (cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS ||
        cublasLtCreate(&lt_) != CUBLAS_STATUS_SUCCESS ||
        cudaMalloc(&workspace_, kWorkspaceBytes) != cudaSuccess) {
        destroy();
        return false;
    }
    return true;
}

void RelevanceGemm::destroy() {
    for (Entry& e : entries_) {
        cublasLtMatrixLayoutDestroy(e.a);
        cublasLtMatrixLayoutDestroy(e.b);
        cublasLtMatrixLayoutDestroy(e.c);
        cublasLtMatmulDescDestroy(e.desc);
    }
    entries_.clear();
    if (workspace_ != nullptr) cudaFree(workspace_);
    if (lt_ != nullptr) cublasLtDestroy(lt_);
    if (handle_ != nullptr) cublasDestroy(handle_);
    workspace_ = nullptr;
    lt_ = nullptr;
    handle_ = nullptr;
}

RelevanceGemm::Entry* RelevanceGemm::lookup(const GemmArgs& g, int element_bytes,
                                            unsigned alignment) {
    for (Entry& e : entries_) {
        if (same(e.args, g) && e.element_bytes == element_bytes && e.alignment == alignment) return &e;
    }
    if (entries_.size() == kMaxEntries) return nullptr;
    Entry e{};
    e.args = g;
    e.element_bytes = element_bytes;
    e.alignment = alignment;
    const cudaDataType_t operand = element_bytes == 2 ? CUDA_R_16F : CUDA_R_32F;
    const cublasOperation_t transa = cublas_op(g.transa), transb = cublas_op(g.transb);
    const bool a_t = g.transa == GemmOp::T, b_t = g.transb == GemmOp::T;
    bool ok = cublasLtMatmulDescCreate(&e.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS;
    ok = ok && cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa) == CUBLAS_STATUS_SUCCESS;
    ok = ok && cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb) == CUBLAS_STATUS_SUCCESS;
    // Layouts are of the stored matrices: op(A) is m x k, so A is k x m when transposed.
    ok = ok && cublasLtMatrixLayoutCreate(&e.a, operand, a_t ? g.k : g.m, a_t ? g.m : g.k, g.lda) == CUBLAS_STATUS_SUCCESS;
    ok = ok && cublasLtMatrixLayoutCreate(&e.b, operand, b_t ? g.n : g.k, b_t ? g.k : g.n, g.ldb) == CUBLAS_STATUS_SUCCESS;
    ok = ok && cublasLtMatrixLayoutCreate(&e.c, CUDA_R_32F, g.m, g.n, g.ldc) == CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulPreference_t preference = nullptr;
    ok = ok && cublasLtMatmulPreferenceCreate(&preference) == CUBLAS_STATUS_SUCCESS;
    const size_t workspace = kWorkspaceBytes;
    const uint32_t align = alignment;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace) == CUBLAS_STATUS_SUCCESS;
    for (cublasLtMatmulPreferenceAttributes_t attribute :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
        ok = ok && cublasLtMatmulPreferenceSetAttribute(preference, attribute, &align, sizeof align) == CUBLAS_STATUS_SUCCESS;
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    ok = ok && cublasLtMatmulAlgoGetHeuristic(lt_, e.desc, e.a, e.b, e.c, e.c, preference, 1,
                                              &result, &found) == CUBLAS_STATUS_SUCCESS;
    if (preference != nullptr) cublasLtMatmulPreferenceDestroy(preference);
    e.found = ok && found > 0;
    e.algo = result.algo;
    if (e.desc == nullptr || e.a == nullptr || e.b == nullptr || e.c == nullptr) {
        // A descriptor failed: nothing worth caching, the fallback serves this shape.
        cublasLtMatrixLayoutDestroy(e.a);
        cublasLtMatrixLayoutDestroy(e.b);
        cublasLtMatrixLayoutDestroy(e.c);
        cublasLtMatmulDescDestroy(e.desc);
        return nullptr;
    }
    entries_.push_back(e);
    return &entries_.back();
}

cublasStatus_t RelevanceGemm::fallback(const GemmArgs& g, int element_bytes, const void* kn,
                                       const void* qn, float* rel) {
    const cudaDataType_t operand = element_bytes == 2 ? CUDA_R_16F : CUDA_R_32F;
    return cublasGemmEx(handle_, cublas_op(g.transa), cublas_op(g.transb), g.m, g.n, g.k, &g.alpha,
                        kn, operand, g.lda, qn, operand, g.ldb, &g.beta, rel, CUDA_R_32F, g.ldc,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t RelevanceGemm::run(const GemmArgs& g, int element_bytes, const void* kn,
                                  const void* qn, float* rel, cudaStream_t stream) {
    unsigned alignment = pointer_alignment(kn);
    for (const void* pointer : {qn, static_cast<const void*>(rel)}) {
        const unsigned other = pointer_alignment(pointer);
        alignment = other < alignment ? other : alignment;
    }
    const Entry* e = lookup(g, element_bytes, alignment);
    if (e == nullptr || !e->found) {
        const cublasStatus_t status = cublasSetStream(handle_, stream);
        return status != CUBLAS_STATUS_SUCCESS ? status : fallback(g, element_bytes, kn, qn, rel);
    }
    return cublasLtMatmul(lt_, e->desc, &g.alpha, kn, e->a, qn, e->b, &g.beta, rel, e->c, rel,
                          e->c, &e->algo, workspace_, kWorkspaceBytes, stream);
}

}  // namespace ttsr_st
