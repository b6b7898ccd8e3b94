// Host emulations of the CUDA kernels' index math and launch geometry, for CPU
// tests (tests/test_plugin_cuda_emulation.py); they run each kernel's steps
// with the kernel's own functions (gram_geometry.h, fused_tiling.h,
// argmax_key.h, launch_geometry.h, index_math.h) and the plan's own tiles and
// GEMM arguments (plan.h).  For the Gram path: the padding transpose, the
// inverse norms, each tile's GEMM as plan.h states it (a plain loop standing
// in for cuBLASLt) and the argmax kernel block by block, lane by lane, with its
// staged slices; blocks run last to first.  For the fused FP16 relevance + argmax
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
#include "plan.h"
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

// Per-pixel sums of squares as pixel_energy_kernel forms them: each of the
// kEnergyRows thread rows sums a fixed channel stride, the rows added in order.
void emulate_energy(const float* map, int channels, int pixels, float* energy) {
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
}

// pad_features_kernel: block (bx, by), thread (lane, row) of a (kNormTile,
// kNormRows) block, through the block's shared tile.
void emulate_pad(const float* map, const PaddedGrid& grid, int channels, float* out) {
    const int pixels = gram_operand_pixels(grid);
    float tile[kNormTile][kNormTile + 1];
    for (long long bx = pad_blocks_x(pixels) - 1; bx >= 0; --bx) {
        for (long long by = pad_blocks_y(channels) - 1; by >= 0; --by) {
            const int pixel0 = static_cast<int>(bx) * kNormTile;
            const int channel0 = static_cast<int>(by) * kNormTile;
            for (int row = 0; row < kNormRows; ++row) {
                for (int lane = 0; lane < kNormTile; ++lane) {
                    const int source = pixel0 + lane < pixels ? grid.source(pixel0 + lane) : -1;
                    for (int i = row; i < kNormTile; i += kNormRows) {
                        const int c = channel0 + i;
                        tile[i][lane] = c < channels && source >= 0
                                            ? map[static_cast<size_t>(c) * grid.h * grid.w + source]
                                            : 0.0f;
                    }
                }
            }
            for (int row = 0; row < kNormRows; ++row) {
                for (int lane = 0; lane < kNormTile; ++lane) {
                    for (int i = row; i < kNormTile; i += kNormRows) {
                        const int pixel = pixel0 + i;
                        const int c = channel0 + lane;
                        if (pixel < pixels && c < channels) {
                            out[static_cast<size_t>(pixel) * channels + c] = tile[lane][i];
                        }
                    }
                }
            }
        }
    }
}

// inverse_norms_kernel over every position of an h x w grid.
void emulate_inverse_norms(const float* energy, int h, int w, float* inv) {
    for (int position = 0; position < h * w; ++position) {
        int y, x;
        grid_position(position, w, &y, &x);
        inv[position] = 1.0f / patch_norm(energy, y, x, h, w);
    }
}

// C = op(A) op(B) with cuBLAS's column-major meaning of GemmArgs, each entry
// summed over k in order (what cuBLASLt computes up to summation order).
void emulate_gemm(const GemmArgs& g, const float* a, const float* b, float* c) {
    for (int column = 0; column < g.n; ++column) {
        for (int row = 0; row < g.m; ++row) {
            float sum = 0.0f;
            for (int e = 0; e < g.k; ++e) {
                const float x = g.transa == GemmOp::T ? a[size_t(row) * g.lda + e] : a[size_t(e) * g.lda + row];
                const float y = g.transb == GemmOp::T ? b[size_t(e) * g.ldb + column] : b[size_t(column) * g.ldb + e];
                sum += x * y;
            }
            c[size_t(column) * g.ldc + row] = g.alpha * sum + (g.beta == 0.0f ? 0.0f : g.beta * c[size_t(column) * g.ldc + row]);
        }
    }
}

// gram_argmax_kernel, every block of the pass's grid, every thread of a block.
void emulate_gram_argmax(const float* gram, const GramPass& g, const float* inv_q,
                         const float* inv_k, unsigned long long* keys) {
    std::vector<float> stage(kGramStage);
    for (int split = g.splits - 1; split >= 0; --split) {
        for (long long block = gram_band_blocks(g) - 1; block >= 0; --block) {
            int y0, x0;
            gram_block_origin(g, static_cast<int>(block), &y0, &x0);
            std::vector<float> best(kGramThreads, -INFINITY);  // registers
            std::vector<int> best_j(kGramThreads, 0);
            const int end = gram_split_begin(split + 1, g.splits, g.steps);
            for (int t = gram_split_begin(split, g.splits, g.steps); t < end; ++t) {
                int m, c0;
                gram_step(g, t, &m, &c0);
                int ref_pixel0, lr_pixel0;
                gram_stage_origin(g, y0, x0, m, c0, &ref_pixel0, &lr_pixel0);
                std::fill(stage.begin(), stage.end(), NAN);  // words no thread stages must never be read
                for (int thread = 0; thread < kGramThreads; ++thread) {
                    if (thread >= kGramStageThreads) continue;
                    const int stage_row = thread % kGramHalo;
                    for (int batch = 0; batch < kGramStageBatches; ++batch) {
                        for (int i = 0; i < kGramStageBatch; ++i) {
                            const int column = gram_stage_column(thread / kGramHalo, batch, i);
                            if (column >= kGramStageColumns) continue;
                            const int slice = column / kGramHalo;
                            const int b = column - slice * kGramHalo;
                            stage[gram_stage_slot(slice, b, stage_row)] =
                                gram_stage_entry(gram, g, ref_pixel0, lr_pixel0, slice, b, stage_row);
                        }
                    }
                }
                for (int thread = 0; thread < kGramThreads; ++thread) {
                    const int lane = thread % kWarpSize;
                    const int warp = thread / kWarpSize;
                    const int position = gram_position(g.lr, g.lr_first, g.lr_end, y0 + warp, x0 + lane);
                    const int r = gram_warp_ref_row(g, m, warp);
                    if (r < 0 || position < 0) continue;  // the kernel's lanes without a position score unread
                    int lo, hi;
                    gram_step_columns(g, r, c0, &lo, &hi);
                    const int j0 = r * g.ref.w + c0;
                    for (int column = lo; column < hi; ++column) {
                        const float value = gram_patch_sum(stage.data(), warp, lane, column) *
                                            inv_k[j0 + column] * inv_q[position];
                        if (better_match(value, j0 + column, best[thread], best_j[thread])) {
                            best[thread] = value;
                            best_j[thread] = j0 + column;
                        }
                    }
                }
            }
            for (int thread = 0; thread < kGramThreads; ++thread) {
                const int position = gram_position(g.lr, g.lr_first, g.lr_end, y0 + thread / kWarpSize,
                                                   x0 + thread % kWarpSize);
                if (position >= 0) {
                    keys[position] = std::max(keys[position], match_key(best[thread], best_j[thread]));
                }
            }
        }
    }
}

}  // namespace
}  // namespace ttsr_st

extern "C" {

// The CUDA Gram path for one image of float32 q (ck, h, w) and k (ck, hr, wr),
// planned as ttsr_st_enqueue plans it (ref_chunk, budget as there, 0 = the
// CUDA default) on a GPU that asks for `min_blocks` blocks: keys (h * w) end
// as the kernels leave them.  Returns the number of Gram tiles, or -1 for
// arguments the plan refuses.
TTSR_ST_API int ttsr_st_emu_gram_search(const float* q, const float* k, int ck, int h, int w, int hr,
                                        int wr, int ref_chunk, size_t budget, int min_blocks,
                                        unsigned long long* keys) {
    using namespace ttsr_st;
    const ttsr_st_shape shape{1, ck, h, w, hr, wr, 1, 1, 1};
    Plan plan;
    if (make_plan(&shape, TTSR_ST_FLOAT32, ref_chunk, budget, TTSR_ST_DEFAULT_WORKSPACE_BUDGET,
                  &plan) != TTSR_ST_OK) {
        return -1;
    }
    // One workspace laid out as the kernels lay it out, full of NaN words: regions that
    // overlapped, or a read before its write, would show in the results.
    const Layout& layout = workspace_layout(plan, TTSR_ST_RELEVANCE_GRAM);
    std::vector<float> workspace(layout.bytes / sizeof(float), NAN);
    const auto at = [&workspace](size_t offset) { return workspace.data() + offset / sizeof(float); };
    float* qf = at(layout.q);
    float* kf = at(layout.k);
    float* energy = at(layout.energy);
    float* inv_q = at(layout.inv_q);
    float* inv_k = at(layout.inv_k);
    float* gram = at(layout.block);
    auto* running = reinterpret_cast<unsigned long long*>(at(layout.keys));
    std::copy(keys, keys + plan.p, running);
    emulate_pad(q, plan.lr, ck, qf);
    emulate_pad(k, plan.ref, ck, kf);
    emulate_energy(q, ck, plan.p, energy);
    emulate_inverse_norms(energy, h, w, inv_q);
    emulate_energy(k, ck, plan.j, energy);
    emulate_inverse_norms(energy, hr, wr, inv_k);
    for (int t = 0; t < gram_tile_count(plan); ++t) {
        const GramPass pass = plan_gram_pass(plan, plan_gram_tile(plan, t), min_blocks);
        const GemmArgs gemm = gram_gemm(plan, pass);
        if (size_t(gemm.ldc) * gemm.n * sizeof(float) > layout.energy - layout.block ||
            gemm.m > gemm.ldc ||
            size_t(pass.r0 + gemm.m) * ck * sizeof(float) > layout.block - layout.k ||
            size_t(pass.c0 + gemm.n) * ck * sizeof(float) > layout.k - layout.q) {
            return -2;
        }
        emulate_gemm(gemm, kf + operand_offset(pass.r0, plan.ck),
                     qf + operand_offset(pass.c0, plan.ck), gram);
        emulate_gram_argmax(gram, pass, inv_q, inv_k, running);
    }
    std::copy(running, running + plan.p, keys);
    return gram_tile_count(plan);
}

// The padded, pixel-major features (pixels x channels) pad_features_kernel
// makes of a (channels, h, w) float32 map.
TTSR_ST_API void ttsr_st_emu_pad_features(const float* map, int channels, int h, int w, float* out) {
    ttsr_st::emulate_pad(map, ttsr_st::padded_grid(h, w), channels, out);
}

// 1 / max(patch norm, eps) of every position, as the Gram path's kernels compute it.
TTSR_ST_API void ttsr_st_emu_inverse_norms(const float* map, int channels, int h, int w, float* inv) {
    std::vector<float> energy(size_t(h) * w);
    ttsr_st::emulate_energy(map, channels, h * w, energy.data());
    ttsr_st::emulate_inverse_norms(energy.data(), h, w, inv);
}

// Gram tiles and block sizes of a plan: out = {lr tile, ref tile, ldg, gram cols,
// tiles, reserved Gram floats, fewest blocks any Gram argmax launch gets when
// the GPU asks for min_blocks}.
TTSR_ST_API int ttsr_st_emu_gram_plan(int ck, int h, int w, int hr, int wr, int ref_chunk,
                                      size_t budget, int min_blocks, long long* out) {
    using namespace ttsr_st;
    const ttsr_st_shape shape{1, ck, h, w, hr, wr, 1, 1, 1};
    Plan plan;
    const int status = make_plan(&shape, TTSR_ST_FLOAT32, ref_chunk, budget,
                                 TTSR_ST_DEFAULT_WORKSPACE_BUDGET, &plan);
    if (status != TTSR_ST_OK) return status;
    const int cap = ref_chunk > 0 && ref_chunk < plan.j ? ref_chunk : plan.j;
    const size_t elements = (budget ? budget : TTSR_ST_DEFAULT_WORKSPACE_BUDGET) / sizeof(float);
    out[0] = plan.gram_lr_tile;
    out[1] = plan.gram_ref_tile;
    out[2] = plan.ldg;
    out[3] = plan.gram_cols;
    out[4] = gram_tile_count(plan);
    out[5] = gram_block_elements(plan.lr, plan.ref, cap, static_cast<long long>(elements));
    out[6] = -1;
    for (int t = 0; t < gram_tile_count(plan); ++t) {
        const GramPass pass = plan_gram_pass(plan, plan_gram_tile(plan, t), min_blocks);
        const long long blocks = gram_band_blocks(pass) * pass.splits;
        out[6] = out[6] < 0 || blocks < out[6] ? blocks : out[6];
    }
    return TTSR_ST_OK;
}

// Normalised patches of a (channels, h, w) float32 map into out (d x h*w), as
// the two normalisation kernels compute them: per-pixel energies summed over
// a fixed channel stride per thread row, rows added in order, then each
// patch's window of energies, then the division.
TTSR_ST_API void ttsr_st_emu_normalise(const float* map, int channels, int h, int w, float* out) {
    using namespace ttsr_st;
    const int pixels = h * w;
    const int d = channels * kPatchArea;
    std::vector<float> energy(pixels);
    emulate_energy(map, channels, pixels, energy.data());
    for (int column = 0; column < pixels; ++column) {
        int y, x;
        grid_position(column, w, &y, &x);
        const float denominator = patch_norm(energy.data(), y, x, h, w);
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

// Blocks each patch-path kernel launches for one image (LR p positions, Ref j
// positions, patch length d) on a GPU with `sms` SMs, in the order: energy (Ref
// map), normalise (Ref), argmax update (one relevance block of j x p), fused.
// The Gram path's argmax launches: ttsr_st_emu_gram_plan.
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

// The relevance path (ttsr_st_cuda_api.h) for these sizes when `requested` is asked for.
TTSR_ST_API int ttsr_st_emu_relevance_path(int dtype, int d, int requested) {
    return ttsr_st::relevance_path(static_cast<ttsr_st_dtype>(dtype), d, requested);
}

TTSR_ST_API int ttsr_st_emu_threads_per_block(long long items, int sms) {
    return ttsr_st::threads_per_block(items, sms);
}

}  // extern "C"
