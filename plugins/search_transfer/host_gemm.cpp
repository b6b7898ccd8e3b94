// Packed, blocked GEMM (the usual panel scheme) in portable C++.  Every element
// of C is summed over k in the same order by the same micro-kernel (edge panels
// are zero-padded), so equal columns give bit-equal results: exact relevance
// ties stay ties, as the contract's lowest-index rule needs.
#include "host_gemm.h"

#include <string.h>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <vector>

#include "half_bits.h"

namespace ttsr_st {
namespace {

constexpr int kMr = 8;     // micro-tile rows (one AVX register of floats)
constexpr int kNr = 6;     // micro-tile columns
constexpr int kKc = 256;   // depth per packed block (panels stay in L1/L2)
constexpr int kMc = 128;   // rows per packed A block, multiple of kMr
constexpr int kNc = 768;   // columns per packed B block, multiple of kNr

inline float to_float(float value) { return value; }
inline float to_float(uint16_t value) { return half_bits_to_float(value); }

// Element (row, col) of op(X), X column-major with leading dimension ld.
template <typename T>
inline float op_element(const T* x, int ld, GemmOp op, int row, int col) {
    return op == GemmOp::N ? to_float(x[row + size_t(col) * ld])
                           : to_float(x[col + size_t(row) * ld]);
}

// op(X)[l0:l0+kc, j0:j0+nc] as panels of Width columns, each stored [l][col],
// zero-padded past nc.  A is packed through its transpose, op(A)^T, so its
// panels of kMr rows come out in the same [l][row] layout.
template <int Width, typename T>
void pack_panels(const T* x, int ld, GemmOp op, int l0, int kc, int j0, int nc, float* out) {
    for (int panel = 0; panel < nc; panel += Width) {
        for (int l = 0; l < kc; ++l) {
            for (int col = 0; col < Width; ++col) {
                const int column = panel + col;
                *out++ = column < nc ? op_element(x, ld, op, l0 + l, j0 + column) : 0.0f;
            }
        }
    }
}

inline GemmOp transposed(GemmOp op) { return op == GemmOp::N ? GemmOp::T : GemmOp::N; }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// An AVX2/FMA clone picked at load time where the CPU has it; the default clone
// keeps the library runnable on any x86-64.
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void micro_kernel(int kc, const float* a_panel, const float* b_panel, float* tile) {
    // GCC/Clang vector extension: one kMr-wide register (or two SSE halves).
    typedef float Column __attribute__((vector_size(kMr * sizeof(float))));
    Column sum[kNr] = {};
    for (int l = 0; l < kc; ++l) {
        Column a;
        memcpy(&a, a_panel + l * kMr, sizeof a);
        const float* b = b_panel + l * kNr;
        for (int col = 0; col < kNr; ++col) {
            sum[col] += a * b[col];
        }
    }
    memcpy(tile, sum, sizeof sum);
}

// Columns [j_begin, j_end) of C; each call packs into its own buffers.
template <typename T>
void gemm_columns(GemmOp transa, GemmOp transb, int m, int j_begin, int j_end, int k,
                  float alpha, const T* a, int lda, const T* b, int ldb, float beta, float* c,
                  int ldc) {
    std::vector<float> a_pack(size_t(kMc) * kKc);
    std::vector<float> b_pack(size_t(kNc) * kKc);
    float tile[kNr * kMr];
    for (int j0 = j_begin; j0 < j_end; j0 += kNc) {
        const int nc = std::min(kNc, j_end - j0);
        for (int l0 = 0; l0 < k; l0 += kKc) {
            const int kc = std::min(kKc, k - l0);
            pack_panels<kNr>(b, ldb, transb, l0, kc, j0, nc, b_pack.data());
            for (int i0 = 0; i0 < m; i0 += kMc) {
                const int mc = std::min(kMc, m - i0);
                pack_panels<kMr>(a, lda, transposed(transa), l0, kc, i0, mc, a_pack.data());
                for (int jr = 0; jr < nc; jr += kNr) {
                    for (int ir = 0; ir < mc; ir += kMr) {
                        micro_kernel(kc, a_pack.data() + size_t(ir) * kc,
                                     b_pack.data() + size_t(jr) * kc, tile);
                        const int cols = std::min(kNr, nc - jr);
                        const int rows = std::min(kMr, mc - ir);
                        for (int col = 0; col < cols; ++col) {
                            float* out = c + (i0 + ir) + size_t(j0 + jr + col) * ldc;
                            for (int row = 0; row < rows; ++row) {
                                const float before = l0 > 0 ? out[row]
                                                   : beta == 0.0f ? 0.0f : beta * out[row];
                                out[row] = before + alpha * tile[col * kMr + row];
                            }
                        }
                    }
                }
            }
        }
    }
}

// Worker threads for an m x n x k product: $TTSR_ST_CPU_THREADS if set, else
// every hardware thread, and never so many that a worker gets a tiny share.
int worker_count(int m, int n, int k) {
    constexpr double kMinWorkPerThread = 1 << 22;  // multiply-adds
    int threads = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("TTSR_ST_CPU_THREADS")) threads = std::atoi(env);
    const double work = double(m) * n * k;
    const int by_work = static_cast<int>(work / kMinWorkPerThread);
    const int by_columns = (n + kNr - 1) / kNr;
    return std::max(1, std::min({threads, by_work, by_columns}));
}

template <typename T>
int gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const T* a, int lda,
         const T* b, int ldb, float beta, float* c, int ldc) {
    const int a_rows = transa == GemmOp::N ? m : k;
    const int b_rows = transb == GemmOp::N ? k : n;
    if (m < 0 || n < 0 || k < 1 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) ||
        ldc < std::max(1, m)) {
        return 1;
    }
    // Workers take contiguous column ranges (whole micro-tiles); every element
    // is still computed by the same code in the same order.
    const int threads = worker_count(m, n, k);
    const int tiles = (n + kNr - 1) / kNr;
    std::vector<std::thread> workers;
    for (int t = 1; t < threads; ++t) {
        const int j_begin = std::min(n, tiles * t / threads * kNr);
        const int j_end = std::min(n, tiles * (t + 1) / threads * kNr);
        workers.emplace_back(gemm_columns<T>, transa, transb, m, j_begin, j_end, k, alpha, a, lda,
                             b, ldb, beta, c, ldc);
    }
    gemm_columns(transa, transb, m, 0, std::min(n, tiles / threads * kNr), k, alpha, a, lda, b,
                 ldb, beta, c, ldc);
    for (std::thread& worker : workers) worker.join();
    return 0;
}

}  // namespace

int host_gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const float* a,
              int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    return gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int host_gemm(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha, const uint16_t* a,
              int lda, const uint16_t* b, int ldb, float beta, float* c, int ldc) {
    return gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ttsr_st
