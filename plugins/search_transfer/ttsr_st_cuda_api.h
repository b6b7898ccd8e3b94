/* CUDA-only extensions of the C ABI in ttsr_st_api.h (libttsr_st_cuda.so and
 * the TensorRT plugin): which relevance path ttsr_st_enqueue takes.
 *
 *   TTSR_ST_RELEVANCE_GRAM   per Gram tile (plan.h), one cuBLASLt GEMM over the
 *                            ck pixel features (a ninth of the patch GEMM's
 *                            work) and a kernel that sums each patch's 9 Gram
 *                            entries, divides by the patch norms and keeps the
 *                            running argmax (gram_geometry.h); FP32 and FP16;
 *   TTSR_ST_RELEVANCE_GEMM   cuBLASLt GEMM of normalised 9 * ck patches per
 *                            patch tile, then an argmax pass; FP32 and FP16;
 *   TTSR_ST_RELEVANCE_FUSED  one tensor-core kernel per Ref tile over the
 *                            normalised patches that keeps the running argmax
 *                            in registers (FP16 with a patch length 9*ck
 *                            divisible by 8; otherwise GEMM);
 *   TTSR_ST_RELEVANCE_AUTO   the default: GRAM.  On an H200 (gpu_check, LR =
 *                            Ref, same run) GRAM / GEMM / FUSED took, FP16:
 *                            1.92 / 2.46 / 6.99 ms at 120, 127 / 173 / 680 ms
 *                            at 384; FP32: 4.1 / 19.7 ms at 120, 361 / 1933 ms
 *                            at 384.
 * All paths give the same argmax up to FP32 rounding of the dot products. */
#ifndef TTSR_ST_CUDA_API_H
#define TTSR_ST_CUDA_API_H

#include "ttsr_st_api.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TTSR_ST_RELEVANCE_AUTO = 0,
    TTSR_ST_RELEVANCE_GEMM = 1,
    TTSR_ST_RELEVANCE_FUSED = 2,
    TTSR_ST_RELEVANCE_GRAM = 3
};

/* Sets the path for later enqueues on ctx; TTSR_ST_ERR_ARGUMENT for an unknown path. */
TTSR_ST_API int ttsr_st_context_set_relevance(ttsr_st_context* ctx, int path);
/* Workspace bytes ttsr_st_enqueue needs on a context set to relevance `path`
 * (the paths lay out different buffers: the patch paths' normalised patches
 * take 9x the Gram path's padded features); as ttsr_st_workspace_size
 * otherwise, which is this for TTSR_ST_RELEVANCE_AUTO.  0 for invalid arguments. */
TTSR_ST_API size_t ttsr_st_path_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype,
                                               int ref_chunk, size_t workspace_budget, int path);
/* Tiles ttsr_st_enqueue scores with on a context set to relevance `path`: Gram
 * tiles on the Gram path, patch tiles on the others; as ttsr_st_tile_sizes
 * otherwise, which is this for TTSR_ST_RELEVANCE_AUTO. */
TTSR_ST_API int ttsr_st_path_tile_sizes(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                        size_t workspace_budget, int path, int* lr_tile,
                                        int* ref_tile);
/* The path (GRAM, GEMM or FUSED) ttsr_st_enqueue takes on ctx for these arguments;
 * 0 for invalid arguments. */
TTSR_ST_API int ttsr_st_context_relevance(const ttsr_st_context* ctx, const ttsr_st_shape* shape,
                                          ttsr_st_dtype dtype);

#ifdef __cplusplus
}
#endif

#endif /* TTSR_ST_CUDA_API_H */
