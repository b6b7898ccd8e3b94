/* C ABI of the TTSRSearchTransfer op (see ttsr/contract.py for its semantics).
 *
 * Includable from C and C++ without CUDA headers: the stream is a void*.
 * libttsr_st_cuda.so (and the TensorRT plugin) provide the device functions,
 * libttsr_st_cpu.so the host twin (ttsr_st_cpu_*); both provide the planning
 * functions ttsr_st_tile_sizes, ttsr_st_workspace_size and ttsr_st_status_string.
 * Tensors are linear NCHW, all of one dtype. */
#ifndef TTSR_ST_API_H
#define TTSR_ST_API_H

#include <stddef.h>

#if defined(__GNUC__)
#define TTSR_ST_API __attribute__((visibility("default")))
#else
#define TTSR_ST_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TTSR_ST_FLOAT32 = 0, TTSR_ST_FLOAT16 = 1 } ttsr_st_dtype;

/* As ttsr.contract.Shapes: q (n,ck,h,w), k (n,ck,hr,wr), v3 (n,c3,hr,wr),
 * v2 (n,c2,2hr,2wr), v1 (n,c1,4hr,4wr). */
typedef struct { int n, ck, h, w, hr, wr, c3, c2, c1; } ttsr_st_shape;

enum {
    TTSR_ST_OK = 0,
    TTSR_ST_ERR_SHAPE = 1,     /* a dimension < 1, or sizes that overflow the index types */
    TTSR_ST_ERR_DTYPE = 2,     /* dtype is not TTSR_ST_FLOAT32 / TTSR_ST_FLOAT16 */
    TTSR_ST_ERR_ARGUMENT = 3,  /* null pointer, negative ref_chunk or thread count */
    TTSR_ST_ERR_CUDA = 4,      /* a CUDA runtime call or kernel launch failed */
    TTSR_ST_ERR_CUBLAS = 5     /* a cuBLAS call failed */
};

/* Owns a cuBLAS handle; one per thread that enqueues. */
typedef struct ttsr_st_context ttsr_st_context;
TTSR_ST_API int ttsr_st_context_create(ttsr_st_context** out);
TTSR_ST_API void ttsr_st_context_destroy(ttsr_st_context* ctx);

/* Planning (plan.h): relevance is computed tile by tile, one GEMM per tile of
 * lr_tile LR x ref_tile Ref positions.  Gram tiles (the host twin and the
 * CUDA default path): the tile's float32 Gram block of pixel features, halo
 * included, fits workspace_budget bytes (0 = TTSR_ST_DEFAULT_WORKSPACE_BUDGET)
 * or is one grid row a side; tiles hold whole grid rows unless they cover a
 * grid.  Patch tiles (the CUDA patch paths, ttsr_st_cuda_api.h): the float32
 * relevance block of normalised patches fits the budget; tiles hold multiples
 * of 128 positions unless they cover a whole grid.  ref_chunk > 0 caps
 * ref_tile (the op's attribute).  Outputs do not depend on the tiling. */
#define TTSR_ST_DEFAULT_WORKSPACE_BUDGET ((size_t)1 << 30)
/* Tile sizes of the default relevance path (Gram tiles) for these arguments;
 * TTSR_ST_OK or an error code (ttsr_st_path_tile_sizes for the other paths). */
TTSR_ST_API int ttsr_st_tile_sizes(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                   size_t workspace_budget, int* lr_tile, int* ref_tile);
/* Device workspace bytes for ttsr_st_enqueue on a context of the default
 * relevance path (ttsr_st_cuda_api.h; ttsr_st_path_workspace_size for the
 * others); linear in h*w and hr*wr for a
 * fixed budget, independent of n, and non-decreasing in every size (h, w, hr,
 * wr, ck), in ref_chunk > 0 (0 counts as the largest) and in the budget, so the
 * largest shape of a range needs the most.  0 for invalid arguments. */
TTSR_ST_API size_t ttsr_st_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                          size_t workspace_budget);
/* Enqueues the op on cuda_stream (NULL = legacy default stream); all pointers
 * are device pointers, workspace holds ttsr_st_path_workspace_size bytes for
 * the same ref_chunk, budget and the context's relevance path
 * (ttsr_st_workspace_size for the default).  Returns TTSR_ST_OK or an error code. */
TTSR_ST_API int ttsr_st_enqueue(ttsr_st_context* ctx, const ttsr_st_shape* shape, ttsr_st_dtype dtype,
                                int ref_chunk, size_t workspace_budget, const void* q, const void* k,
                                const void* v3, const void* v2, const void* v1, void* s, void* t3,
                                void* t2, void* t1, void* workspace, void* cuda_stream);
TTSR_ST_API const char* ttsr_st_status_string(int status);

/* Host twin: the same plan (tiles, merge order, tie rule) on host memory with
 * host pointers, synchronous.  Each tile's relevance comes from the Gram matrix
 * of the raw pixel features (depth ck), summed over the 9 patch offsets and
 * divided by the patch norms: the patch GEMM's values up to float32 rounding,
 * for a ninth of its work.  The float32 Gram block of a tile is the relevance
 * block plus a halo of one padded grid row and pixel on each side.  workspace holds ttsr_st_cpu_workspace_size bytes
 * for the same ref_chunk and budget; a budget of 0 means
 * TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET in both.
 * float16 tensors are IEEE binary16 bit patterns (uint16).  threads: worker
 * threads, 0 = $TTSR_ST_CPU_THREADS or else every hardware thread; results do
 * not depend on the thread count, the budget or ref_chunk. */
#define TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET ((size_t)16 << 20)
TTSR_ST_API size_t ttsr_st_cpu_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype,
                                              int ref_chunk, size_t workspace_budget);
/* Seconds the twin spent per stage, added to by each call that is given one:
 * padded features and patch norms, Gram GEMMs, patch sums + argmax, textures. */
typedef struct { double prepare_s, gemm_s, argmax_s, transfer_s; } ttsr_st_cpu_stats;
/* stats may be NULL. */
TTSR_ST_API int ttsr_st_cpu_run(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                size_t workspace_budget, int threads, const void* q, const void* k,
                                const void* v3, const void* v2, const void* v1, void* s, void* t3,
                                void* t2, void* t1, void* workspace, ttsr_st_cpu_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* TTSR_ST_API_H */
