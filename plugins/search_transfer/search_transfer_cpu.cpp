// Host twin of the CUDA op: the same plan (Gram tiles, merge order, tie rule),
// the same Gram formulation (gram_geometry.h) and the same index math, on host
// memory.  Why Gram here: at LR = Ref 80x80 on 2 (shared) cores the patch GEMM
// is the PyTorch block's own bmm (580-650 ms of the block's 1.5 s), so the twin
// could not be much faster than the block; the Gram GEMMs, halos included,
// take 170-240 ms.
#include <math.h>
#include <stdint.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "half_bits.h"
#include "host_gemm.h"
#include "index_math.h"
#include "plan.h"
#include "ttsr_st_api.h"

namespace ttsr_st {
namespace {

constexpr size_t kFloatsPerLine = 16;  // padded channel planes start on 64-byte lines

inline float load(float value) { return value; }
inline float load(uint16_t value) { return half_bits_to_float(value); }
inline void store(float value, float* out) { *out = value; }
inline void store(float value, uint16_t* out) { *out = float_to_half_bits(value); }

// Floats per channel of a padded grid (rounded up to a line).
size_t plane_of(const PaddedGrid& grid) { return align_up(size_t(grid.pixels()), kFloatsPerLine); }

// The twin's workspace, after make_plan's Gram tiles:
//   qf (ck x lr plane), kf (ck x ref plane)   padded features, float32, channel-major
//   inv_q (p), inv_k (j)                      1 / max(patch norm, eps)
//   squares (the larger plane)                squared pixel norms of one grid
//   gram (plan.ldg x plan.gram_cols)          one tile's Gram block, float32
//   best (p), best_j (p)                      running max / argmax
struct TwinLayout {
    PaddedGrid lr, ref;
    size_t lr_plane = 0, ref_plane = 0;
    int ldg = 0;
    size_t qf = 0, kf = 0, inv_q = 0, inv_k = 0, squares = 0, gram = 0, best = 0, best_j = 0, bytes = 0;
};

TwinLayout twin_layout(const ttsr_st_shape& s, const Plan& plan) {
    TwinLayout out;
    out.lr = plan.lr;
    out.ref = plan.ref;
    out.lr_plane = plane_of(out.lr);
    out.ref_plane = plane_of(out.ref);
    out.ldg = plan.ldg;
    size_t at = 0;
    const auto take = [&at](size_t bytes) {
        const size_t offset = at;
        at += align_up(bytes);
        return offset;
    };
    out.qf = take(size_t(s.ck) * out.lr_plane * sizeof(float));
    out.kf = take(size_t(s.ck) * out.ref_plane * sizeof(float));
    out.inv_q = take(size_t(plan.p) * sizeof(float));
    out.inv_k = take(size_t(plan.j) * sizeof(float));
    out.squares = take(std::max(out.lr_plane, out.ref_plane) * sizeof(float));
    out.gram = take(size_t(plan.ldg) * plan.gram_cols * sizeof(float));
    out.best = take(size_t(plan.p) * sizeof(float));
    out.best_j = take(size_t(plan.p) * sizeof(int));
    out.bytes = at;
    return out;
}

// Runs body(worker) for worker = 0 .. workers - 1, on as many threads.
template <typename Body>
void parallel(int workers, const Body& body) {
    std::vector<std::thread> pool;
    for (int worker = 1; worker < workers; ++worker) pool.emplace_back(body, worker);
    body(0);
    for (std::thread& thread : pool) thread.join();
}

// [begin, end) of worker `worker`'s share of `count` items.
inline int share_begin(int count, int worker, int workers) {
    return int(int64_t(count) * worker / workers);
}

int resolve_threads(int threads) {
    if (threads > 0) return threads;
    if (const char* env = std::getenv("TTSR_ST_CPU_THREADS")) {
        const int value = std::atoi(env);
        if (value > 0) return value;
    }
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

class Stopwatch {
public:
    explicit Stopwatch(double* total) : total_(total), start_(std::chrono::steady_clock::now()) {}
    ~Stopwatch() {
        if (total_ != nullptr) {
            *total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        }
    }

private:
    double* total_;
    std::chrono::steady_clock::time_point start_;
};

// Channels [c0, c1) of one image's (ck, h, w) map into the padded float grid;
// the padding pixels were zeroed once for all images.
template <typename T>
void pad_features(const T* map, const PaddedGrid& grid, int c0, int c1, float* out) {
    const size_t plane = plane_of(grid);
    for (int c = c0; c < c1; ++c) {
        const T* src = map + size_t(c) * grid.h * grid.w;
        float* dst = out + size_t(c) * plane;
        for (int y = 0; y < grid.h; ++y) {
            float* row = dst + grid.index(y * grid.w);
            for (int x = 0; x < grid.w; ++x) row[x] = load(src[size_t(y) * grid.w + x]);
        }
    }
}

// Squared norms (over channels) of padded pixels [first, last).
void pixel_squares(const float* features, int ck, const PaddedGrid& grid, int first, int last,
                   float* out) {
    std::fill(out + first, out + last, 0.0f);
    for (int c = 0; c < ck; ++c) {
        const float* plane = features + size_t(c) * plane_of(grid);
        for (int pixel = first; pixel < last; ++pixel) out[pixel] += plane[pixel] * plane[pixel];
    }
}

// 1 / max(||patch||, eps) of positions [first, last): pixel squares summed over the 9 offsets.
void inverse_norms(const float* squares, const PaddedGrid& grid, int first, int last, float* out) {
    for (int pos = first; pos < last; ++pos) {
        const int centre = grid.index(pos);
        float sum = 0.0f;
        for (int dy = -1; dy <= 1; ++dy) {
            for (int dx = -1; dx <= 1; ++dx) sum += squares[centre + grid.offset(dy, dx)];
        }
        out[pos] = 1.0f / fmaxf(sqrtf(sum), TTSR_ST_NORM_EPS);
    }
}

// Per-image inputs of the search: padded features and inverse patch norms of one grid.
template <typename T>
void prepare(const T* map, int ck, const PaddedGrid& grid, float* features, float* squares,
             float* inv, int workers) {
    const int pixels = grid.pixels();
    const int positions = grid.h * grid.w;
    parallel(workers, [&](int worker) {
        pad_features(map, grid, share_begin(ck, worker, workers),
                     share_begin(ck, worker + 1, workers), features);
    });
    parallel(workers, [&](int worker) {
        pixel_squares(features, ck, grid, share_begin(pixels, worker, workers),
                      share_begin(pixels, worker + 1, workers), squares);
    });
    parallel(workers, [&](int worker) {
        inverse_norms(squares, grid, share_begin(positions, worker, workers),
                      share_begin(positions, worker + 1, workers), inv);
    });
}

// gram (rows x cols, ldg) = kf[rows]^T-free product: G[a, b] = <kf[:, r0 + a], qf[:, c0 + b]>,
// its columns shared among the workers.
int gram_tile(const float* qf, const float* kf, int ck, const TwinLayout& layout, int r0,
              int rows, int c0, int cols, float* gram, int workers) {
    std::vector<int> status(workers, 0);
    parallel(workers, [&](int worker) {
        const int b0 = share_begin(cols, worker, workers), b1 = share_begin(cols, worker + 1, workers);
        if (b1 > b0) {
            status[worker] = host_gemm(GemmOp::N, GemmOp::T, rows, b1 - b0, ck, 1.0f, kf + r0,
                                       int(layout.ref_plane), qf + c0 + b0, int(layout.lr_plane),
                                       0.0f, gram + size_t(b0) * layout.ldg, layout.ldg);
        }
    });
    return *std::max_element(status.begin(), status.end());
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// AVX-512 / AVX2 clones picked at load time where the CPU has them; the
// default clone keeps the library runnable on any x86-64.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
// out[i] = (sum over the 9 offsets of column[offset[o] + i]) * inv_k[i] * scale,
// i < len; returns whether any out[i] > threshold (NaN never is).
bool patch_cosines(const float* column, const ptrdiff_t* offsets, const float* __restrict__ inv_k,
                   float scale, int len, float threshold, float* __restrict__ out) {
    static_assert(kPatchArea == 9, "one pointer per patch offset");
    // Named row pointers (not offsets[o]) let the compiler vectorise over i.
    const float* __restrict__ g0 = column + offsets[0];
    const float* __restrict__ g1 = column + offsets[1];
    const float* __restrict__ g2 = column + offsets[2];
    const float* __restrict__ g3 = column + offsets[3];
    const float* __restrict__ g4 = column + offsets[4];
    const float* __restrict__ g5 = column + offsets[5];
    const float* __restrict__ g6 = column + offsets[6];
    const float* __restrict__ g7 = column + offsets[7];
    const float* __restrict__ g8 = column + offsets[8];
    int above = 0;
    for (int i = 0; i < len; ++i) {
        const float sum = g0[i] + g1[i] + g2[i] + g3[i] + g4[i] + g5[i] + g6[i] + g7[i] + g8[i];
        out[i] = sum * inv_k[i] * scale;
        above |= out[i] > threshold;
    }
    return above != 0;
}

// Folds the tile's relevance into best/best_j of LR positions [first, last):
// for each, the cosine to every Ref position of the tile, Ref row by Ref row.
void fold_tile(const float* gram, const TwinLayout& layout, const Tile& tile, int r0, int c0,
               int first, int last, const float* inv_q, const float* inv_k, float* best,
               int* best_j) {
    const PaddedGrid& lr = layout.lr;
    const PaddedGrid& ref = layout.ref;
    ptrdiff_t offsets[kPatchArea];
    for (int dy = -1, o = 0; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx, ++o) {
            offsets[o] = ref.offset(dy, dx) + ptrdiff_t(lr.offset(dy, dx)) * layout.ldg;
        }
    }
    std::vector<float> values(size_t(ref.w));
    const int ref_end = tile.ref_first + tile.ref_len;
    for (int pos = first; pos < last; ++pos) {
        const float* column = gram + size_t(lr.index(pos) - c0) * layout.ldg;
        const float scale = inv_q[pos];
        float top = tile.ref_first == 0 ? -INFINITY : best[pos];
        int top_j = tile.ref_first == 0 ? 0 : best_j[pos];
        for (int run = tile.ref_first; run < ref_end;) {
            // Ref positions of one grid row are contiguous in the Gram block.
            const int len = std::min(ref_end, (run / ref.w + 1) * ref.w) - run;
            // Ref positions come in increasing order, so only a larger value can
            // win (the contract's lowest-j tie rule); most rows have none.
            if (patch_cosines(column + (ref.index(run) - r0), offsets, inv_k + run, scale, len,
                              top, values.data())) {
                for (int i = 0; i < len; ++i) {
                    if (better_match(values[i], run + i, top, top_j)) {
                        top = values[i];
                        top_j = run + i;
                    }
                }
            }
            run += len;
        }
        best[pos] = top;
        best_j[pos] = top_j;
    }
}

// Texture of one level (scale f) for image n, output rows [row0, row1):
// output (channels, f*h, f*w) gathered from value (channels, f*hr, f*wr).
template <typename T>
void transfer(const T* values, int n, int channels, int f, const int* best_j, int h, int w,
              int hr, int wr, int row0, int row1, T* outs) {
    const int out_w = f * w;
    const size_t out_plane = size_t(f * h) * out_w;
    const size_t src_plane = size_t(f * hr) * (f * wr);
    const T* value = values + size_t(n) * channels * src_plane;
    T* out = outs + size_t(n) * channels * out_plane;
    // Sources of one output row: kPatchArea offsets per pixel, -1 = no sample.
    std::vector<long long> sources(size_t(out_w) * kPatchArea);
    for (int oy = row0; oy < row1; ++oy) {
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
int run(const ttsr_st_shape& s, const Plan& plan, int workers, const T* q, const T* k,
        const T* v3, const T* v2, const T* v1, T* out_s, T* t3, T* t2, T* t1, char* workspace,
        ttsr_st_cpu_stats* stats) {
    const TwinLayout layout = twin_layout(s, plan);
    float* qf = reinterpret_cast<float*>(workspace + layout.qf);
    float* kf = reinterpret_cast<float*>(workspace + layout.kf);
    float* inv_q = reinterpret_cast<float*>(workspace + layout.inv_q);
    float* inv_k = reinterpret_cast<float*>(workspace + layout.inv_k);
    float* squares = reinterpret_cast<float*>(workspace + layout.squares);
    float* gram = reinterpret_cast<float*>(workspace + layout.gram);
    float* best = reinterpret_cast<float*>(workspace + layout.best);
    int* best_j = reinterpret_cast<int*>(workspace + layout.best_j);
    ttsr_st_cpu_stats unused{};
    ttsr_st_cpu_stats& times = stats != nullptr ? *stats : unused;
    // Padding pixels stay zero: pad_features writes the inner pixels only.
    std::fill(qf, qf + size_t(s.ck) * layout.lr_plane, 0.0f);
    std::fill(kf, kf + size_t(s.ck) * layout.ref_plane, 0.0f);
    for (int n = 0; n < s.n; ++n) {
        const size_t lr = size_t(plan.p);
        const size_t ref = size_t(plan.j);
        {
            Stopwatch watch(&times.prepare_s);
            prepare(q + size_t(n) * s.ck * lr, s.ck, layout.lr, qf, squares, inv_q, workers);
            prepare(k + size_t(n) * s.ck * ref, s.ck, layout.ref, kf, squares, inv_k, workers);
        }
        for (int t = 0; t < gram_tile_count(plan); ++t) {
            const Tile tile = plan_gram_tile(plan, t);
            const int r0 = gram_first(layout.ref, tile.ref_first);
            const int rows = gram_last(layout.ref, tile.ref_first + tile.ref_len - 1) - r0 + 1;
            const int c0 = gram_first(layout.lr, tile.lr_first);
            const int cols = gram_last(layout.lr, tile.lr_first + tile.lr_len - 1) - c0 + 1;
            {
                Stopwatch watch(&times.gemm_s);
                if (gram_tile(qf, kf, s.ck, layout, r0, rows, c0, cols, gram, workers) != 0) {
                    return TTSR_ST_ERR_ARGUMENT;
                }
            }
            Stopwatch watch(&times.argmax_s);
            parallel(workers, [&](int worker) {
                fold_tile(gram, layout, tile, r0, c0,
                          tile.lr_first + share_begin(tile.lr_len, worker, workers),
                          tile.lr_first + share_begin(tile.lr_len, worker + 1, workers), inv_q,
                          inv_k, best, best_j);
            });
        }
        Stopwatch watch(&times.transfer_s);
        for (int pos = 0; pos < plan.p; ++pos) {
            store(best[pos], out_s + size_t(n) * lr + pos);
        }
        parallel(workers, [&](int worker) {
            const auto rows = [&](int f, int* r0, int* r1) {
                *r0 = share_begin(f * s.h, worker, workers);
                *r1 = share_begin(f * s.h, worker + 1, workers);
            };
            int r0, r1;
            rows(TTSR_ST_LEVEL_SCALE_3, &r0, &r1);
            transfer(v3, n, s.c3, TTSR_ST_LEVEL_SCALE_3, best_j, s.h, s.w, s.hr, s.wr, r0, r1, t3);
            rows(TTSR_ST_LEVEL_SCALE_2, &r0, &r1);
            transfer(v2, n, s.c2, TTSR_ST_LEVEL_SCALE_2, best_j, s.h, s.w, s.hr, s.wr, r0, r1, t2);
            rows(TTSR_ST_LEVEL_SCALE_1, &r0, &r1);
            transfer(v1, n, s.c1, TTSR_ST_LEVEL_SCALE_1, best_j, s.h, s.w, s.hr, s.wr, r0, r1, t1);
        });
    }
    return TTSR_ST_OK;
}

int twin_plan(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk, size_t budget,
              Plan* plan) {
    return make_plan(shape, dtype, ref_chunk, budget, TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET, plan);
}

}  // namespace
}  // namespace ttsr_st

extern "C" {

size_t ttsr_st_cpu_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                  size_t workspace_budget) {
    ttsr_st::Plan plan;
    if (ttsr_st::twin_plan(shape, dtype, ref_chunk, workspace_budget, &plan) != TTSR_ST_OK) return 0;
    return ttsr_st::twin_layout(*shape, plan).bytes;
}

int ttsr_st_cpu_run(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                    size_t workspace_budget, int threads, const void* q, const void* k,
                    const void* v3, const void* v2, const void* v1, void* s, void* t3, void* t2,
                    void* t1, void* workspace, ttsr_st_cpu_stats* stats) {
    ttsr_st::Plan plan;
    const int status = ttsr_st::twin_plan(shape, dtype, ref_chunk, workspace_budget, &plan);
    if (status != TTSR_ST_OK) return status;
    if (threads < 0 || !q || !k || !v3 || !v2 || !v1 || !s || !t3 || !t2 || !t1 || !workspace) {
        return TTSR_ST_ERR_ARGUMENT;
    }
    const int workers = ttsr_st::resolve_threads(threads);
    // One call for both dtypes: the tag's type picks the element type.
    auto typed = [&](auto tag) {
        using T = decltype(tag);
        return ttsr_st::run(*shape, plan, workers, static_cast<const T*>(q),
                            static_cast<const T*>(k), static_cast<const T*>(v3),
                            static_cast<const T*>(v2), static_cast<const T*>(v1),
                            static_cast<T*>(s), static_cast<T*>(t3), static_cast<T*>(t2),
                            static_cast<T*>(t1), static_cast<char*>(workspace), stats);
    };
    return dtype == TTSR_ST_FLOAT32 ? typed(float{}) : typed(uint16_t{});
}

}  // extern "C"
