// Host twin of the CUDA op: the same plan, the same index math and the same
// GEMM arguments, run sequentially on host memory.
#include <math.h>
#include <stdint.h>

#include <vector>

#include "half_bits.h"
#include "host_gemm.h"
#include "index_math.h"
#include "plan.h"
#include "ttsr_st_api.h"

namespace ttsr_st {
namespace {

inline float load(float value) { return value; }
inline float load(uint16_t value) { return half_bits_to_float(value); }
inline void store(float value, float* out) { *out = value; }
inline void store(float value, uint16_t* out) { *out = float_to_half_bits(value); }

// Normalised patches of positions [first, first + count) of a (channels, h, w)
// map into out (d x count, column per position), like the normalise kernel.
template <typename T>
void normalise_patches(const T* map, int d, int h, int w, int first, int count, T* out) {
    std::vector<float> patch(d);
    for (int column = 0; column < count; ++column) {
        int y, x;
        grid_position(first + column, w, &y, &x);
        float sum_squares = 0.0f;
        for (int e = 0; e < d; ++e) {
            const long long offset = patch_offset(e, y, x, h, w);
            patch[e] = offset < 0 ? 0.0f : load(map[offset]);
            sum_squares += patch[e] * patch[e];
        }
        const float denominator = fmaxf(sqrtf(sum_squares), TTSR_ST_NORM_EPS);
        T* dst = out + size_t(column) * d;
        for (int e = 0; e < d; ++e) {
            store(patch[e] / denominator, dst + e);
        }
    }
}

// Folds one tile's relevance (column per LR position, ldc rows) into the
// running max / argmax of its LR positions, like the argmax kernel.
void update_best(const float* rel, int ldc, const Tile& tile, float* best, int* best_j) {
    for (int column = 0; column < tile.lr_len; ++column) {
        const int pos = tile.lr_first + column;
        const float* values = rel + size_t(column) * ldc;
        if (tile.ref_first == 0) {
            best[pos] = -INFINITY;
            best_j[pos] = 0;
        }
        for (int r = 0; r < tile.ref_len; ++r) {
            const int j = tile.ref_first + r;
            if (better_match(values[r], j, best[pos], best_j[pos])) {
                best[pos] = values[r];
                best_j[pos] = j;
            }
        }
    }
}

// Texture of one level (scale f) for image n: output (channels, f*h, f*w)
// gathered from value (channels, f*hr, f*wr), like the transfer kernel.
template <typename T>
void transfer(const T* values, int n, int channels, int f, const int* best_j, int h, int w,
              int hr, int wr, T* outs) {
    const int out_h = f * h;
    const int out_w = f * w;
    const size_t out_plane = size_t(out_h) * out_w;
    const size_t src_plane = size_t(f * hr) * (f * wr);
    const T* value = values + size_t(n) * channels * src_plane;
    T* out = outs + size_t(n) * channels * out_plane;
    // Sources of one output row: kPatchArea offsets per pixel, -1 = no sample.
    std::vector<long long> sources(size_t(out_w) * kPatchArea);
    for (int oy = 0; oy < out_h; ++oy) {
        for (int ox = 0; ox < out_w; ++ox) {
            for (int neighbour = 0; neighbour < kPatchArea; ++neighbour) {
                int py, px;
                long long offset = -1;
                if (transfer_neighbour(oy, ox, f, neighbour, h, w, &py, &px)) {
                    int r, c;
                    grid_position(best_j[grid_index(py, px, w)], wr, &r, &c);
                    offset = transfer_source(oy, ox, f, py, px, r, c, hr, wr);
                }
                sources[size_t(ox) * kPatchArea + neighbour] = offset;
            }
        }
        for (int c = 0; c < channels; ++c) {
            const T* plane = value + c * src_plane;
            T* row = out + c * out_plane + size_t(oy) * out_w;
            for (int ox = 0; ox < out_w; ++ox) {
                const long long* pixel = &sources[size_t(ox) * kPatchArea];
                float sum = 0.0f;
                for (int neighbour = 0; neighbour < kPatchArea; ++neighbour) {
                    if (pixel[neighbour] >= 0) sum += load(plane[pixel[neighbour]]);
                }
                store(sum / TTSR_ST_FOLD_DIVISOR, row + ox);
            }
        }
    }
}

template <typename T>
int run(const ttsr_st_shape& s, const Plan& plan, const T* q, const T* k, const T* v3,
        const T* v2, const T* v1, T* out_s, T* t3, T* t2, T* t1, char* workspace) {
    T* qn = reinterpret_cast<T*>(workspace + plan.qn_offset);
    T* kn = reinterpret_cast<T*>(workspace + plan.kn_offset);
    float* rel = reinterpret_cast<float*>(workspace + plan.rel_offset);
    float* best = reinterpret_cast<float*>(workspace + plan.best_offset);
    int* best_j = reinterpret_cast<int*>(workspace + plan.best_j_offset);
    for (int n = 0; n < s.n; ++n) {
        const size_t lr = size_t(plan.p);
        const size_t ref = size_t(plan.j);
        normalise_patches(q + size_t(n) * s.ck * lr, plan.d, s.h, s.w, 0, plan.p, qn);
        normalise_patches(k + size_t(n) * s.ck * ref, plan.d, s.hr, s.wr, 0, plan.j, kn);
        for (int t = 0; t < tile_count(plan); ++t) {
            const Tile tile = plan_tile(plan, t);
            const GemmArgs g = relevance_gemm(plan, tile);
            if (host_gemm(g.transa, g.transb, g.m, g.n, g.k, g.alpha,
                          kn + ref_operand_offset(plan, tile), g.lda,
                          qn + lr_operand_offset(plan, tile), g.ldb, g.beta, rel, g.ldc) != 0) {
                return TTSR_ST_ERR_ARGUMENT;
            }
            update_best(rel, g.ldc, tile, best, best_j);
        }
        for (int pos = 0; pos < plan.p; ++pos) {
            store(best[pos], out_s + size_t(n) * lr + pos);
        }
        transfer(v3, n, s.c3, TTSR_ST_LEVEL_SCALE_3, best_j, s.h, s.w, s.hr, s.wr, t3);
        transfer(v2, n, s.c2, TTSR_ST_LEVEL_SCALE_2, best_j, s.h, s.w, s.hr, s.wr, t2);
        transfer(v1, n, s.c1, TTSR_ST_LEVEL_SCALE_1, best_j, s.h, s.w, s.hr, s.wr, t1);
    }
    return TTSR_ST_OK;
}

}  // namespace
}  // namespace ttsr_st

extern "C" {

size_t ttsr_st_cpu_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                  size_t workspace_budget) {
    ttsr_st::Plan plan;
    return ttsr_st::make_plan(shape, dtype, ref_chunk, workspace_budget,
                              TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET, &plan) == TTSR_ST_OK
               ? plan.bytes
               : 0;
}

int ttsr_st_cpu_run(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                    size_t workspace_budget, int threads, const void* q, const void* k,
                    const void* v3, const void* v2, const void* v1, void* s, void* t3, void* t2,
                    void* t1, void* workspace) {
    ttsr_st::Plan plan;
    const int status = ttsr_st::make_plan(shape, dtype, ref_chunk, workspace_budget,
                                          TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET, &plan);
    if (status != TTSR_ST_OK) return status;
    if (threads < 0 || !q || !k || !v3 || !v2 || !v1 || !s || !t3 || !t2 || !t1 || !workspace) {
        return TTSR_ST_ERR_ARGUMENT;
    }
    // One call for both dtypes: the tag's type picks the element type.
    auto typed = [&](auto tag) {
        using T = decltype(tag);
        return ttsr_st::run(*shape, plan, static_cast<const T*>(q), static_cast<const T*>(k),
                            static_cast<const T*>(v3), static_cast<const T*>(v2),
                            static_cast<const T*>(v1), static_cast<T*>(s), static_cast<T*>(t3),
                            static_cast<T*>(t2), static_cast<T*>(t1),
                            static_cast<char*>(workspace));
    };
    return dtype == TTSR_ST_FLOAT32 ? typed(float{}) : typed(uint16_t{});
}

}  // extern "C"
