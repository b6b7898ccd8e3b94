// CUDA kernels of the search-transfer op and the device half of the C ABI.
// Per image: normalise the LR and Ref patches once, then for each LR x Ref
// tile score it with one cuBLAS GEMM and fold the scores into a running
// max/argmax; finally gather the three texture levels.
// Index math comes from index_math.h and the plan (tiles, workspace layout,
// GEMM arguments) from plan.h, exactly as in the host twin.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <new>

#include "index_math.h"
#include "plan.h"
#include "ttsr_st_api.h"

struct ttsr_st_context {
    cublasHandle_t handle;
};

namespace ttsr_st {
namespace {

constexpr int kTile = 32;         // positions per normalise block (one warp wide)
constexpr int kRows = 8;          // threads per position in the normalise block
constexpr int kWarp = 32;
constexpr int kBlock = 256;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr long long kMaxTransferBlocks = 1 << 20;  // the transfer kernel grid-strides beyond this

__device__ __forceinline__ float load(float value) { return value; }
__device__ __forceinline__ float load(__half value) { return __half2float(value); }
__device__ __forceinline__ void store(float value, float* out) { *out = value; }
__device__ __forceinline__ void store(float value, __half* out) { *out = __float2half_rn(value); }

template <typename T>
__device__ __forceinline__ float patch_element(const T* map, int e, int y, int x, int h, int w) {
    const long long offset = patch_offset(e, y, x, h, w);
    return offset < 0 ? 0.0f : load(map[offset]);
}

// Normalised patches of positions [first, first + count) of a (channels, h, w)
// map into out (d x count, one column per position).  A block takes 32
// positions: reads are coalesced along positions (threadIdx.x), and a shared
// tile turns them so that writes are coalesced along the patch (d).
template <typename T>
__global__ void normalise_patches_kernel(const T* map, int d, int h, int w, int first, int count,
                                         T* out) {
    __shared__ float partial[kRows][kTile];
    __shared__ float denominator[kTile];
    __shared__ float tile[kTile][kTile + 1];
    const int lane = threadIdx.x;
    const int row = threadIdx.y;
    const int column0 = blockIdx.x * kTile;
    const bool active = column0 + lane < count;
    int y = 0, x = 0;
    if (active) grid_position(first + column0 + lane, w, &y, &x);

    float sum_squares = 0.0f;
    if (active) {
        for (int e = row; e < d; e += kRows) {
            const float v = patch_element(map, e, y, x, h, w);
            sum_squares += v * v;
        }
    }
    partial[row][lane] = sum_squares;
    __syncthreads();
    if (row == 0) {
        float total = 0.0f;
        for (int r = 0; r < kRows; ++r) total += partial[r][lane];
        denominator[lane] = fmaxf(sqrtf(total), TTSR_ST_NORM_EPS);
    }
    __syncthreads();

    for (int e0 = 0; e0 < d; e0 += kTile) {
        for (int i = row; i < kTile; i += kRows) {
            const int e = e0 + i;
            const float v = active && e < d ? patch_element(map, e, y, x, h, w) : 0.0f;
            tile[i][lane] = v / denominator[lane];
        }
        __syncthreads();
        for (int i = row; i < kTile; i += kRows) {
            const int column = column0 + i;
            const int e = e0 + lane;
            if (column < count && e < d) store(tile[lane][i], out + size_t(column) * d + e);
        }
        __syncthreads();
    }
}

// One warp per LR position of a tile: the best (value, j) of its column of
// relevance, merged into the running best (the tile at Ref 0 starts it).
__global__ void update_best_kernel(const float* rel, int ldc, int chunk_first, int chunk_len,
                                   int lr_first, int positions, bool first_chunk, float* best,
                                   int* best_j) {
    const int column_index = (blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (column_index >= positions) return;  // uniform across the warp
    const int position = lr_first + column_index;
    const float* column = rel + size_t(column_index) * ldc;
    float value = -INFINITY;
    int index = INT_MAX;
    for (int r = lane; r < chunk_len; r += kWarp) {
        if (better_match(column[r], chunk_first + r, value, index)) {
            value = column[r];
            index = chunk_first + r;
        }
    }
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
        const float other_value = __shfl_down_sync(kFullMask, value, offset);
        const int other_index = __shfl_down_sync(kFullMask, index, offset);
        if (better_match(other_value, other_index, value, index)) {
            value = other_value;
            index = other_index;
        }
    }
    if (lane == 0) {
        float running = first_chunk ? -INFINITY : best[position];
        int running_j = first_chunk ? 0 : best_j[position];
        if (better_match(value, index, running, running_j)) {
            running = value;
            running_j = index;
        }
        best[position] = running;
        best_j[position] = running_j;
    }
}

template <typename T>
__global__ void write_soft_kernel(const float* best, int positions, T* out) {
    const int position = blockIdx.x * blockDim.x + threadIdx.x;
    if (position < positions) store(best[position], out + position);
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

// Blocks to cover items; plan.h's size limits keep this below the 2^31 - 1 grid limit.
unsigned grid_for(long long items, int per_block) {
    return static_cast<unsigned>((items + per_block - 1) / per_block);
}

cublasOperation_t cublas_op(GemmOp op) { return op == GemmOp::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

cublasStatus_t relevance(cublasHandle_t handle, const GemmArgs& g, const float* kn,
                         const float* qn, float* rel) {
    return cublasSgemm(handle, cublas_op(g.transa), cublas_op(g.transb), g.m, g.n, g.k, &g.alpha,
                       kn, g.lda, qn, g.ldb, &g.beta, rel, g.ldc);
}

cublasStatus_t relevance(cublasHandle_t handle, const GemmArgs& g, const __half* kn,
                         const __half* qn, float* rel) {
    return cublasGemmEx(handle, cublas_op(g.transa), cublas_op(g.transb), g.m, g.n, g.k, &g.alpha,
                        kn, CUDA_R_16F, g.lda, qn, CUDA_R_16F, g.ldb, &g.beta, rel, CUDA_R_32F,
                        g.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

template <typename T>
void normalise(const T* map, int d, int h, int w, int first, int count, T* out,
               cudaStream_t stream) {
    const dim3 block(kTile, kRows);
    normalise_patches_kernel<T><<<grid_for(count, kTile), block, 0, stream>>>(map, d, h, w, first,
                                                                              count, out);
}

// Texture of one level (scale f) for image n.
template <typename T>
void transfer(const T* values, int n, int channels, int f, const int* best_j,
              const ttsr_st_shape& s, T* outs, cudaStream_t stream) {
    const long long total = 1LL * channels * f * s.h * f * s.w;
    const T* value = values + size_t(n) * channels * f * s.hr * f * s.wr;
    const unsigned blocks = grid_for(std::min(total, kMaxTransferBlocks * kBlock), kBlock);
    transfer_kernel<T><<<blocks, kBlock, 0, stream>>>(
        value, channels, f, best_j, s.h, s.w, s.hr, s.wr, outs + size_t(n) * total);
}

template <typename T>
int enqueue(cublasHandle_t handle, const ttsr_st_shape& s, const Plan& plan, const T* q,
            const T* k, const T* v3, const T* v2, const T* v1, T* out_s, T* t3, T* t2, T* t1,
            char* workspace, cudaStream_t stream) {
    if (cublasSetStream(handle, stream) != CUBLAS_STATUS_SUCCESS) return TTSR_ST_ERR_CUBLAS;
    T* qn = reinterpret_cast<T*>(workspace + plan.qn_offset);
    T* kn = reinterpret_cast<T*>(workspace + plan.kn_offset);
    float* rel = reinterpret_cast<float*>(workspace + plan.rel_offset);
    float* best = reinterpret_cast<float*>(workspace + plan.best_offset);
    int* best_j = reinterpret_cast<int*>(workspace + plan.best_j_offset);
    const size_t lr = size_t(plan.p);
    const size_t ref = size_t(plan.j);
    for (int n = 0; n < s.n; ++n) {
        normalise(q + size_t(n) * s.ck * lr, plan.d, s.h, s.w, 0, plan.p, qn, stream);
        normalise(k + size_t(n) * s.ck * ref, plan.d, s.hr, s.wr, 0, plan.j, kn, stream);
        for (int t = 0; t < tile_count(plan); ++t) {
            const Tile tile = plan_tile(plan, t);
            const GemmArgs g = relevance_gemm(plan, tile);
            if (relevance(handle, g, kn + ref_operand_offset(plan, tile),
                          qn + lr_operand_offset(plan, tile), rel) != CUBLAS_STATUS_SUCCESS) {
                return TTSR_ST_ERR_CUBLAS;
            }
            update_best_kernel<<<grid_for(1LL * tile.lr_len * kWarp, kBlock), kBlock, 0, stream>>>(
                rel, g.ldc, tile.ref_first, tile.ref_len, tile.lr_first, tile.lr_len,
                tile.ref_first == 0, best, best_j);
        }
        write_soft_kernel<T><<<grid_for(plan.p, kBlock), kBlock, 0, stream>>>(
            best, plan.p, out_s + size_t(n) * lr);
        transfer(v3, n, s.c3, TTSR_ST_LEVEL_SCALE_3, best_j, s, t3, stream);
        transfer(v2, n, s.c2, TTSR_ST_LEVEL_SCALE_2, best_j, s, t2, stream);
        transfer(v1, n, s.c1, TTSR_ST_LEVEL_SCALE_1, best_j, s, t1, stream);
        if (cudaGetLastError() != cudaSuccess) return TTSR_ST_ERR_CUDA;
    }
    return TTSR_ST_OK;
}

}  // namespace
}  // namespace ttsr_st

extern "C" {

int ttsr_st_context_create(ttsr_st_context** out) {
    if (out == nullptr) return TTSR_ST_ERR_ARGUMENT;
    *out = nullptr;
    ttsr_st_context* ctx = new (std::nothrow) ttsr_st_context;
    if (ctx == nullptr) return TTSR_ST_ERR_ARGUMENT;
    if (cublasCreate(&ctx->handle) != CUBLAS_STATUS_SUCCESS) {
        delete ctx;
        return TTSR_ST_ERR_CUBLAS;
    }
    // FP32 GEMMs in FP32 (no TF32), as the contract's precision section requires.
    if (cublasSetMathMode(ctx->handle, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(ctx->handle);
        delete ctx;
        return TTSR_ST_ERR_CUBLAS;
    }
    *out = ctx;
    return TTSR_ST_OK;
}

void ttsr_st_context_destroy(ttsr_st_context* ctx) {
    if (ctx == nullptr) return;
    cublasDestroy(ctx->handle);
    delete ctx;
}

int ttsr_st_enqueue(ttsr_st_context* ctx, const ttsr_st_shape* shape, ttsr_st_dtype dtype,
                    int ref_chunk, size_t workspace_budget, const void* q, const void* k,
                    const void* v3, const void* v2, const void* v1, void* s, void* t3, void* t2,
                    void* t1, void* workspace, void* cuda_stream) {
    ttsr_st::Plan plan;
    const int status = ttsr_st::make_plan(shape, dtype, ref_chunk, workspace_budget,
                                          TTSR_ST_DEFAULT_WORKSPACE_BUDGET, &plan);
    if (status != TTSR_ST_OK) return status;
    if (!ctx || !q || !k || !v3 || !v2 || !v1 || !s || !t3 || !t2 || !t1 || !workspace) {
        return TTSR_ST_ERR_ARGUMENT;
    }
    // One call for both dtypes: the tag's type picks the element type.
    auto typed = [&](auto tag) {
        using T = decltype(tag);
        return ttsr_st::enqueue(ctx->handle, *shape, plan, static_cast<const T*>(q),
                                static_cast<const T*>(k), static_cast<const T*>(v3),
                                static_cast<const T*>(v2), static_cast<const T*>(v1),
                                static_cast<T*>(s), static_cast<T*>(t3), static_cast<T*>(t2),
                                static_cast<T*>(t1), static_cast<char*>(workspace),
                                static_cast<cudaStream_t>(cuda_stream));
    };
    return dtype == TTSR_ST_FLOAT32 ? typed(float{}) : typed(__half{});
}

}  // extern "C"
