// Grid shapes of the element-wise kernels: enough blocks to occupy every SM
// whenever the work has that many warps' worth of items (issue #9: a kernel
// launched with fewer blocks than SMs leaves the rest of the GPU idle).
// Host-side only in effect, but __host__ __device__ so the CPU tests check them.
#pragma once

#include "host_device.h"

namespace ttsr_st {

constexpr int kWarpSize = 32;
constexpr int kMaxBlockThreads = 256;

// Threads per block (a multiple of the warp size, 32..256) for `items`
// one-thread items: the largest block that still gives `sms` blocks.
TTSR_ST_HD int threads_per_block(long long items, int sms) {
    const long long per_sm = items / (sms > 0 ? sms : 1);
    long long threads = per_sm / kWarpSize * kWarpSize;
    if (threads < kWarpSize) threads = kWarpSize;
    return static_cast<int>(threads < kMaxBlockThreads ? threads : kMaxBlockThreads);
}

TTSR_ST_HD long long blocks_for(long long items, int per_block) {
    return (items + per_block - 1) / per_block;
}

// Normalisation, pass 1: the squared values of every pixel summed over the
// channels, kEnergyPixels pixels per block (one 32-byte sector of float32) and
// kEnergyRows threads per pixel, each summing a fixed channel stride.  A
// block always has this shape, so the sums do not depend on the GPU.
constexpr int kEnergyPixels = 8;
constexpr int kEnergyRows = kMaxBlockThreads / kEnergyPixels;

// Normalisation, pass 2: blocks of kNormTile positions x kNormTile patch
// elements (transposed through shared memory), kNormRows threads deep.
constexpr int kNormTile = 32;
constexpr int kNormRows = 8;
TTSR_ST_HD long long energy_blocks(long long pixels) { return blocks_for(pixels, kEnergyPixels); }
TTSR_ST_HD long long normalise_blocks_x(int count) { return blocks_for(count, kNormTile); }
TTSR_ST_HD long long normalise_blocks_y(int d) { return blocks_for(d, kNormTile); }
// Gram path's padding transpose: the same kNormTile x kNormTile blocks, over
// padded pixels x channels.
TTSR_ST_HD long long pad_blocks_x(int pixels) { return blocks_for(pixels, kNormTile); }
TTSR_ST_HD long long pad_blocks_y(int channels) { return blocks_for(channels, kNormTile); }

// Argmax update after a relevance GEMM: one warp per LR position scans a
// segment of its relevance column; `update_segments` cuts the columns so the
// grid reaches `min_blocks` blocks, with segments of at least one warp's rows.
constexpr int kUpdateWarps = kMaxBlockThreads / kWarpSize;
TTSR_ST_HD int update_segments(int positions, int rows, int min_blocks) {
    const long long position_blocks = blocks_for(positions, kUpdateWarps);
    long long segments = (min_blocks + position_blocks - 1) / position_blocks;
    const long long most = blocks_for(rows, kWarpSize);
    if (segments > most) segments = most;
    return static_cast<int>(segments < 1 ? 1 : segments);
}
TTSR_ST_HD int update_segment_rows(int rows, int segments) {
    // Whole warps per segment, so that every lane's loads stay coalesced.
    const int per = (rows + segments - 1) / segments;
    return (per + kWarpSize - 1) / kWarpSize * kWarpSize;
}
// Segment s covers rows [s * segment_rows, update_segment_end(s, ...)).
TTSR_ST_HD int update_segment_end(int segment, int segment_rows, int rows) {
    const long long end = static_cast<long long>(segment + 1) * segment_rows;
    return end < rows ? static_cast<int>(end) : rows;
}

}  // namespace ttsr_st
