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
// The CUDA argmax kernel over a Gram block: a block owns kGramSpan LR
// positions of one LR row and walks steps of kGramSpan Ref positions of one
// Ref row; per step it stages the three (kGramSpan + 2)^2 Gram slices the
// step needs (dy = -1, 0, 1) in shared memory.  Block for LR row y takes Ref
// rows in the order y + t (mod the tile's Ref rows), so at step t the blocks of
// neighbouring LR rows stage each other's slices (the same Ref-row minus
// LR-row difference) while they are in L2.
#pragma once

#include <cmath>

#include "host_device.h"
#include "index_math.h"

namespace ttsr_st {

// Gram block rows are padded to 16 floats: 64-byte aligned columns.
constexpr int kGramRowAlign = 16;

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

TTSR_ST_HD long long gram_rows(const PaddedGrid& ref, int len) {
    const long long extent = gram_extent(ref, len);
    return (extent + kGramRowAlign - 1) / kGramRowAlign * kGramRowAlign;
}

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

// Gram tiles for p LR and ref_cap Ref positions whose float32 Gram block holds
// at most `elements` floats, or is the smallest block (one position a side):
// one tile when the whole block fits; else a square-ish block (about
// sqrt(elements) a side), one side whole when it fits in that.
inline void choose_gram_tiles(const PaddedGrid& lr, int p, const PaddedGrid& ref, int ref_cap,
                              long long elements, int* lr_tile, int* ref_tile) {
    const auto rows = [&ref](int len) { return gram_rows(ref, len); };
    const auto cols = [&lr](int len) { return static_cast<long long>(gram_extent(lr, len)); };
    if (rows(ref_cap) * cols(p) <= elements) {
        *lr_tile = p;
        *ref_tile = ref_cap;
        return;
    }
    const long long side = static_cast<long long>(std::sqrt(static_cast<double>(elements)));
    int ref_len;
    if (rows(ref_cap) <= side) {
        ref_len = ref_cap;
    } else if (cols(p) <= side) {
        ref_len = largest_gram_len(ref_cap, ref.w, elements / cols(p), rows);
    } else {
        ref_len = largest_gram_len(ref_cap, ref.w, side, rows);
    }
    if (rows(ref_len) * cols(1) > elements) {
        ref_len = largest_gram_len(ref_cap, ref.w, elements / cols(1), rows);
    }
    *ref_tile = ref_len;
    *lr_tile = largest_gram_len(p, lr.w, elements / rows(ref_len), cols);
}

// Floats reserved for a Gram block: at least what choose_gram_tiles picks for
// any shape up to this one, non-decreasing in every size, the Ref cap and the
// budget.  (A run of len positions has at most len - 1 row breaks, a bound that,
// unlike gram_extent itself, never shrinks as the grid widens.)
TTSR_ST_HD long long gram_block_elements(const PaddedGrid& lr, const PaddedGrid& ref, int ref_cap,
                                         long long elements) {
    const long long capped = 3LL * ref_cap + 2LL * ref.row + 2;
    const long long ref_span = capped < ref.pixels() ? capped : ref.pixels();
    const long long whole =
        (ref_span + kGramRowAlign - 1) / kGramRowAlign * kGramRowAlign * lr.pixels();
    const long long smallest = gram_rows(ref, 1) * gram_extent(lr, 1);
    const long long bound = elements > smallest ? elements : smallest;
    return whole < bound ? whole : bound;
}

// ---- The CUDA Gram argmax kernel ----------------------------------------------------------

constexpr int kGramSpan = 32;  // LR positions per block, Ref positions per step (one per lane)
constexpr int kGramWarps = 8;
constexpr int kGramThreads = kGramWarps * 32;
constexpr int kGramColumns = kGramSpan / kGramWarps;  // LR positions per thread
constexpr int kGramHalo = kGramSpan + 2;
constexpr int kGramSlice = kGramHalo * kGramHalo;     // one dy's Gram slice, LR-major
constexpr int kGramStage = kPatch * kGramSlice;       // floats staged per step

// One Gram tile's launch: where its block lies in the padded grids and which
// rows of each grid its positions touch.
struct GramPass {
    PaddedGrid lr, ref;
    int r0, rows, c0, cols, ldg;  // Gram block: padded Ref [r0, r0 + rows) x LR [c0, c0 + cols)
    int lr_first, lr_end, ref_first, ref_end;
    int lr_row0, lr_rows, lr_segments;
    int ref_row0, ref_rows, ref_segments;
    int steps, splits;
};

// Splits of the steps so the grid holds at least min_blocks blocks, at most one per step.
TTSR_ST_HD int gram_splits(long long row_blocks, int steps, int min_blocks) {
    long long splits = (min_blocks + row_blocks - 1) / row_blocks;
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
    g.r0 = gram_first(ref, g.ref_first);
    g.rows = gram_last(ref, g.ref_end - 1) - g.r0 + 1;
    g.c0 = gram_first(lr, g.lr_first);
    g.cols = gram_last(lr, g.lr_end - 1) - g.c0 + 1;
    g.ldg = ldg;
    g.lr_row0 = g.lr_first / lr.w;
    g.lr_rows = (g.lr_end - 1) / lr.w - g.lr_row0 + 1;
    g.lr_segments = chunk_count(lr.w, kGramSpan);
    g.ref_row0 = g.ref_first / ref.w;
    g.ref_rows = (g.ref_end - 1) / ref.w - g.ref_row0 + 1;
    g.ref_segments = chunk_count(ref.w, kGramSpan);
    g.steps = g.ref_rows * g.ref_segments;
    g.splits = gram_splits(1LL * g.lr_rows * g.lr_segments, g.steps, min_blocks);
    return g;
}

TTSR_ST_HD long long gram_row_blocks(const GramPass& g) { return 1LL * g.lr_rows * g.lr_segments; }

// Block `block` (of gram_row_blocks) owns LR row *y, columns [*x0, *x0 + kGramSpan).
TTSR_ST_HD void gram_block_origin(const GramPass& g, int block, int* y, int* x0) {
    *y = g.lr_row0 + block / g.lr_segments;
    *x0 = (block % g.lr_segments) * kGramSpan;
}

// Steps [gram_split_begin(s), gram_split_begin(s + 1)) belong to split s.
TTSR_ST_HD int gram_split_begin(int split, int splits, int steps) {
    return static_cast<int>(static_cast<long long>(split) * steps / splits);
}

// Step t of the block on LR row y: Ref row *r, columns [*c0, *c0 + kGramSpan).
TTSR_ST_HD void gram_step(const GramPass& g, int y, int t, int* r, int* c0) {
    const int turn = (y - g.lr_row0 + t / g.ref_segments) % g.ref_rows;
    *r = g.ref_row0 + turn;
    *c0 = (t % g.ref_segments) * kGramSpan;
}

// The position a lane or column scores, or -1 where it is outside the grid or the tile.
TTSR_ST_HD int gram_position(const PaddedGrid& grid, int first, int end, int y, int x) {
    if (x >= grid.w) return -1;
    const int pos = grid_index(y, x, grid.w);
    return pos >= first && pos < end ? pos : -1;
}

// Element e of a step's stage: slice dy = e / kGramSlice - 1 holds G between
// Ref pixels (r + dy, c0 - 1 .. c0 + kGramSpan) (fastest) and LR pixels
// (y + dy, x0 - 1 .. x0 + kGramSpan); 0 outside the Gram block, where only
// positions outside the tile would read.
TTSR_ST_HD float gram_stage_value(const float* gram, const GramPass& g, int y, int x0, int r,
                                  int c0, int e) {
    const int slice = e / kGramSlice;
    const int within = e - slice * kGramSlice;
    const int column = within / kGramHalo;
    const int row = within - column * kGramHalo;
    const int a = (r + slice) * g.ref.row + c0 + row - g.r0;
    const int b = (y + slice) * g.lr.row + x0 + column - g.c0;
    if (a < 0 || a >= g.rows || b < 0 || b >= g.cols) return 0.0f;
    return gram[static_cast<long long>(b) * g.ldg + a];
}

// <patch(k, c0 + lane), patch(q, x0 + column)> from a staged step: the 9
// diagonal entries summed in the twin's order (dy, then dx).
TTSR_ST_HD float gram_patch_sum(const float* stage, int lane, int column) {
    float sum = 0.0f;
    for (int dy = 0; dy < kPatch; ++dy) {
        for (int dx = 0; dx < kPatch; ++dx) {
            sum += stage[dy * kGramSlice + (column + dx) * kGramHalo + lane + dx];
        }
    }
    return sum;
}

}  // namespace ttsr_st
