// Fused FP16 relevance + argmax: the relevance tile lives in tensor-core
// accumulators and shared memory only; each thread keeps its column's best
// key in a register across all Ref tiles of its split.  WMMA (sm_70+) keeps
// one source for every architecture the library is built for.
#include "fused_relevance.h"

#include <mma.h>
#include <stdint.h>

#include "argmax_key.h"
#include "fused_tiling.h"
#include "index_math.h"
#include "launch_geometry.h"

namespace ttsr_st {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kFrag = 16;
constexpr int kStageLd = kFusedTileK + kFusedVector;  // halves; the pad staggers rows across banks
constexpr int kTileLd = kFusedTileP + 4;              // floats
constexpr int kFragsJ = kFusedTileJ / kFrag;
constexpr int kFragsP = kFusedWarpP / kFrag;
constexpr int kVectorsPerRow = kFusedTileK / kFusedVector;
constexpr int kKnLoads = kFusedTileJ * kVectorsPerRow / kFusedThreads;
constexpr int kQnLoads = kFusedTileP * kVectorsPerRow / kFusedThreads;

struct Stages {
    __half kn[2][kFusedTileJ * kStageLd];
    __half qn[2][kFusedTileP * kStageLd];
};
// The finished tile reuses the stage buffers: they are idle between tiles.
union Shared {
    Stages stages;
    float tile[kFusedTileJ * kTileLd];
};

struct StageRegisters {
    uint4 kn[kKnLoads];
    uint4 qn[kQnLoads];
};

__device__ __forceinline__ uint4 load_vector(const __half* base, int row, int rows, int element,
                                             int d) {
    if (!fused_vector_loads(row, rows, element, d)) return make_uint4(0, 0, 0, 0);
    return *reinterpret_cast<const uint4*>(base + static_cast<size_t>(row) * d + element);
}

__device__ __forceinline__ void load_stage(const __half* qn, const __half* kn, int d, int p,
                                           int p0, int j_count, int j0, int k0,
                                           StageRegisters& regs) {
#pragma unroll
    for (int i = 0; i < kKnLoads; ++i) {
        const int v = threadIdx.x + i * kFusedThreads;
        regs.kn[i] = load_vector(kn, j0 + fused_vector_row(v), j_count,
                                 k0 + fused_vector_element(v), d);
    }
#pragma unroll
    for (int i = 0; i < kQnLoads; ++i) {
        const int v = threadIdx.x + i * kFusedThreads;
        regs.qn[i] = load_vector(qn, p0 + fused_vector_row(v), p, k0 + fused_vector_element(v), d);
    }
}

__device__ __forceinline__ void store_stage(const StageRegisters& regs, __half* kn_stage,
                                            __half* qn_stage) {
#pragma unroll
    for (int i = 0; i < kKnLoads; ++i) {
        const int v = threadIdx.x + i * kFusedThreads;
        *reinterpret_cast<uint4*>(kn_stage + fused_vector_row(v) * kStageLd +
                                  fused_vector_element(v)) = regs.kn[i];
    }
#pragma unroll
    for (int i = 0; i < kQnLoads; ++i) {
        const int v = threadIdx.x + i * kFusedThreads;
        *reinterpret_cast<uint4*>(qn_stage + fused_vector_row(v) * kStageLd +
                                  fused_vector_element(v)) = regs.qn[i];
    }
}

using Accumulator = wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float>;

__global__ void __launch_bounds__(kFusedThreads)
fused_relevance_kernel(const __half* qn, const __half* kn, int d, int p, int j_first,
                       int j_count, int splits, unsigned long long* keys) {
    __shared__ __align__(128) Shared shared;
    const int warp_p = threadIdx.x / kWarpSize * kFusedWarpP;
    const int p0 = blockIdx.x * kFusedTileP;
    const int j_tiles = chunk_count(j_count, kFusedTileJ);
    const int tile_end = fused_split_begin(blockIdx.y + 1, splits, j_tiles);
    const int k_steps = chunk_count(d, kFusedTileK);
    const int column = threadIdx.x;
    unsigned long long best = initial_match_key();

    for (int tile = fused_split_begin(blockIdx.y, splits, j_tiles); tile < tile_end; ++tile) {
        const int j0 = tile * kFusedTileJ;
        Accumulator acc[kFragsJ][kFragsP];
#pragma unroll
        for (int a = 0; a < kFragsJ; ++a) {
#pragma unroll
            for (int b = 0; b < kFragsP; ++b) wmma::fill_fragment(acc[a][b], 0.0f);
        }
        StageRegisters regs;
        load_stage(qn, kn, d, p, p0, j_count, j0, 0, regs);
        store_stage(regs, shared.stages.kn[0], shared.stages.qn[0]);
        __syncthreads();
        for (int step = 0; step < k_steps; ++step) {
            const int stage = step & 1;
            const bool more = step + 1 < k_steps;
            // The next stage's global loads overlap this stage's MMAs.
            if (more) load_stage(qn, kn, d, p, p0, j_count, j0, (step + 1) * kFusedTileK, regs);
#pragma unroll
            for (int kk = 0; kk < kFusedTileK; kk += kFrag) {
                wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, __half, wmma::col_major>
                    b_frag[kFragsP];
#pragma unroll
                for (int b = 0; b < kFragsP; ++b) {
                    wmma::load_matrix_sync(
                        b_frag[b], shared.stages.qn[stage] + (warp_p + b * kFrag) * kStageLd + kk,
                        kStageLd);
                }
#pragma unroll
                for (int a = 0; a < kFragsJ; ++a) {
                    wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, __half, wmma::row_major>
                        a_frag;
                    wmma::load_matrix_sync(a_frag, shared.stages.kn[stage] + a * kFrag * kStageLd + kk,
                                           kStageLd);
#pragma unroll
                    for (int b = 0; b < kFragsP; ++b) wmma::mma_sync(acc[a][b], a_frag, b_frag[b], acc[a][b]);
                }
            }
            if (more) store_stage(regs, shared.stages.kn[stage ^ 1], shared.stages.qn[stage ^ 1]);
            __syncthreads();
        }
#pragma unroll
        for (int a = 0; a < kFragsJ; ++a) {
#pragma unroll
            for (int b = 0; b < kFragsP; ++b) {
                wmma::store_matrix_sync(shared.tile + a * kFrag * kTileLd + warp_p + b * kFrag,
                                        acc[a][b], kTileLd, wmma::mem_row_major);
            }
        }
        __syncthreads();
        // Rows in increasing j; the key maximum applies the contract's tie rule.
        for (int row = 0; row < kFusedTileJ; ++row) {
            if (!fused_row_scanned(j0 + row, j_count)) break;
            const unsigned long long key =
                match_key(shared.tile[row * kTileLd + column], j_first + j0 + row);
            best = key > best ? key : best;
        }
        __syncthreads();  // the next tile's stages overwrite the scanned tile
    }
    if (p0 + column < p) atomicMax(keys + p0 + column, best);
}

}  // namespace

cudaError_t fused_relevance(const __half* qn, const __half* kn, int d, int p, int j_first,
                            int j_count, int min_blocks, unsigned long long* keys,
                            cudaStream_t stream) {
    const int p_tiles = chunk_count(p, kFusedTileP);
    const int splits = fused_splits(p_tiles, chunk_count(j_count, kFusedTileJ), min_blocks);
    fused_relevance_kernel<<<dim3(p_tiles, splits), kFusedThreads, 0, stream>>>(
        qn, kn, d, p, j_first, j_count, splits, keys);
    return cudaGetLastError();
}

}  // namespace ttsr_st
