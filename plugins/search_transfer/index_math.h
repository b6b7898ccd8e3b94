// Per-element index math of the search-transfer op (semantics: ttsr/contract.py).
// The host twin and the CUDA kernels take every index from these functions, so
// the twin's tests cover the kernels' indexing too.
#pragma once

#include <math.h>

#include "contract.h"
#include "host_device.h"

namespace ttsr_st {

constexpr int kPatch = TTSR_ST_PATCH_SIZE;
constexpr int kPatchArea = kPatch * kPatch;
constexpr int kRadius = kPatch / 2;

// Row-major positions on a grid w wide: index = y * w + x (LR p, Ref j, pixels).
TTSR_ST_HD int grid_index(int y, int x, int w) { return y * w + x; }
TTSR_ST_HD void grid_position(int index, int w, int* y, int* x) {
    *y = index / w;
    *x = index - *y * w;
}

// Offset, within one image's (channels, h, w) map, of element d of the
// im2col-ordered patch centred at (y, x) (d = (c * 3 + dy + 1) * 3 + dx + 1);
// -1 where the element falls in the zero padding.
TTSR_ST_HD long long patch_offset(int d, int y, int x, int h, int w) {
    const int channel = d / kPatchArea;
    const int within = d - channel * kPatchArea;
    const int sy = y + within / kPatch - kRadius;
    const int sx = x + within % kPatch - kRadius;
    if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
        return -1;
    }
    return (static_cast<long long>(channel) * h + sy) * w + sx;
}

// Pixel number i (0..8, row-major over {-1,0,1}^2) of the 3x3 window centred
// at (y, x): its index on the h x w grid, or -1 where it lies in the zero padding.
TTSR_ST_HD int window_pixel(int i, int y, int x, int h, int w) {
    const int sy = y + i / kPatch - kRadius;
    const int sx = x + i % kPatch - kRadius;
    return sy < 0 || sy >= h || sx < 0 || sx >= w ? -1 : grid_index(sy, sx, w);
}

// max(||patch||, eps) of the patch centred at (y, x), from the per-pixel sums of
// squares over the channels: its 3x3 window's energies (zero padding adds nothing).
TTSR_ST_HD float patch_norm(const float* energy, int y, int x, int h, int w) {
    float total = 0.0f;
    for (int i = 0; i < kPatchArea; ++i) {
        const int pixel = window_pixel(i, y, x, h, w);
        if (pixel >= 0) total += energy[pixel];
    }
    return fmaxf(sqrtf(total), TTSR_ST_NORM_EPS);
}

// LR position (py, px) whose window covers output pixel (oy, ox) at scale f as
// its neighbour number `neighbour` (0..8, row-major over {-1,0,1}^2); false if
// that position lies outside the h x w LR grid.
TTSR_ST_HD bool transfer_neighbour(int oy, int ox, int f, int neighbour, int h, int w,
                                   int* py, int* px) {
    *py = oy / f + neighbour / kPatch - kRadius;
    *px = ox / f + neighbour % kPatch - kRadius;
    return *py >= 0 && *py < h && *px >= 0 && *px < w;
}

// Offset, within one channel plane (f*hr x f*wr) of value level f, of the sample
// that LR position (py, px), matched to Ref position (r, c), puts at output
// pixel (oy, ox); -1 where it lies outside the Ref grid (a zero sample).
TTSR_ST_HD long long transfer_source(int oy, int ox, int f, int py, int px, int r, int c,
                                     int hr, int wr) {
    const int sy = f * r + oy - f * py;
    const int sx = f * c + ox - f * px;
    if (sy < 0 || sy >= f * hr || sx < 0 || sx >= f * wr) {
        return -1;
    }
    return static_cast<long long>(sy) * (f * wr) + sx;
}

// Ref positions are scored in chunks of `chunk`: chunk i covers
// [chunk_begin(i), chunk_begin(i) + chunk_length(i)).
TTSR_ST_HD int chunk_count(int total, int chunk) { return (total + chunk - 1) / chunk; }
TTSR_ST_HD int chunk_begin(int index, int chunk) { return index * chunk; }
TTSR_ST_HD int chunk_length(int index, int chunk, int total) {
    const int left = total - index * chunk;
    return left < chunk ? left : chunk;
}

// Whether relevance `value` at Ref position j beats the best so far; equal
// values go to the lowest j (the contract's tie rule), NaN never wins.
TTSR_ST_HD bool better_match(float value, int j, float best, int best_j) {
    return value > best || (value == best && j < best_j);
}

}  // namespace ttsr_st
