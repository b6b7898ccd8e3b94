/* CUDA-only extensions of the C ABI in ttsr_st_api.h (libttsr_st_cuda.so and
 * the TensorRT plugin): which relevance path ttsr_st_enqueue takes for FP16.
 *
 *   TTSR_ST_RELEVANCE_GEMM   cuBLASLt GEMM per plan tile, then an argmax pass
 *                            (always the path for FP32);
 *   TTSR_ST_RELEVANCE_FUSED  one tensor-core kernel per Ref tile that keeps
 *                            the running argmax in registers (FP16 with a
 *                            patch length 9*ck divisible by 8; otherwise GEMM);
 *   TTSR_ST_RELEVANCE_AUTO   the context's rule (the default): fused on
 *                            compute capability 8.x, where WMMA is the
 *                            architecture's own tensor-core path and cuBLAS
 *                            gains nothing over it; the GEMM elsewhere.  On an
 *                            H200 (gpu_check, LR = Ref) the GEMM path won at
 *                            every size: 0.19 vs 0.29 ms at 40, 2.5 vs 6.9 ms
 *                            at 120, 178 vs 707 ms at 384.
 * Both paths give the same argmax up to FP32 rounding of the dot products. */
#ifndef TTSR_ST_CUDA_API_H
#define TTSR_ST_CUDA_API_H

#include "ttsr_st_api.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TTSR_ST_RELEVANCE_AUTO = 0, TTSR_ST_RELEVANCE_GEMM = 1, TTSR_ST_RELEVANCE_FUSED = 2 };

/* Sets the path for later enqueues on ctx; TTSR_ST_ERR_ARGUMENT for an unknown path. */
TTSR_ST_API int ttsr_st_context_set_relevance(ttsr_st_context* ctx, int path);
/* The path (GEMM or FUSED) ttsr_st_enqueue takes on ctx for these arguments;
 * 0 for invalid arguments. */
TTSR_ST_API int ttsr_st_context_relevance(const ttsr_st_context* ctx, const ttsr_st_shape* shape,
                                          ttsr_st_dtype dtype);

#ifdef __cplusplus
}
#endif

#endif /* TTSR_ST_CUDA_API_H */
