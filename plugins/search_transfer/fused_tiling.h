// Tiling and merge rules of the fused FP16 relevance + argmax kernel
// (fused_relevance.cu).  The kernel and its host emulation (cuda_emulation.cpp,
// run by tests/test_plugin_cuda_emulation.py) take every tile bound, padding
// decision and reduction order from these functions.
//
// One block owns kFusedTileP LR positions and walks a contiguous range of Ref
// tiles (its split); per Ref tile it computes the kFusedTileJ x kFusedTileP
// relevance tile with tensor-core MMAs (FP16 in, FP32 accumulate) over the
// patch length in steps of kFusedTileK, folds it into per-thread running best
// keys (argmax_key.h) held in registers, and finally merges its keys into the
// global ones with an unsigned maximum.  Splits exist only to give the GPU
// enough blocks; because keys merge by maximum, the result does not depend on
// the number of splits.
#pragma once

#include "host_device.h"

namespace ttsr_st {

constexpr int kFusedTileJ = 64;    // Ref positions per tile (rows of the relevance tile)
constexpr int kFusedTileP = 128;   // LR positions per block (columns)
constexpr int kFusedTileK = 32;    // patch elements per pipeline stage
constexpr int kFusedVector = 8;    // halves per 16-byte load
// Four warps side by side along the LR positions, each computing all
// kFusedTileJ rows of kFusedWarpP columns: 8 MMAs per 6 fragment loads.
constexpr int kFusedWarpP = 32;
constexpr int kFusedThreads = kFusedTileP / kFusedWarpP * 32;
// One thread scans each column of a finished tile, top to bottom.
static_assert(kFusedThreads == kFusedTileP, "one scanning thread per column");

// The 16-byte loads assume every patch starts on a 16-byte boundary.
TTSR_ST_HD bool fused_supports(int d) { return d % kFusedVector == 0; }

// Splits of the Ref tiles so that the grid holds at least `min_blocks` blocks
// (twice the SM count), never more splits than tiles.
TTSR_ST_HD int fused_splits(int p_tiles, int j_tiles, int min_blocks) {
    int splits = (min_blocks + p_tiles - 1) / p_tiles;
    if (splits < 1) splits = 1;
    return splits < j_tiles ? splits : j_tiles;
}

// Ref tiles [fused_split_begin(s), fused_split_begin(s + 1)) belong to split s:
// contiguous and balanced to within one tile.
TTSR_ST_HD int fused_split_begin(int split, int splits, int j_tiles) {
    return static_cast<int>(static_cast<long long>(split) * j_tiles / splits);
}

// Vector `v` of a stage: the row it fills (a Ref row of the kn tile or an LR
// column of the qn tile) and its first patch element within the stage.
TTSR_ST_HD int fused_vector_row(int v) { return v / (kFusedTileK / kFusedVector); }
TTSR_ST_HD int fused_vector_element(int v) { return v % (kFusedTileK / kFusedVector) * kFusedVector; }

// Whether the vector at (row, element) of the operand holds data; otherwise
// the tile is zero-padded there.  Zero padding along the patch adds exact
// zeros to the dot products; padded rows and columns are never scanned.
TTSR_ST_HD bool fused_vector_loads(int row, int rows, int element, int d) {
    return row < rows && element < d;
}

// Whether row `row` (a Ref position relative to the range) of a tile is
// scanned: rows past the range are padding, whose zero relevance must not win.
TTSR_ST_HD bool fused_row_scanned(int row, int rows) { return row < rows; }

}  // namespace ttsr_st
