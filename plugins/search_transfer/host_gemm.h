// Host GEMM with cuBLAS's column-major argument semantics, so the host twin
// calls it with exactly the arguments the CUDA path passes to cuBLAS:
// C (m x n, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, with C not
// read when beta == 0.  float16 operands are uint16 bit patterns; products
// accumulate in float32 (like cublasGemmEx with CUBLAS_COMPUTE_32F).
#pragma once

#include <stdint.h>

#include "plan.h"

namespace ttsr_st {

// Returns 0, or 1 for arguments cuBLAS rejects as CUBLAS_STATUS_INVALID_VALUE and
// for k == 0 (which cuBLAS accepts; the relevance GEMM's depth is 9 * ck >= 9).
int host_gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const float* a,
              int lda, const float* b, int ldb, float beta, float* c, int ldc);
int host_gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const uint16_t* a,
              int lda, const uint16_t* b, int ldb, float beta, float* c, int ldc);

}  // namespace ttsr_st
