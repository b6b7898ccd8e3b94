// Lets the shared index math and conversions compile as CUDA __host__ __device__
// functions under nvcc and as plain inline functions under g++.
#pragma once

#if defined(__CUDACC__)
#define TTSR_ST_HD __host__ __device__ __forceinline__
#else
#define TTSR_ST_HD inline
#endif
