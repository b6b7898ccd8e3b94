// Host emulations of the CUDA kernels' index math and launch geometry, for CPU
// tests (tests/test_plugin_cuda_emulation.py); they run each kernel's steps
// with the kernel's own functions (fused_tiling.h, argmax_key.h,
// launch_geometry.h, index_math.h).  For the fused FP16 relevance + argmax
// kernel: which vectors load and which are zero padding, the Ref tile walk of
// each split, the scan order and the key merge; blocks are visited last to
// first, so a merge that depended on the order blocks finish in would show.
// The tensor cores' own summation order is not emulated: each dot product is
// summed in patch order in float32.
#include <stdint.h>

#include <math.h>

#include <algorithm>
#include <vector>

#include "argmax_key.h"
#include "fused_tiling.h"
#include "half_bits.h"
#include "index_math.h"
#include "launch_geometry.h"
#include "relevance_path.h"
#include "ttsr_st_api.h"

namespace ttsr_st {
namespace {

constexpr int kVectorsPerRow = kFusedTileK / kFusedVector;

// One stage of one operand: rows x kFusedTileK elements, as the kernel's
// vectors fill it (zero where fused_vector_loads says padding).
void load_stage(const uint16_t* base, int first_row, int rows, int k0, int d, int tile_rows,
                std::vector<float>* stage) {
    for (int v = 0; v < tile_rows * kVectorsPerRow; ++v) {
        const int row = fused_vector_row(v);
        const int element = fused_vector_element(v);
        const bool loads = fused_vector_loads(first_row + row, rows, k0 + element, d);
        for (int i = 0; i < kFusedVector; ++i) {
            const size_t at = static_cast<size_t>(first_row + row) * d + k0 + element + i;
            (*stage)[row * kFusedTileK + element + i] = loads ? half_bits_to_float(base[at]) : 0.0f;
        }
    }
}

void emulate_block(const uint16_t* qn, const uint16_t* kn, int d, int p, int j_first, int j_count,
                   int splits, int block_p, int split, unsigned long long* keys) {
    const int p0 = block_p * kFusedTileP;
    const int j_tiles = chunk_count(j_count, kFusedTileJ);
    const int k_steps = chunk_count(d, kFusedTileK);
    std::vector<unsigned long long> best(kFusedTileP, initial_match_key());
    std::vector<float> kn_stage(kFusedTileJ * kFusedTileK), qn_stage(kFusedTileP * kFusedTileK);
    std::vector<float> tile(kFusedTileJ * kFusedTileP);
    const int tile_end = fused_split_begin(split + 1, splits, j_tiles);
    for (int t = fused_split_begin(split, splits, j_tiles); t < tile_end; ++t) {
        const int j0 = t * kFusedTileJ;
        std::fill(tile.begin(), tile.end(), 0.0f);
        for (int step = 0; step < k_steps; ++step) {
            load_stage(kn, j0, j_count, step * kFusedTileK, d, kFusedTileJ, &kn_stage);
            load_stage(qn, p0, p, step * kFusedTileK, d, kFusedTileP, &qn_stage);
            for (int row = 0; row < kFusedTileJ; ++row) {
                for (int column = 0; column < kFusedTileP; ++column) {
                    float sum = tile[row * kFusedTileP + column];
                    for (int e = 0; e < kFusedTileK; ++e) {
                        sum += kn_stage[row * kFusedTileK + e] * qn_stage[column * kFusedTileK + e];
                    }
                    tile[row * kFusedTileP + column] = sum;
                }
            }
        }
        for (int column = 0; column < kFusedTileP; ++column) {
            for (int row = 0; row < kFusedTileJ; ++row) {
                if (!fused_row_scanned(j0 + row, j_count)) break;
                best[column] = std::max(
                    best[column], match_key(tile[row * kFusedTileP + column], j_first + j0 + row));
            }
        }
    }
    for (int column = 0; column < kFusedTileP; ++column) {
        if (p0 + column < p) keys[p0 + column] = std::max(keys[p0 + column], best[column]);
    }
}

}  // namespace
}  // namespace ttsr_st

extern "C" {

// Normalised patches of a (channels, h, w) float32 map into out (d x h*w), as
// the two normalisation kernels compute them: per-pixel energies summed over
// a fixed channel stride per thread row, rows added in order, then each
// patch's window of energies, then the division.
TTSR_ST_API void ttsr_st_emu_normalise(const float* map, int channels, int h, int w, float* out) {
    using namespace ttsr_st;
    const int pixels = h * w;
    const int d = channels * kPatchArea;
    std::vector<float> energy(pixels);
    for (int pixel = 0; pixel < pixels; ++pixel) {
        float total = 0.0f;
        for (int row = 0; row < kEnergyRows; ++row) {
            float sum = 0.0f;
            for (int c = row; c < channels; c += kEnergyRows) {
                const float v = map[static_cast<size_t>(c) * pixels + pixel];
                sum += v * v;
            }
            total += sum;
        }
        energy[pixel] = total;
    }
    for (int column = 0; column < pixels; ++column) {
        int y, x;
        grid_position(column, w, &y, &x);
        float total = 0.0f;
        for (int i = 0; i < kPatchArea; ++i) {
            const int pixel = window_pixel(i, y, x, h, w);
            if (pixel >= 0) total += energy[pixel];
        }
        const float denominator = fmaxf(sqrtf(total), TTSR_ST_NORM_EPS);
        for (int e = 0; e < d; ++e) {
            const long long offset = patch_offset(e, y, x, h, w);
            out[static_cast<size_t>(column) * d + e] = (offset < 0 ? 0.0f : map[offset]) / denominator;
        }
    }
}

// Folds one GEMM tile's relevance (rows x positions, column per LR position,
// ldc apart) into keys as the update kernel's blocks, warps and lanes would;
// returns the number of blocks.
TTSR_ST_API long long ttsr_st_emu_update_keys(const float* rel, int ldc, int ref_first, int rows,
                                              int lr_first, int positions, int min_blocks,
                                              unsigned long long* keys) {
    using namespace ttsr_st;
    const int segment_rows = update_segment_rows(rows, update_segments(positions, rows, min_blocks));
    const long long segments = blocks_for(rows, segment_rows);
    const long long position_blocks = blocks_for(positions, kUpdateWarps);
    for (long long segment = segments - 1; segment >= 0; --segment) {
        for (long long block = position_blocks - 1; block >= 0; --block) {
            for (int warp = 0; warp < kUpdateWarps; ++warp) {
                const long long position = block * kUpdateWarps + warp;
                if (position >= positions) continue;
                const float* column = rel + static_cast<size_t>(position) * ldc;
                const int first = static_cast<int>(segment) * segment_rows;
                const int end = update_segment_end(static_cast<int>(segment), segment_rows, rows);
                unsigned long long best = initial_match_key();  // the warp's reduction: a maximum
                for (int lane = 0; lane < kWarpSize; ++lane) {
                    for (int r = first + lane; r < end; r += kWarpSize) {
                        best = std::max(best, match_key(column[r], ref_first + r));
                    }
                }
                keys[lr_first + position] = std::max(keys[lr_first + position], best);
            }
        }
    }
    return segments * position_blocks;
}

// Folds the relevance of Ref positions j_first .. j_first + j_count - 1 into
// keys (p entries, updated in place) as the kernel would with `min_blocks`;
// returns the number of splits, or -1 where the kernel would not be chosen.
TTSR_ST_API int ttsr_st_emu_fused_relevance(const uint16_t* qn, const uint16_t* kn, int d, int p,
                                            int j_first, int j_count, int min_blocks,
                                            unsigned long long* keys) {
    using namespace ttsr_st;
    if (!fused_supports(d) || p < 1 || j_count < 1) return -1;
    const int p_tiles = chunk_count(p, kFusedTileP);
    const int splits = fused_splits(p_tiles, chunk_count(j_count, kFusedTileJ), min_blocks);
    for (int block_p = p_tiles - 1; block_p >= 0; --block_p) {
        for (int split = splits - 1; split >= 0; --split) {
            emulate_block(qn, kn, d, p, j_first, j_count, splits, block_p, split, keys);
        }
    }
    return splits;
}

TTSR_ST_API unsigned long long ttsr_st_emu_initial_key(void) { return ttsr_st::initial_match_key(); }
TTSR_ST_API unsigned long long ttsr_st_emu_match_key(float value, int j) { return ttsr_st::match_key(value, j); }
TTSR_ST_API float ttsr_st_emu_key_value(unsigned long long key) { return ttsr_st::key_value(key); }
TTSR_ST_API int ttsr_st_emu_key_index(unsigned long long key) { return ttsr_st::key_index(key); }
TTSR_ST_API int ttsr_st_emu_better_match(float value, int j, float best, int best_j) {
    return ttsr_st::better_match(value, j, best, best_j);
}

// Blocks each kernel launches for one image (LR p positions, Ref j positions,
// patch length d) on a GPU with `sms` SMs, in the order: energy (Ref map),
// normalise (Ref), argmax update (one relevance block of j x p), fused.
TTSR_ST_API void ttsr_st_emu_grid_blocks(int p, int j, int d, int sms, long long* blocks) {
    using namespace ttsr_st;
    const int min_blocks = 2 * sms;
    blocks[0] = energy_blocks(j);
    blocks[1] = normalise_blocks_x(j) * normalise_blocks_y(d);
    const int segments = update_segments(p, j, min_blocks);
    blocks[2] = blocks_for(p, kUpdateWarps) * blocks_for(j, update_segment_rows(j, segments));
    const int p_tiles = chunk_count(p, kFusedTileP);
    blocks[3] = static_cast<long long>(p_tiles) *
                fused_splits(p_tiles, chunk_count(j, kFusedTileJ), min_blocks);
}

// The relevance path (ttsr_st_cuda_api.h) for these sizes on a GPU of compute
// capability cc_major when `requested` is asked for.
TTSR_ST_API int ttsr_st_emu_relevance_path(int dtype, int d, int requested, int cc_major) {
    return ttsr_st::relevance_path(static_cast<ttsr_st_dtype>(dtype), d, requested, cc_major);
}

TTSR_ST_API int ttsr_st_emu_threads_per_block(long long items, int sms) {
    return ttsr_st::threads_per_block(items, sms);
}

}  // extern "C"
