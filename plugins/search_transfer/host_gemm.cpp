// OpenBLAS's sgemm behind the cuBLAS-style host GEMM.  Each element of C is
// the same sum whatever m, n and the operands' offsets are (OpenBLAS blocks
// only m and n by them; its k blocking depends on k alone), which is what
// makes the twin's results independent of tile shapes and thread counts; the
// tests check it bit for bit.
#include "host_gemm.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>

namespace ttsr_st {
namespace {

CBLAS_TRANSPOSE cblas_op(GemmOp op) { return op == GemmOp::N ? CblasNoTrans : CblasTrans; }

}  // namespace

int host_gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const float* a,
              int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    const int a_rows = transa == GemmOp::N ? m : k;
    const int b_rows = transb == GemmOp::N ? k : n;
    if (m < 0 || n < 0 || k < 1 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) ||
        ldc < std::max(1, m)) {
        return 1;
    }
    static std::once_flag single_threaded;
    std::call_once(single_threaded, [] { scipy_openblas_set_num_threads(1); });
    scipy_cblas_sgemm(CblasColMajor, cblas_op(transa), cblas_op(transb), m, n, k, alpha, a, lda, b,
                      ldb, beta, c, ldc);
    return 0;
}

}  // namespace ttsr_st
