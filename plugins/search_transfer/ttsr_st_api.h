/* C ABI of the TTSRSearchTransfer op (see ttsr/contract.py for its semantics).
 *
 * Includable from C and C++ without CUDA headers: the stream is a void*.
 * libttsr_st_cuda.so (and the TensorRT plugin) provide the device functions,
 * libttsr_st_cpu.so the host twin (ttsr_st_cpu_*); both provide the planning
 * functions ttsr_st_chunk_size, ttsr_st_workspace_size and ttsr_st_status_string.
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
    TTSR_ST_ERR_ARGUMENT = 3,  /* null pointer or negative ref_chunk */
    TTSR_ST_ERR_CUDA = 4,      /* a CUDA runtime call or kernel launch failed */
    TTSR_ST_ERR_CUBLAS = 5     /* a cuBLAS call failed */
};

/* Owns a cuBLAS handle; one per thread that enqueues. */
typedef struct ttsr_st_context ttsr_st_context;
TTSR_ST_API int ttsr_st_context_create(ttsr_st_context** out);
TTSR_ST_API void ttsr_st_context_destroy(ttsr_st_context* ctx);

/* Ref positions scored per pass: bounded so that one pass's normalised Ref
 * patches and relevance block together stay within a fixed byte budget, and
 * capped by ref_chunk when it is > 0.  0 for invalid arguments. */
TTSR_ST_API int ttsr_st_chunk_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk);
/* Device workspace bytes for ttsr_st_enqueue; at most linear in h*w and hr*wr,
 * independent of n, and non-decreasing in every size (h, w, hr, wr, ck) and in
 * ref_chunk > 0, so the largest shape of a range needs the most.  0 for invalid
 * arguments. */
TTSR_ST_API size_t ttsr_st_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk);
/* Enqueues the op on cuda_stream (NULL = legacy default stream); all pointers
 * are device pointers.  Returns TTSR_ST_OK or an error code. */
TTSR_ST_API int ttsr_st_enqueue(ttsr_st_context* ctx, const ttsr_st_shape* shape, ttsr_st_dtype dtype,
                                int ref_chunk, const void* q, const void* k, const void* v3,
                                const void* v2, const void* v1, void* s, void* t3, void* t2,
                                void* t1, void* workspace, void* cuda_stream);
TTSR_ST_API const char* ttsr_st_status_string(int status);

/* Host twin: same semantics and workspace layout (ttsr_st_workspace_size bytes,
 * host memory), host pointers, synchronous.
 * float16 tensors are IEEE binary16 bit patterns (uint16).  The GEMM runs on
 * $TTSR_ST_CPU_THREADS threads (default: all hardware threads); results do not
 * depend on the thread count. */
TTSR_ST_API int ttsr_st_cpu_run(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                const void* q, const void* k, const void* v3, const void* v2,
                                const void* v1, void* s, void* t3, void* t2, void* t1,
                                void* workspace);

#ifdef __cplusplus
}
#endif

#endif /* TTSR_ST_API_H */
