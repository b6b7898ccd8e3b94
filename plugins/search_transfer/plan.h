// Host-side planning shared by the host twin and the CUDA path: shape checks,
// the LR x Ref tilings, the workspace layout and the GEMMs' arguments.
//
// Two tilings, both in increasing Ref order within an LR range:
// * Gram tiles (gram_geometry.h), for the host twin and the CUDA Gram path
//   (the CUDA default): per image, pad the features of q and k into qf and kf
//   and take 1 / patch norm of every position; per tile, one GEMM over ck
//   gives the tile's Gram block, whose 9-entry diagonal sums are the patch dot
//   products, folded into the running argmax of the tile's LR positions.
// * Patch tiles, for the CUDA patch paths (cuBLASLt GEMM or fused FP16 kernel
//   over normalised 9 * ck patches): per image, normalise the patches of all p
//   LR and j Ref positions into qn and kn; for t in [0, tile_count(plan)):
//   relevance_gemm with A = kn + operand_offset(tile.ref_first, d), B = qn +
//   operand_offset(tile.lr_first, d), C = rel, then fold rel into the argmax.
// The tile with ref_first == 0 starts an LR range's running maxima and later
// tiles come in increasing ref_first, so "lowest j wins a tie" (contract.py)
// holds with a strict comparison across tiles; the CUDA path merges 64-bit
// keys (argmax_key.h) whose maximum does not depend on the order at all.
// Results do not depend on the tiling: every relevance value is the same sum
// of the same products whatever tile it falls in.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>

#include "gram_geometry.h"
#include "index_math.h"
#include "ttsr_st_api.h"

namespace ttsr_st {

// Tiles hold a multiple of kTileAlign positions unless they cover a whole grid
// (or a ref_chunk cap asks for fewer): 128 is the CTA tile edge of the
// tensor-core GEMM kernels (cuBLAS/CUTLASS 128xN), so only a grid's last tile
// is partial, and tile starts stay 128 * d elements apart (aligned operands).
constexpr int kTileAlign = 128;
// Rows of the relevance block are rounded up to 8 floats: 32-byte aligned
// columns for vector loads and tensor-core epilogues.
constexpr int kRowAlign = 8;
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

// One GEMM's worth of positions: LR [lr_first, lr_first + lr_len) against
// Ref [ref_first, ref_first + ref_len).
struct Tile {
    int lr_first, lr_len;
    int ref_first, ref_len;
};

// CUDA workspace of one path, per image (images run one after another and reuse it):
//   q, k      Gram path: qf / kf, the padded features (ck values per padded pixel, input
//             dtype); patch paths: qn / kn, the normalised patches (d x p / d x j)
//   block     float32: the Gram path's Gram block of one tile (ldg x gram_cols), the patch
//             paths' relevance block (ldr x lr_tile)
//   energy    (max(p, j)) float32 per-pixel sums of squares over the channels
//   inv_q, inv_k  (p, j) Gram path: 1 / max(patch norm, eps); none on the patch paths
//   keys      (p) running max / argmax, one 64-bit key per LR position (argmax_key.h)
//   best_j    (p) int: the decoded argmax (the patch paths reuse qn, free by then)
// Offsets in bytes from the workspace's start; every part is linear in h*w or hr*wr, the
// block bounded by the budget.  The host twin lays out its own (search_transfer_cpu.cpp).
struct Layout {
    size_t q = 0, k = 0, block = 0, energy = 0, inv_q = 0, inv_k = 0, keys = 0, best_j = 0;
    size_t bytes = 0;
};

struct Plan {
    int ck = 0;        // feature channels of q and k
    int d = 0;         // patch length ck * 9
    int p = 0;         // LR positions h * w
    int j = 0;         // Ref positions hr * wr
    int lr_tile = 0;   // patch tiles: LR positions per tile
    int ref_tile = 0;  // patch tiles: Ref positions per tile
    int ldr = 0;       // rows of the rel block: ref_tile rounded up to kRowAlign
    PaddedGrid lr{}, ref{};
    int gram_lr_tile = 0, gram_ref_tile = 0;  // Gram tiles
    int ldg = 0;        // rows of a Gram block (the largest tile's, aligned)
    int gram_cols = 0;  // columns of the largest tile's Gram block (aligned)
    Layout gram_layout, patch_layout;
};

inline size_t align_up(size_t bytes, size_t alignment = kWorkspaceAlignment) {
    return (bytes + alignment - 1) / alignment * alignment;
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

// Largest multiple of kTileAlign <= limit, but at least kTileAlign, and never
// more than the grid (whole grids need no alignment).
inline int aligned_tile(size_t limit, int grid) {
    const size_t aligned = std::max<size_t>(kTileAlign, limit / kTileAlign * kTileAlign);
    return static_cast<int>(std::min<size_t>(aligned, size_t(grid)));
}

// Rel block bytes reserved in the workspace: an upper bound of what any tiling
// make_plan picks, non-decreasing in p, the capped j and the budget (so the
// largest shape of a TensorRT profile needs the most), linear for a fixed budget.
inline size_t rel_block_bytes(int p, int ref_cap, size_t budget) {
    const size_t whole = align_up(size_t(ref_cap), kRowAlign) * size_t(p) * sizeof(float);
    const size_t smallest = align_up(size_t(std::min(ref_cap, kTileAlign)), kRowAlign) *
                            size_t(std::min(p, kTileAlign)) * sizeof(float);
    return std::min(whole, std::max(budget, smallest));
}

// Tiles for p LR and ref_cap Ref positions whose rel block fits `budget` bytes
// (or is the smallest aligned tile): one tile when the whole relevance matrix
// fits; else a grid that fits gets one whole tile side and the other side as
// many aligned positions as the budget allows; else square aligned tiles of
// about sqrt(budget / 4) positions a side (>= 1024 from a 4 MiB budget up).
inline void choose_tiles(int p, int ref_cap, size_t budget, int* lr_tile, int* ref_tile) {
    const size_t elements = budget / sizeof(float);
    const auto rows = [](int ref) { return align_up(size_t(ref), kRowAlign); };
    if (rows(ref_cap) * size_t(p) <= elements) {
        *lr_tile = p;
        *ref_tile = ref_cap;
        return;
    }
    const size_t side = std::max<size_t>(
        kTileAlign, size_t(std::sqrt(double(elements))) / kTileAlign * kTileAlign);
    if (size_t(ref_cap) <= side) {
        *ref_tile = ref_cap;
        *lr_tile = aligned_tile(elements / rows(ref_cap), p);
    } else if (size_t(p) <= side) {
        *lr_tile = p;
        *ref_tile = aligned_tile(elements / size_t(p), ref_cap);
    } else {
        *ref_tile = static_cast<int>(side);
        *lr_tile = aligned_tile(elements / side, p);
    }
}

// Returns TTSR_ST_OK and fills plan, or the error code for the arguments.
// ref_chunk > 0 caps the Ref positions per tile (the op's attribute; tiles
// then need not be aligned); budget = bytes for the rel block, 0 = default_budget.
inline int make_plan(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                     size_t budget, size_t default_budget, Plan* plan) {
    if (!valid_shape(shape)) return TTSR_ST_ERR_SHAPE;
    if (element_size(dtype) == 0) return TTSR_ST_ERR_DTYPE;
    if (ref_chunk < 0) return TTSR_ST_ERR_ARGUMENT;
    Plan out;
    out.ck = shape->ck;
    out.d = shape->ck * kPatchArea;
    out.p = shape->h * shape->w;
    out.j = shape->hr * shape->wr;
    if (budget == 0) budget = default_budget;
    const int ref_cap = ref_chunk > 0 ? std::min(ref_chunk, out.j) : out.j;
    choose_tiles(out.p, ref_cap, budget, &out.lr_tile, &out.ref_tile);
    out.ldr = static_cast<int>(align_up(size_t(out.ref_tile), kRowAlign));
    out.lr = padded_grid(shape->h, shape->w);
    out.ref = padded_grid(shape->hr, shape->wr);
    const long long gram_elements = static_cast<long long>(budget / sizeof(float));
    choose_gram_tiles(out.lr, out.p, out.ref, ref_cap, gram_elements, &out.gram_lr_tile,
                      &out.gram_ref_tile);
    out.ldg = static_cast<int>(gram_rows(out.ref, out.gram_ref_tile));
    out.gram_cols = static_cast<int>(gram_cols(out.lr, out.gram_lr_tile));
    const size_t gram_bytes =
        size_t(gram_block_elements(out.lr, out.ref, ref_cap, gram_elements)) * sizeof(float);
    const size_t element = element_size(dtype);
    const size_t energy = size_t(std::max(out.p, out.j)) * sizeof(float);
    size_t at = 0;
    const auto take = [&at](size_t bytes) {
        const size_t offset = at;
        at += align_up(bytes);
        return offset;
    };
    Layout& gram = out.gram_layout;
    gram.q = take(size_t(gram_operand_pixels(out.lr)) * out.ck * element);
    gram.k = take(size_t(gram_operand_pixels(out.ref)) * out.ck * element);
    gram.block = take(gram_bytes);
    gram.energy = take(energy);
    gram.inv_q = take(size_t(out.p) * sizeof(float));
    gram.inv_k = take(size_t(out.j) * sizeof(float));
    gram.keys = take(size_t(out.p) * sizeof(unsigned long long));
    gram.best_j = take(size_t(out.p) * sizeof(int));
    gram.bytes = at;
    at = 0;
    Layout& patch = out.patch_layout;
    patch.q = take(size_t(out.d) * out.p * element);
    patch.k = take(size_t(out.d) * out.j * element);
    patch.block = take(rel_block_bytes(out.p, ref_cap, budget));
    patch.energy = take(energy);
    patch.keys = take(size_t(out.p) * sizeof(unsigned long long));
    patch.best_j = patch.q;
    patch.bytes = at;
    *plan = out;
    return TTSR_ST_OK;
}

// Tile t of p LR x j Ref positions cut into lr_tile x ref_tile tiles: LR tiles outer, Ref
// tiles inner in increasing order (the merge order).
inline int tiles_of(int p, int j, int lr_tile, int ref_tile) {
    return chunk_count(p, lr_tile) * chunk_count(j, ref_tile);
}
inline Tile tile_of(int p, int j, int lr_tile, int ref_tile, int t) {
    const int refs = chunk_count(j, ref_tile);
    const int lr = t / refs;
    const int ref = t - lr * refs;
    return Tile{chunk_begin(lr, lr_tile), chunk_length(lr, lr_tile, p), chunk_begin(ref, ref_tile),
                chunk_length(ref, ref_tile, j)};
}

inline int ref_tile_count(const Plan& plan) { return chunk_count(plan.j, plan.ref_tile); }
inline int tile_count(const Plan& plan) { return tiles_of(plan.p, plan.j, plan.lr_tile, plan.ref_tile); }
inline Tile plan_tile(const Plan& plan, int t) {
    return tile_of(plan.p, plan.j, plan.lr_tile, plan.ref_tile, t);
}
inline int gram_tile_count(const Plan& plan) {
    return tiles_of(plan.p, plan.j, plan.gram_lr_tile, plan.gram_ref_tile);
}
inline Tile plan_gram_tile(const Plan& plan, int t) {
    return tile_of(plan.p, plan.j, plan.gram_lr_tile, plan.gram_ref_tile, t);
}

// C (m x n, ldc) = A^T B for operands holding `depth` values per position (a
// column each): C's column b holds the dot products of B's position b with A's m
// positions, contiguous.  The operands start `first * depth` elements in.
inline GemmArgs positions_gemm(int m, int n, int depth, int ldc) {
    return GemmArgs{GemmOp::T, GemmOp::N, m, n, depth, 1.0f, depth, depth, 0.0f, ldc};
}
inline size_t operand_offset(int first, int depth) { return size_t(first) * depth; }

// A tile's Gram block (ldg apart, column per padded LR pixel) = kf^T qf over ck,
// from padded Ref pixel pass.r0 and padded LR pixel pass.c0 on.
inline GramPass plan_gram_pass(const Plan& plan, const Tile& tile, int min_blocks) {
    return gram_pass(plan.lr, plan.ref, tile.lr_first, tile.lr_first + tile.lr_len,
                     tile.ref_first, tile.ref_first + tile.ref_len, plan.ldg, min_blocks);
}
inline GemmArgs gram_gemm(const Plan& plan, const GramPass& pass) {
    return positions_gemm(static_cast<int>(gram_aligned(pass.rows)),
                          static_cast<int>(gram_aligned(pass.cols)), plan.ck, plan.ldg);
}

// A tile's relevance block (ref_len x lr_len, ldr apart) = kn^T qn over d: column p
// holds <kn_j, qn_p> for the tile's Ref positions j, so the argmax scans one column.
inline GemmArgs relevance_gemm(const Plan& plan, const Tile& tile) {
    return positions_gemm(tile.ref_len, tile.lr_len, plan.d, plan.ldr);
}

inline const char* status_string(int status) {
    switch (status) {
        case TTSR_ST_OK: return "ok";
        case TTSR_ST_ERR_SHAPE: return "invalid shape: every size must be >= 1 and 16*h*w, 16*hr*wr, 9*ck must fit in int";
        case TTSR_ST_ERR_DTYPE: return "invalid dtype: use TTSR_ST_FLOAT32 or TTSR_ST_FLOAT16";
        case TTSR_ST_ERR_ARGUMENT: return "invalid argument: null pointer, negative ref_chunk or negative thread count";
        case TTSR_ST_ERR_CUDA: return "CUDA runtime error";
        case TTSR_ST_ERR_CUBLAS: return "cuBLAS error";
        default: return "unknown status";
    }
}

}  // namespace ttsr_st
