// Host GEMM with cuBLAS's column-major argument semantics, through OpenBLAS
// (the scipy-openblas32 package: 32-bit integers, like cuBLAS):
// C (m x n, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, with C not
// read when beta == 0.
#pragma once

#include "plan.h"

namespace ttsr_st {

// Returns 0, or 1 for arguments cuBLAS rejects as CUBLAS_STATUS_INVALID_VALUE
// and for k == 0 (which cuBLAS accepts; the twin's depth is ck >= 1).
// Single-threaded: the twin's workers call it on disjoint column ranges, so the
// thread count is theirs alone and OpenBLAS runs no threads of its own.
int host_gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const float* a,
              int lda, const float* b, int ldb, float beta, float* c, int ldc);

}  // namespace ttsr_st
