// Host-side planning shared by the host twin and the CUDA path: shape checks,
// the Ref chunk size, the workspace layout and the relevance GEMM's arguments.
// Both paths use the same plan, so the twin exercises the device call's numbers.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>

#include "index_math.h"
#include "ttsr_st_api.h"

namespace ttsr_st {

// One pass's normalised Ref patches (kn) and relevance (rel) together stay
// within this budget, which keeps memory linear in the image area.  Budgeting both (not rel alone) makes the workspace non-decreasing in
// every size: a larger LR grid shrinks the chunk, but the reserved block is
// min(Ref * bytes per position, budget), which only grows.
constexpr size_t kChunkBudgetBytes = size_t(64) << 20;
constexpr size_t kWorkspaceAlignment = 256;

// Column-major GEMM arguments with cuBLAS's meaning:
// C (m x n, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C.
enum class GemmOp { N, T };
struct GemmArgs {
    GemmOp transa, transb;
    int m, n, k;
    float alpha;
    int lda, ldb;
    float beta;
    int ldc;
};

// Workspace, per image (images run one after another and reuse it):
//   qn   (d x p)       normalised LR patches, column p contiguous, input dtype
//   kn   (d x chunk)   normalised patches of one Ref chunk, input dtype
//   rel  (chunk x p)   relevance of the chunk, float32, column p contiguous
//   best (p) float32, best_j (p) int32: running max / argmax over chunks
// kn and rel share one block whose size make_plan bounds without the chunk.
struct Plan {
    int d = 0;      // patch length ck * 9
    int p = 0;      // LR positions h * w
    int j = 0;      // Ref positions hr * wr
    int chunk = 0;  // Ref positions per pass
    size_t qn_offset = 0, kn_offset = 0, rel_offset = 0, best_offset = 0, best_j_offset = 0;
    size_t bytes = 0;
};

inline size_t align_up(size_t bytes) {
    return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

inline bool valid_shape(const ttsr_st_shape* s) {
    if (s == nullptr || s->n < 1 || s->ck < 1 || s->h < 1 || s->w < 1 || s->hr < 1 ||
        s->wr < 1 || s->c3 < 1 || s->c2 < 1 || s->c1 < 1) {
        return false;
    }
    // Element counts of one x4 plane and patch lengths must fit the int
    // indices (cuBLAS takes int sizes); offsets themselves are 64-bit.
    const long long lr4 = 16LL * s->h * s->w;
    const long long ref4 = 16LL * s->hr * s->wr;
    return lr4 <= INT_MAX && ref4 <= INT_MAX && 9LL * s->ck <= INT_MAX;
}

inline size_t element_size(ttsr_st_dtype dtype) {
    if (dtype == TTSR_ST_FLOAT32) return 4;
    if (dtype == TTSR_ST_FLOAT16) return 2;
    return 0;
}

// Returns TTSR_ST_OK and fills plan, or the error code for the arguments.
inline int make_plan(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk, Plan* plan) {
    if (!valid_shape(shape)) return TTSR_ST_ERR_SHAPE;
    if (element_size(dtype) == 0) return TTSR_ST_ERR_DTYPE;
    if (ref_chunk < 0) return TTSR_ST_ERR_ARGUMENT;
    Plan out;
    out.d = shape->ck * kPatchArea;
    out.p = shape->h * shape->w;
    out.j = shape->hr * shape->wr;
    const size_t element = element_size(dtype);
    // Bytes one Ref position takes in a pass: its kn column and its rel row.
    const size_t per_position = size_t(out.d) * element + size_t(out.p) * sizeof(float);
    const size_t capped = ref_chunk > 0 && ref_chunk < out.j ? size_t(ref_chunk) : size_t(out.j);
    const size_t fitting = kChunkBudgetBytes / per_position;
    out.chunk = static_cast<int>(std::max<size_t>(1, std::min(capped, fitting)));
    // chunk * per_position <= max(per_position, min(capped * per_position, budget)),
    // and that bound is non-decreasing in every size; one alignment step more
    // covers aligning rel after kn.
    const size_t chunk_block =
        align_up(std::max(per_position, std::min(capped * per_position, kChunkBudgetBytes))) +
        kWorkspaceAlignment;
    out.qn_offset = 0;
    out.kn_offset = out.qn_offset + align_up(size_t(out.d) * out.p * element);
    out.rel_offset = out.kn_offset + align_up(size_t(out.d) * out.chunk * element);
    out.best_offset = out.kn_offset + chunk_block;
    out.best_j_offset = out.best_offset + align_up(size_t(out.p) * sizeof(float));
    out.bytes = out.best_j_offset + align_up(size_t(out.p) * sizeof(int));
    *plan = out;
    return TTSR_ST_OK;
}

// rel (chunk_len x p) = kn^T * qn: column p of rel holds <kn_j, qn_p> for the
// chunk's Ref positions j, contiguous, so the argmax scans one column.
inline GemmArgs relevance_gemm(const Plan& plan, int chunk_len) {
    return GemmArgs{GemmOp::T, GemmOp::N, chunk_len, plan.p, plan.d, 1.0f,
                    plan.d, plan.d, 0.0f, chunk_len};
}

inline const char* status_string(int status) {
    switch (status) {
        case TTSR_ST_OK: return "ok";
        case TTSR_ST_ERR_SHAPE: return "invalid shape: every size must be >= 1 and 16*h*w, 16*hr*wr, 9*ck must fit in int";
        case TTSR_ST_ERR_DTYPE: return "invalid dtype: use TTSR_ST_FLOAT32 or TTSR_ST_FLOAT16";
        case TTSR_ST_ERR_ARGUMENT: return "invalid argument: null pointer or negative ref_chunk";
        case TTSR_ST_ERR_CUDA: return "CUDA runtime error";
        case TTSR_ST_ERR_CUBLAS: return "cuBLAS error";
        default: return "unknown status";
    }
}

}  // namespace ttsr_st
