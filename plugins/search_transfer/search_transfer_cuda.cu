// CUDA kernels of the search-transfer op and the device half of the C ABI.
// Per image (plan.h), on the Gram path (the default): pad the q and k features
// (ck values per padded pixel) and take every position's inverse patch norm;
// per Gram tile, one cuBLASLt GEMM over ck and the Gram argmax kernel
// (gram_geometry.h).  On the patch paths: normalise the 9 * ck patches of every
// position once, then per patch tile a cuBLASLt GEMM and an argmax pass, or
// the fused FP16 kernel (fused_relevance.cu).  The running max/argmax of every
// LR position is one 64-bit key (argmax_key.h) merged with atomicMax, so the
// merge does not depend on tile or block order; finally decode the keys and
// gather the three texture levels.  Index math comes from index_math.h and
// gram_geometry.h, the tilings and GEMM arguments from plan.h, as in the host
// twin; every grid is shaped by launch_geometry.h to occupy all SMs.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <new>
#include <type_traits>

#include "argmax_key.h"
#include "fused_relevance.h"
#include "index_math.h"
#include "launch_geometry.h"
#include "plan.h"
#include "relevance_gemm.h"
#include "relevance_path.h"
#include "ttsr_st_api.h"
#include "ttsr_st_cuda_api.h"

struct ttsr_st_context {
    ttsr_st::RelevanceGemm gemm;
    int sms = 1;
    // Gram argmax blocks the whole GPU holds at once: its launches ask for two
    // such waves, since the kernel waits on its staging loads and needs every
    // resident block to hide them (on an H200, asking for twice the SM count
    // launched 300 blocks for 528 slots: 114 ms at LR = Ref 384 FP16).
    int gram_resident = 1;
    int relevance = TTSR_ST_RELEVANCE_AUTO;
};

namespace ttsr_st {
namespace {

constexpr int kBlock = 256;
constexpr long long kMaxTransferBlocks = 1 << 20;  // the transfer kernel grid-strides beyond this

__device__ __forceinline__ float load(float value) { return value; }
__device__ __forceinline__ float load(__half value) { return __half2float(value); }
__device__ __forceinline__ void store(float value, float* out) { *out = value; }
__device__ __forceinline__ void store(float value, __half* out) { *out = __float2half_rn(value); }

// Gram path: the (channels, h, w) map into out (gram_operand_pixels x
// channels, pixel-major: the K-major GEMM operand), border pixels and the
// operand's tail zero.  A block moves
// kNormTile padded pixels x kNormTile channels through shared memory, so that
// reads are coalesced along pixels and writes along channels.
template <typename T>
__global__ void pad_features_kernel(const T* map, PaddedGrid grid, int channels, T* out) {
    __shared__ float tile[kNormTile][kNormTile + 1];
    const int lane = threadIdx.x;
    const int pixel0 = blockIdx.x * kNormTile;
    const int channel0 = blockIdx.y * kNormTile;
    const int pixels = gram_operand_pixels(grid);
    const int source = pixel0 + lane < pixels ? grid.source(pixel0 + lane) : -1;
    for (int i = threadIdx.y; i < kNormTile; i += kNormRows) {
        const int c = channel0 + i;
        tile[i][lane] = c < channels && source >= 0
                            ? load(map[static_cast<size_t>(c) * grid.h * grid.w + source])
                            : 0.0f;
    }
    __syncthreads();
    for (int i = threadIdx.y; i < kNormTile; i += kNormRows) {
        const int pixel = pixel0 + i;
        const int c = channel0 + lane;
        if (pixel < pixels && c < channels) {
            store(tile[lane][i], out + static_cast<size_t>(pixel) * channels + c);
        }
    }
}

// Gram path: inv[pos] = 1 / max(||patch(pos)||, eps), the patch's squared norm
// being the pixel energies summed over its 3x3 window (as the twin sums them).
__global__ void inverse_norms_kernel(const float* energy, int h, int w, float* inv) {
    const int position = blockIdx.x * blockDim.x + threadIdx.x;
    if (position >= h * w) return;
    int y, x;
    grid_position(position, w, &y, &x);
    inv[position] = 1.0f / patch_norm(energy, y, x, h, w);
}

// Gram path: folds one Gram block into the keys of the tile's LR positions
// (gram_geometry.h: bands, steps, staging, the 9-entry sums).  Each thread
// scores one LR position against every Ref position of its steps, keeps its
// best (value, j) in registers (better_match: the contract's tie rule) and
// merges it as a key with atomicMax at the end.
__global__ void __launch_bounds__(kGramThreads)
    gram_argmax_kernel(const float* __restrict__ gram, GramPass g, const float* inv_q,
                       const float* inv_k, unsigned long long* keys) {
    __shared__ float stage[kGramStage];
    const int lane = threadIdx.x % kWarpSize;
    const int warp = threadIdx.x / kWarpSize;
    int y0, x0;
    gram_block_origin(g, blockIdx.x, &y0, &x0);
    const int position = gram_position(g.lr, g.lr_first, g.lr_end, y0 + warp, x0 + lane);
    const float scale = position >= 0 ? inv_q[position] : 0.0f;
    const int stage_row = threadIdx.x % kGramHalo;
    const int stage_group = threadIdx.x / kGramHalo;
    float best = -INFINITY;
    int best_j = 0;
    const int end = gram_split_begin(blockIdx.y + 1, g.splits, g.steps);
    for (int t = gram_split_begin(blockIdx.y, g.splits, g.steps); t < end; ++t) {
        int m, c0;
        gram_step(g, t, &m, &c0);
        int ref_pixel0, lr_pixel0;
        gram_stage_origin(g, y0, x0, m, c0, &ref_pixel0, &lr_pixel0);
        __syncthreads();  // the previous step's stage is read
        if (threadIdx.x < kGramStageThreads) {
            for (int batch = 0; batch < kGramStageBatches; ++batch) {
                float loaded[kGramStageBatch];
#pragma unroll
                for (int i = 0; i < kGramStageBatch; ++i) {
                    const int column = gram_stage_column(stage_group, batch, i);
                    const int slice = column / kGramHalo;
                    loaded[i] = column < kGramStageColumns
                                    ? gram_stage_entry(gram, g, ref_pixel0, lr_pixel0, slice,
                                                       column - slice * kGramHalo, stage_row)
                                    : 0.0f;
                }
#pragma unroll
                for (int i = 0; i < kGramStageBatch; ++i) {
                    const int column = gram_stage_column(stage_group, batch, i);
                    const int slice = column / kGramHalo;
                    if (column < kGramStageColumns) {
                        stage[gram_stage_slot(slice, column - slice * kGramHalo, stage_row)] = loaded[i];
                    }
                }
            }
        }
        __syncthreads();
        const int r = gram_warp_ref_row(g, m, warp);
        if (r < 0) continue;  // uniform across the warp, as lo and hi are: the shuffles below see all lanes
        int lo, hi;
        gram_step_columns(g, r, c0, &lo, &hi);
        const int j0 = r * g.ref.w + c0;
        // Lane l holds 1 / norm of the step's Ref column l; column c's comes by shuffle.
        const float inv_lane = lane >= lo && lane < hi ? inv_k[j0 + lane] : 0.0f;
#pragma unroll 4
        for (int column = lo; column < hi; ++column) {
            const float inv = __shfl_sync(0xffffffffu, inv_lane, column);
            const float value = gram_patch_sum(stage, warp, lane, column) * inv * scale;
            if (better_match(value, j0 + column, best, best_j)) {
                best = value;
                best_j = j0 + column;
            }
        }
    }
    if (position >= 0) atomicMax(keys + position, match_key(best, best_j));
}

// Normalisation, pass 1: energy[pixel] = sum over channels of map[c, pixel]^2.
// Each of the kEnergyRows threads of a pixel sums a fixed channel stride, then
// one thread adds the rows in order: the same sums on every GPU.
template <typename T>
__global__ void pixel_energy_kernel(const T* map, int channels, int pixels, float* energy) {
    __shared__ float partial[kEnergyRows][kEnergyPixels];
    const int pixel = blockIdx.x * kEnergyPixels + threadIdx.x;
    float sum = 0.0f;
    if (pixel < pixels) {
        for (int c = threadIdx.y; c < channels; c += kEnergyRows) {
            const float v = load(map[static_cast<size_t>(c) * pixels + pixel]);
            sum += v * v;
        }
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && pixel < pixels) {
        float total = 0.0f;
        for (int r = 0; r < kEnergyRows; ++r) total += partial[r][threadIdx.x];
        energy[pixel] = total;
    }
}

// Normalisation, pass 2: a kNormTile x kNormTile block of out (d x count,
// column per position).  A patch's squared norm is the energy summed over its
// 3x3 window (zero padding adds nothing).  Reads are coalesced along positions
// (threadIdx.x), and a shared tile turns them so that writes are coalesced
// along the patch.
template <typename T>
__global__ void normalise_kernel(const T* map, const float* energy, int d, int h, int w, int count,
                                 T* out) {
    __shared__ float denominator[kNormTile];
    __shared__ float tile[kNormTile][kNormTile + 1];
    const int lane = threadIdx.x;
    const int row = threadIdx.y;
    const int column0 = blockIdx.x * kNormTile;
    const int e0 = blockIdx.y * kNormTile;
    const bool active = column0 + lane < count;
    int y = 0, x = 0;
    if (active) grid_position(column0 + lane, w, &y, &x);
    if (row == 0) denominator[lane] = active ? patch_norm(energy, y, x, h, w) : TTSR_ST_NORM_EPS;
    __syncthreads();
    for (int i = row; i < kNormTile; i += kNormRows) {
        const int e = e0 + i;
        const long long offset = active && e < d ? patch_offset(e, y, x, h, w) : -1;
        tile[i][lane] = (offset < 0 ? 0.0f : load(map[offset])) / denominator[lane];
    }
    __syncthreads();
    for (int i = row; i < kNormTile; i += kNormRows) {
        const int column = column0 + i;
        const int e = e0 + lane;
        if (column < count && e < d) store(tile[lane][i], out + static_cast<size_t>(column) * d + e);
    }
}

__global__ void init_keys_kernel(int positions, unsigned long long* keys) {
    const int position = blockIdx.x * blockDim.x + threadIdx.x;
    if (position < positions) keys[position] = initial_match_key();
}

// One warp per LR position of a GEMM tile scans one segment of its relevance
// column (contiguous, coalesced) and merges the best key into keys.
__global__ void update_keys_kernel(const float* rel, int ldc, int ref_first, int rows,
                                   int lr_first, int positions, int segment_rows,
                                   unsigned long long* keys) {
    const int position = blockIdx.x * kUpdateWarps + threadIdx.x / kWarpSize;
    const int lane = threadIdx.x % kWarpSize;
    if (position >= positions) return;  // uniform across the warp
    const float* column = rel + static_cast<size_t>(position) * ldc;
    const int first = blockIdx.y * segment_rows;
    const int end = update_segment_end(blockIdx.y, segment_rows, rows);
    unsigned long long best = initial_match_key();
    for (int r = first + lane; r < end; r += kWarpSize) {
        const unsigned long long key = match_key(column[r], ref_first + r);
        best = key > best ? key : best;
    }
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
        const unsigned long long other = __shfl_down_sync(0xffffffffu, best, offset);
        best = other > best ? other : best;
    }
    if (lane == 0) atomicMax(keys + lr_first + position, best);
}

template <typename T>
__global__ void decode_keys_kernel(const unsigned long long* keys, int positions, T* s,
                                   int* best_j) {
    const int position = blockIdx.x * blockDim.x + threadIdx.x;
    if (position >= positions) return;
    const unsigned long long key = keys[position];
    store(key_value(key), s + position);
    best_j[position] = key_index(key);
}

// One thread per output element of one level (scale f) of one image: the sum
// of up to nine gathered samples, divided by the fold divisor.
template <typename T>
__global__ void transfer_kernel(const T* value, int channels, int f, const int* best_j, int h,
                                int w, int hr, int wr, T* out) {
    const int out_w = f * w;
    const size_t out_plane = size_t(f * h) * out_w;
    const size_t src_plane = size_t(f * hr) * (f * wr);
    const size_t total = out_plane * channels;
    for (size_t index = blockIdx.x * size_t(blockDim.x) + threadIdx.x; index < total;
         index += size_t(gridDim.x) * blockDim.x) {
        const size_t channel = index / out_plane;
        int oy, ox;
        grid_position(static_cast<int>(index - channel * out_plane), out_w, &oy, &ox);
        const T* plane = value + channel * src_plane;
        float sum = 0.0f;
        for (int neighbour = 0; neighbour < kPatchArea; ++neighbour) {
            int py, px;
            if (!transfer_neighbour(oy, ox, f, neighbour, h, w, &py, &px)) continue;
            int r, c;
            grid_position(best_j[grid_index(py, px, w)], wr, &r, &c);
            const long long offset = transfer_source(oy, ox, f, py, px, r, c, hr, wr);
            if (offset >= 0) sum += load(plane[offset]);
        }
        store(sum / TTSR_ST_FOLD_DIVISOR, out + index);
    }
}

// plan.h's size limits keep every grid below the 2^31 - 1 limit.
unsigned grid_of(long long blocks) { return static_cast<unsigned>(blocks); }

template <typename T>
void normalise(const T* map, int channels, int h, int w, int d, float* energy, T* out,
               cudaStream_t stream) {
    const int count = h * w;
    pixel_energy_kernel<T><<<grid_of(energy_blocks(count)), dim3(kEnergyPixels, kEnergyRows), 0,
                             stream>>>(map, channels, count, energy);
    normalise_kernel<T><<<dim3(grid_of(normalise_blocks_x(count)), grid_of(normalise_blocks_y(d))),
                          dim3(kNormTile, kNormRows), 0, stream>>>(map, energy, d, h, w, count,
                                                                   out);
}

// Texture of one level (scale f) for image n.
template <typename T>
void transfer(const T* values, int n, int channels, int f, const int* best_j,
              const ttsr_st_shape& s, T* outs, cudaStream_t stream) {
    const long long total = 1LL * channels * f * s.h * f * s.w;
    const T* value = values + size_t(n) * channels * f * s.hr * f * s.wr;
    const long long blocks = blocks_for(std::min(total, kMaxTransferBlocks * kBlock), kBlock);
    transfer_kernel<T><<<grid_of(blocks), kBlock, 0, stream>>>(value, channels, f, best_j, s.h, s.w,
                                                             s.hr, s.wr, outs + size_t(n) * total);
}

// The workspace as the path's layout (plan.h) places it: q / k hold the padded
// features on the Gram path and the normalised patches on the patch paths, rel
// the Gram or the relevance block; keys hold one 64-bit key per LR position
// while scoring, best_j the decoded argmax after it.
template <typename T>
struct Buffers {
    T* qn;
    T* kn;
    float* rel;
    float* energy;
    float* inv_q;
    float* inv_k;
    unsigned long long* keys;
    int* best_j;

    Buffers(const Layout& layout, char* workspace)
        : qn(reinterpret_cast<T*>(workspace + layout.q)),
          kn(reinterpret_cast<T*>(workspace + layout.k)),
          rel(reinterpret_cast<float*>(workspace + layout.block)),
          energy(reinterpret_cast<float*>(workspace + layout.energy)),
          inv_q(reinterpret_cast<float*>(workspace + layout.inv_q)),
          inv_k(reinterpret_cast<float*>(workspace + layout.inv_k)),
          keys(reinterpret_cast<unsigned long long*>(workspace + layout.keys)),
          best_j(reinterpret_cast<int*>(workspace + layout.best_j)) {}
};

// Gram path, per image and grid: padded features and inverse patch norms.
template <typename T>
void prepare_gram(const T* map, int channels, const PaddedGrid& grid, float* energy, T* features,
                  float* inv, int sms, cudaStream_t stream) {
    const int count = grid.h * grid.w;
    pixel_energy_kernel<T><<<grid_of(energy_blocks(count)), dim3(kEnergyPixels, kEnergyRows), 0,
                             stream>>>(map, channels, count, energy);
    const int threads = threads_per_block(count, sms);
    inverse_norms_kernel<<<grid_of(blocks_for(count, threads)), threads, 0, stream>>>(
        energy, grid.h, grid.w, inv);
    pad_features_kernel<T><<<dim3(grid_of(pad_blocks_x(gram_operand_pixels(grid))),
                                  grid_of(pad_blocks_y(channels))),
                             dim3(kNormTile, kNormRows), 0, stream>>>(map, grid, channels,
                                                                       features);
}

template <typename T>
int score_gram(ttsr_st_context* ctx, const Plan& plan, const Buffers<T>& b, cudaStream_t stream) {
    for (int t = 0; t < gram_tile_count(plan); ++t) {
        const GramPass pass = plan_gram_pass(plan, plan_gram_tile(plan, t), 2 * ctx->gram_resident);
        if (ctx->gemm.run(gram_gemm(plan, pass), sizeof(T),
                          b.kn + operand_offset(pass.r0, plan.ck),
                          b.qn + operand_offset(pass.c0, plan.ck), b.rel, stream) !=
            CUBLAS_STATUS_SUCCESS) {
            return TTSR_ST_ERR_CUBLAS;
        }
        gram_argmax_kernel<<<dim3(grid_of(gram_band_blocks(pass)), grid_of(pass.splits)),
                             kGramThreads, 0, stream>>>(b.rel, pass, b.inv_q, b.inv_k, b.keys);
    }
    return TTSR_ST_OK;
}

template <typename T>
int score_gemm(ttsr_st_context* ctx, const Plan& plan, const Buffers<T>& b, cudaStream_t stream) {
    for (int t = 0; t < tile_count(plan); ++t) {
        const Tile tile = plan_tile(plan, t);
        const GemmArgs g = relevance_gemm(plan, tile);
        if (ctx->gemm.run(g, sizeof(T), b.kn + operand_offset(tile.ref_first, plan.d),
                          b.qn + operand_offset(tile.lr_first, plan.d), b.rel, stream) !=
            CUBLAS_STATUS_SUCCESS) {
            return TTSR_ST_ERR_CUBLAS;
        }
        const int segments = update_segments(tile.lr_len, tile.ref_len, 2 * ctx->sms);
        const int segment_rows = update_segment_rows(tile.ref_len, segments);
        const dim3 blocks(grid_of(blocks_for(tile.lr_len, kUpdateWarps)),
                          grid_of(blocks_for(tile.ref_len, segment_rows)));
        update_keys_kernel<<<blocks, kUpdateWarps * kWarpSize, 0, stream>>>(
            b.rel, g.ldc, tile.ref_first, tile.ref_len, tile.lr_first, tile.lr_len, segment_rows,
            b.keys);
    }
    return TTSR_ST_OK;
}

// The fused kernel needs no relevance block, so it takes all LR positions at
// once; it still walks the plan's Ref tiles, so ref_chunk caps behave alike.
int score_fused(ttsr_st_context* ctx, const Plan& plan, const Buffers<__half>& b,
                cudaStream_t stream) {
    for (int r = 0; r < ref_tile_count(plan); ++r) {
        const int first = chunk_begin(r, plan.ref_tile);
        if (fused_relevance(b.qn, b.kn + size_t(first) * plan.d, plan.d, plan.p, first,
                            chunk_length(r, plan.ref_tile, plan.j), 2 * ctx->sms, b.keys,
                            stream) != cudaSuccess) {
            return TTSR_ST_ERR_CUDA;
        }
    }
    return TTSR_ST_OK;
}

// Scores every (LR, Ref) pair of one image into b.keys on the relevance path `path`.
template <typename T>
int score(ttsr_st_context* ctx, const ttsr_st_shape& s, const Plan& plan, int path, const T* q,
          const T* k, const Buffers<T>& b, cudaStream_t stream) {
    if (path == TTSR_ST_RELEVANCE_GRAM) {
        prepare_gram(q, s.ck, plan.lr, b.energy, b.qn, b.inv_q, ctx->sms, stream);
        prepare_gram(k, s.ck, plan.ref, b.energy, b.kn, b.inv_k, ctx->sms, stream);
        return score_gram(ctx, plan, b, stream);
    }
    normalise(q, s.ck, s.h, s.w, plan.d, b.energy, b.qn, stream);
    normalise(k, s.ck, s.hr, s.wr, plan.d, b.energy, b.kn, stream);
    if constexpr (std::is_same<T, __half>::value) {
        if (path == TTSR_ST_RELEVANCE_FUSED) return score_fused(ctx, plan, b, stream);
    }
    return score_gemm(ctx, plan, b, stream);
}

template <typename T>
int enqueue(ttsr_st_context* ctx, const ttsr_st_shape& s, const Plan& plan, int path,
            const T* q, const T* k, const T* v3, const T* v2, const T* v1, T* out_s, T* t3,
            T* t2, T* t1, char* workspace, cudaStream_t stream) {
    const Buffers<T> b(workspace_layout(plan, path), workspace);
    const size_t lr = size_t(plan.p);
    const size_t ref = size_t(plan.j);
    const int key_threads = threads_per_block(plan.p, ctx->sms);
    for (int n = 0; n < s.n; ++n) {
        init_keys_kernel<<<grid_of(blocks_for(plan.p, key_threads)), key_threads, 0, stream>>>(
            plan.p, b.keys);
        const int status = score(ctx, s, plan, path, q + size_t(n) * s.ck * lr,
                                 k + size_t(n) * s.ck * ref, b, stream);
        if (status != TTSR_ST_OK) return status;
        decode_keys_kernel<T><<<grid_of(blocks_for(plan.p, key_threads)), key_threads, 0, stream>>>(
            b.keys, plan.p, out_s + size_t(n) * lr, b.best_j);
        transfer(v3, n, s.c3, TTSR_ST_LEVEL_SCALE_3, b.best_j, s, t3, stream);
        transfer(v2, n, s.c2, TTSR_ST_LEVEL_SCALE_2, b.best_j, s, t2, stream);
        transfer(v1, n, s.c1, TTSR_ST_LEVEL_SCALE_1, b.best_j, s, t1, stream);
        if (cudaGetLastError() != cudaSuccess) return TTSR_ST_ERR_CUDA;
    }
    return TTSR_ST_OK;
}

int make_device_plan(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                     size_t budget, Plan* plan) {
    return make_plan(shape, dtype, ref_chunk, budget, TTSR_ST_DEFAULT_WORKSPACE_BUDGET, plan);
}

}  // namespace
}  // namespace ttsr_st

extern "C" {

int ttsr_st_context_create(ttsr_st_context** out) {
    if (out == nullptr) return TTSR_ST_ERR_ARGUMENT;
    *out = nullptr;
    int device = 0;
    ttsr_st_context probe;
    int gram_per_sm = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&probe.sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&gram_per_sm, ttsr_st::gram_argmax_kernel,
                                                      ttsr_st::kGramThreads, 0) != cudaSuccess) {
        return TTSR_ST_ERR_CUDA;
    }
    probe.gram_resident = probe.sms * (gram_per_sm > 0 ? gram_per_sm : 1);
    ttsr_st_context* ctx = new (std::nothrow) ttsr_st_context(probe);
    if (ctx == nullptr) return TTSR_ST_ERR_ARGUMENT;
    if (!ctx->gemm.create()) {
        delete ctx;
        return TTSR_ST_ERR_CUBLAS;
    }
    *out = ctx;
    return TTSR_ST_OK;
}

void ttsr_st_context_destroy(ttsr_st_context* ctx) {
    if (ctx == nullptr) return;
    ctx->gemm.destroy();
    delete ctx;
}

int ttsr_st_context_set_relevance(ttsr_st_context* ctx, int path) {
    if (ctx == nullptr || path < TTSR_ST_RELEVANCE_AUTO || path > TTSR_ST_RELEVANCE_GRAM) {
        return TTSR_ST_ERR_ARGUMENT;
    }
    ctx->relevance = path;
    return TTSR_ST_OK;
}

int ttsr_st_context_relevance(const ttsr_st_context* ctx, const ttsr_st_shape* shape,
                              ttsr_st_dtype dtype) {
    ttsr_st::Plan plan;
    if (ctx == nullptr || ttsr_st::make_device_plan(shape, dtype, 0, 0, &plan) != TTSR_ST_OK) return 0;
    return ttsr_st::relevance_path(dtype, plan.d, ctx->relevance);
}

int ttsr_st_enqueue(ttsr_st_context* ctx, const ttsr_st_shape* shape, ttsr_st_dtype dtype,
                    int ref_chunk, size_t workspace_budget, const void* q, const void* k,
                    const void* v3, const void* v2, const void* v1, void* s, void* t3, void* t2,
                    void* t1, void* workspace, void* cuda_stream) {
    ttsr_st::Plan plan;
    const int status = ttsr_st::make_device_plan(shape, dtype, ref_chunk, workspace_budget, &plan);
    if (status != TTSR_ST_OK) return status;
    if (!ctx || !q || !k || !v3 || !v2 || !v1 || !s || !t3 || !t2 || !t1 || !workspace) {
        return TTSR_ST_ERR_ARGUMENT;
    }
    const int path = ttsr_st::relevance_path(dtype, plan.d, ctx->relevance);
    // One call for both dtypes: the tag's type picks the element type.
    auto typed = [&](auto tag) {
        using T = decltype(tag);
        return ttsr_st::enqueue(ctx, *shape, plan, path, static_cast<const T*>(q),
                                static_cast<const T*>(k), static_cast<const T*>(v3),
                                static_cast<const T*>(v2), static_cast<const T*>(v1),
                                static_cast<T*>(s), static_cast<T*>(t3), static_cast<T*>(t2),
                                static_cast<T*>(t1), static_cast<char*>(workspace),
                                static_cast<cudaStream_t>(cuda_stream));
    };
    return dtype == TTSR_ST_FLOAT32 ? typed(float{}) : typed(__half{});
}

}  // extern "C"
