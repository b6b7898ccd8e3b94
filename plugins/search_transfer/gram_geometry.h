// Geometry of the Gram formulation of relevance, shared by the host twin
// (search_transfer_cpu.cpp), the CUDA Gram path (search_transfer_cuda.cu) and
// its host emulation (cuda_emulation.cpp).
//
// A patch is 9 pixels' features, so
//   <patch(k, j), patch(q, p)> = sum over the 9 offsets o of <k[j + o], q[p + o]>:
// a GEMM over ck (not 9 * ck) gives the pixel-level Gram matrix G, and each
// relevance is 9 of its entries summed along a diagonal, divided by the two
// patch norms.  Features live on grids padded by one zero pixel, so the
// contract's zero padding needs no test in the sums.  A tile of consecutive
// positions spans a contiguous range of padded pixels; its Gram block is that
// range plus a halo of one padded row and pixel on each side.
//
// The CUDA argmax kernel over a Gram block (see its section below) stages
// Gram slices, the entries between kGramSpan + 2 pixels of one Ref row and of
// one LR row, in shared memory, and scores from them.
#pragma once

#include <cmath>

#include "host_device.h"
#include "index_math.h"

namespace ttsr_st {

// Gram blocks are padded to multiples of 16 rows and columns, and the GEMM
// computes the padded block: 64-byte aligned columns, and dimensions that
// cuBLASLt's Hopper kernels take (on an H200 a 16214 x 16214 block got an sm80
// CUTLASS kernel at 175 TFLOP/s).
constexpr int kGramRowAlign = 16;

TTSR_ST_HD long long gram_aligned(long long n) {
    return (n + kGramRowAlign - 1) / kGramRowAlign * kGramRowAlign;
}

// An h x w grid embedded in an (h + 2) x (w + 2) grid whose border is zero.
struct PaddedGrid {
    int h, w, row;  // row = w + 2
    // Padded index of position pos = y * w + x: (y + 1) * row + x + 1.
    TTSR_ST_HD int index(int pos) const { return pos + 2 * (pos / w) + row + 1; }
    // Padded offset of the patch element at (dy, dx) from its centre.
    TTSR_ST_HD int offset(int dy, int dx) const { return dy * row + dx; }
    TTSR_ST_HD int pixels() const { return (h + 2) * row; }
    // The h x w pixel at padded index a, or -1 where a is border.
    TTSR_ST_HD int source(int a) const {
        const int y = a / row - 1;
        const int x = a - (y + 1) * row - 1;
        return y < 0 || y >= h || x < 0 || x >= w ? -1 : grid_index(y, x, w);
    }
};

TTSR_ST_HD PaddedGrid padded_grid(int h, int w) { return PaddedGrid{h, w, w + 2}; }

// A tile's Gram block starts one padded row and pixel before its first
// position and ends as far after its last, so every patch neighbour is inside.
TTSR_ST_HD int gram_first(const PaddedGrid& g, int first) { return g.index(first) - g.row - 1; }
TTSR_ST_HD int gram_last(const PaddedGrid& g, int last) { return g.index(last) + g.row + 1; }

// Padded pixels the Gram block of any `len` consecutive positions spans: at
// most ceil((len - 1) / w) row breaks, each skipping two border pixels.
TTSR_ST_HD int gram_extent(const PaddedGrid& g, int len) {
    const long long breaks = (len - 1 + g.w - 1) / g.w;
    const long long extent = len + 2 * breaks + 2 * (g.row + 1);
    return extent < g.pixels() ? static_cast<int>(extent) : g.pixels();
}

TTSR_ST_HD long long gram_rows(const PaddedGrid& ref, int len) { return gram_aligned(gram_extent(ref, len)); }
TTSR_ST_HD long long gram_cols(const PaddedGrid& lr, int len) { return gram_aligned(gram_extent(lr, len)); }

// Pixels the GEMM operands (padded features, pixel-major) hold: the padded
// grid, and room for the padded block's rows past its last pixel (zeros).
TTSR_ST_HD int gram_operand_pixels(const PaddedGrid& g) { return g.pixels() + kGramRowAlign - 1; }

// The largest len in [1, total] whose span `size(len)` is at most limit (1 if
// none is), rounded down to whole grid rows once it covers one: the CUDA
// kernel walks rows, and a tile of whole rows wastes none of them.
template <typename Size>
inline int largest_gram_len(int total, int w, long long limit, const Size& size) {
    if (size(1) > limit) return 1;
    int low = 1, high = total;  // size(low) <= limit
    while (low < high) {
        const int mid = low + (high - low + 1) / 2;
        if (size(mid) <= limit) low = mid; else high = mid - 1;
    }
    return low >= w && low < total ? low / w * w : low;
}

// The Gram block of one grid row a side (or ref_cap Ref positions, if fewer):
// tiles never shrink below it, whatever the budget, since the halo alone is
// two padded rows a side and smaller tiles would only multiply the launches.
// Non-decreasing in every size and in ref_cap.
TTSR_ST_HD long long gram_row_block(const PaddedGrid& lr, const PaddedGrid& ref, int ref_cap) {
    return gram_rows(ref, ref.w < ref_cap ? ref.w : ref_cap) * gram_cols(lr, lr.w);
}

// Floats a Gram block may take for this budget: the budget's, or one row's.
TTSR_ST_HD long long gram_limit(const PaddedGrid& lr, const PaddedGrid& ref, int ref_cap,
                                long long elements) {
    const long long row = gram_row_block(lr, ref, ref_cap);
    return elements > row ? elements : row;
}

// Gram tiles for p LR and ref_cap Ref positions whose float32 Gram block holds
// at most gram_limit floats: one tile when the whole block fits; else about
// sqrt(limit) padded pixels a side (one side whole when it fits in that), at
// least one grid row (or ref_cap positions) a side.
inline void choose_gram_tiles(const PaddedGrid& lr, int p, const PaddedGrid& ref, int ref_cap,
                              long long elements, int* lr_tile, int* ref_tile) {
    const long long limit = gram_limit(lr, ref, ref_cap, elements);
    const auto rows = [&ref](int len) { return gram_rows(ref, len); };
    const auto cols = [&lr](int len) { return gram_cols(lr, len); };
    if (rows(ref_cap) * cols(p) <= limit) {
        *lr_tile = p;
        *ref_tile = ref_cap;
        return;
    }
    const int min_ref = ref.w < ref_cap ? ref.w : ref_cap;
    const long long side = static_cast<long long>(std::sqrt(static_cast<double>(limit)));
    int ref_len;
    if (rows(ref_cap) <= side) {
        ref_len = ref_cap;
    } else if (cols(p) <= side) {
        ref_len = largest_gram_len(ref_cap, ref.w, limit / cols(p), rows);
    } else {
        ref_len = largest_gram_len(ref_cap, ref.w, side, rows);
    }
    ref_len = ref_len > min_ref ? ref_len : min_ref;
    // One LR row must fit beside the Ref tile (it does beside min_ref: the limit covers that).
    if (rows(ref_len) * cols(lr.w) > limit) {
        ref_len = largest_gram_len(ref_cap, ref.w, limit / cols(lr.w), rows);
        ref_len = ref_len > min_ref ? ref_len : min_ref;
    }
    *ref_tile = ref_len;
    const int lr_len = largest_gram_len(p, lr.w, limit / rows(ref_len), cols);
    *lr_tile = lr_len > lr.w ? lr_len : lr.w;
}

// Floats reserved for a Gram block: at least what choose_gram_tiles picks for
// any shape up to this one, non-decreasing in every size, the Ref cap and the
// budget.  (A run of len positions has at most len - 1 row breaks, a bound that,
// unlike gram_extent itself, never shrinks as the grid widens.)
TTSR_ST_HD long long gram_block_elements(const PaddedGrid& lr, const PaddedGrid& ref, int ref_cap,
                                         long long elements) {
    const long long capped = 3LL * ref_cap + 2LL * ref.row + 2;
    const long long ref_span = capped < ref.pixels() ? capped : ref.pixels();
    const long long whole = gram_aligned(ref_span) * gram_aligned(lr.pixels());
    const long long bound = gram_limit(lr, ref, ref_cap, elements);
    return whole < bound ? whole : bound;
}

// ---- The CUDA Gram argmax kernel ----------------------------------------------------------
//
// A block owns a band of kGramBand LR rows x kGramSpan LR columns: warp w owns
// LR row y0 + w, lane l its column x0 + l, so each thread scores one LR position
// and keeps its best key in a register until the end.  Step (m, segment):
// warp w scores Ref row m + w of the tile (idle outside it) at Ref columns
// [c0, c0 + kGramSpan).  Patch sums need the slices (Ref row + dy, LR row + dy)
// for dy = -1, 0, 1, and along a band's diagonal warps share them: the
// kGramBand + 2 slices s = 0 .. kGramBand + 1, slice s between Ref row
// (m + s - 1) and LR row (y0 + s - 1), serve all warps (warp w reads w, w + 1,
// w + 2).  So a step loads 1.25 Gram entries per score from L2, instead of 3
// for a block of one LR row.

constexpr int kGramSpan = 32;   // LR columns per block and Ref columns per step
constexpr int kGramBand = 8;    // LR rows per block, one warp each
constexpr int kGramThreads = kGramBand * 32;
constexpr int kGramSlices = kGramBand + kPatch - 1;
constexpr int kGramHalo = kGramSpan + 2;        // staged pixels of a row: the span and one either side
// A slice is kGramHalo Ref pixels (rows of the slice) x kGramHalo LR pixels,
// LR-fastest so that a warp's lanes read consecutive words; rows are padded to
// an odd stride so that staging (Ref-fastest, as G is stored) hits distinct banks.
constexpr int kGramRowStride = kGramHalo + 1;
constexpr int kGramSliceFloats = kGramHalo * kGramRowStride;
constexpr int kGramStage = kGramSlices * kGramSliceFloats;  // floats of shared memory

// One Gram tile's launch: where its block lies in the padded grids and which
// rows of each grid its positions touch.
struct GramPass {
    PaddedGrid lr, ref;
    int r0, rows, c0, cols, ldg;  // Gram block: padded Ref [r0, r0 + rows) x LR [c0, c0 + cols)
    int lr_first, lr_end, ref_first, ref_end;
    int lr_row0, lr_rows, lr_bands, lr_segments;
    int ref_row0, ref_rows, ref_segments;
    int steps, splits;
};

TTSR_ST_HD long long gram_band_blocks_of(int bands, int segments) { return 1LL * bands * segments; }

// Splits of the steps so the grid holds at least min_blocks blocks, at most one per step.
TTSR_ST_HD int gram_splits(long long band_blocks, int steps, int min_blocks) {
    long long splits = (min_blocks + band_blocks - 1) / band_blocks;
    if (splits < 1) splits = 1;
    return static_cast<int>(splits < steps ? splits : steps);
}

// For the tile of LR positions [lr_first, lr_end) and Ref [ref_first, ref_end).
TTSR_ST_HD GramPass gram_pass(const PaddedGrid& lr, const PaddedGrid& ref, int lr_first,
                              int lr_end, int ref_first, int ref_end, int ldg, int min_blocks) {
    GramPass g;
    g.lr = lr;
    g.ref = ref;
    g.lr_first = lr_first;
    g.lr_end = lr_end;
    g.ref_first = ref_first;
    g.ref_end = ref_end;
    g.r0 = gram_first(ref, ref_first);
    g.rows = gram_last(ref, ref_end - 1) - g.r0 + 1;
    g.c0 = gram_first(lr, lr_first);
    g.cols = gram_last(lr, lr_end - 1) - g.c0 + 1;
    g.ldg = ldg;
    g.lr_row0 = lr_first / lr.w;
    g.lr_rows = (lr_end - 1) / lr.w - g.lr_row0 + 1;
    g.lr_bands = chunk_count(g.lr_rows, kGramBand);
    g.lr_segments = chunk_count(lr.w, kGramSpan);
    g.ref_row0 = ref_first / ref.w;
    g.ref_rows = (ref_end - 1) / ref.w - g.ref_row0 + 1;
    g.ref_segments = chunk_count(ref.w, kGramSpan);
    // Diagonal offsets m = 1 - kGramBand .. ref_rows - 1: each warp meets every Ref row once.
    g.steps = (g.ref_rows + kGramBand - 1) * g.ref_segments;
    g.splits = gram_splits(gram_band_blocks_of(g.lr_bands, g.lr_segments), g.steps, min_blocks);
    return g;
}

TTSR_ST_HD long long gram_band_blocks(const GramPass& g) {
    return gram_band_blocks_of(g.lr_bands, g.lr_segments);
}

// Block `block` (of gram_band_blocks) owns LR rows [*y0, *y0 + kGramBand), columns [*x0, *x0 + kGramSpan).
TTSR_ST_HD void gram_block_origin(const GramPass& g, int block, int* y0, int* x0) {
    *y0 = g.lr_row0 + block / g.lr_segments * kGramBand;
    *x0 = (block % g.lr_segments) * kGramSpan;
}

// Steps [gram_split_begin(s), gram_split_begin(s + 1)) belong to split s.
TTSR_ST_HD int gram_split_begin(int split, int splits, int steps) {
    return static_cast<int>(static_cast<long long>(split) * steps / splits);
}

// Step t: diagonal offset *m (warp w scores Ref row ref_row0 + *m + w) and Ref columns from *c0.
TTSR_ST_HD void gram_step(const GramPass& g, int t, int* m, int* c0) {
    *m = t / g.ref_segments - (kGramBand - 1);
    *c0 = (t % g.ref_segments) * kGramSpan;
}

// The Ref row warp w scores at offset m, or -1 where that lies outside the tile.
TTSR_ST_HD int gram_warp_ref_row(const GramPass& g, int m, int warp) {
    return m + warp >= 0 && m + warp < g.ref_rows ? g.ref_row0 + m + warp : -1;
}

// Step columns [*lo, *hi) (Ref positions r * wr + c0 + column) that are Ref
// positions of the tile: a row's positions in the tile are one run.
TTSR_ST_HD void gram_step_columns(const GramPass& g, int r, int c0, int* lo, int* hi) {
    const int row_first = r * g.ref.w;
    int first = g.ref_first - row_first - c0;
    int end = g.ref_end - row_first - c0;
    const int width = g.ref.w - c0;
    if (end > width) end = width;
    if (end > kGramSpan) end = kGramSpan;
    if (first < 0) first = 0;
    *lo = first;
    *hi = end > first ? end : first;
}

// The LR position a thread scores, or -1 where it is outside the grid or the tile.
TTSR_ST_HD int gram_position(const PaddedGrid& grid, int first, int end, int y, int x) {
    if (x >= grid.w) return -1;
    const int pos = grid_index(y, x, grid.w);
    return pos >= first && pos < end ? pos : -1;
}

// Staging a step: thread t < kGramStageThreads stages row a = t % kGramHalo
// (a Ref pixel) of the stage's columns t / kGramHalo, + kGramStageGroups, ...;
// column = slice * kGramHalo + b.  Consecutive threads read consecutive words
// of G (Ref-fastest) and write distinct banks (the odd row stride).
constexpr int kGramStageGroups = kGramThreads / kGramHalo;
constexpr int kGramStageThreads = kGramStageGroups * kGramHalo;
constexpr int kGramStageColumns = kGramSlices * kGramHalo;
// A thread loads its columns in batches of kGramStageBatch into registers and
// then stores them: loads that wait on each other one by one left the kernel
// latency-bound (on an H200 the one-load-at-a-time staging made it 60 % of the
// LR = Ref 384 FP16 time).  Column `i` of batch `batch` of a thread of group g:
// g + (batch * kGramStageBatch + i) * kGramStageGroups.
constexpr int kGramStageBatch = 14;
constexpr int kGramStageBatches =
    (kGramStageColumns + kGramStageGroups * kGramStageBatch - 1) / (kGramStageGroups * kGramStageBatch);

TTSR_ST_HD int gram_stage_column(int group, int batch, int i) {
    return group + (batch * kGramStageBatch + i) * kGramStageGroups;
}

// Where step (m, c0) of the band at (y0, x0) starts in the Gram block: the
// block-relative padded index of Ref pixel (ref_row0 + m - 1, c0 - 1) and of
// LR pixel (y0 - 1, x0 - 1), i.e. of a = b = 0 in slice 0.
TTSR_ST_HD void gram_stage_origin(const GramPass& g, int y0, int x0, int m, int c0,
                                  int* ref_pixel0, int* lr_pixel0) {
    // Padded index of pixel (row, column - 1) is (row + 1) * row_length + column - 1 + 1.
    *ref_pixel0 = (g.ref_row0 + m) * g.ref.row + c0 - g.r0;
    *lr_pixel0 = y0 * g.lr.row + x0 - g.c0;
}

// Stage entry (slice, b, a): G between Ref pixel (ref_row0 + m + slice - 1,
// c0 - 1 + a) and LR pixel (y0 + slice - 1, x0 - 1 + b); 0 outside the Gram
// block, where only positions outside the tile would read.
TTSR_ST_HD float gram_stage_entry(const float* gram, const GramPass& g, int ref_pixel0,
                                  int lr_pixel0, int slice, int b, int a) {
    const int ref_pixel = ref_pixel0 + slice * g.ref.row + a;
    const int lr_pixel = lr_pixel0 + slice * g.lr.row + b;
    if (ref_pixel < 0 || ref_pixel >= g.rows || lr_pixel < 0 || lr_pixel >= g.cols) return 0.0f;
    return gram[static_cast<long long>(lr_pixel) * g.ldg + ref_pixel];
}

TTSR_ST_HD int gram_stage_slot(int slice, int b, int a) {
    return slice * kGramSliceFloats + a * kGramRowStride + b;
}

// <patch(k, Ref column c0 + column), patch(q, x0 + lane)> for warp `warp`'s row
// pair from a staged step: the 9 diagonal entries summed in the twin's order
// (dy, then dx).
TTSR_ST_HD float gram_patch_sum(const float* stage, int warp, int lane, int column) {
    float sum = 0.0f;
    for (int dy = 0; dy < kPatch; ++dy) {
        const float* slice = stage + (warp + dy) * kGramSliceFloats;
        for (int dx = 0; dx < kPatch; ++dx) {
            sum += slice[(column + dx) * kGramRowStride + lane + dx];
        }
    }
    return sum;
}

}  // namespace ttsr_st
