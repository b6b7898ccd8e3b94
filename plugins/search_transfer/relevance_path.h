// Which relevance path the CUDA op takes (rule: ttsr_st_cuda_api.h).  A host
// function of the plan and the GPU's compute capability, so CPU tests check it.
#pragma once

#include "fused_tiling.h"
#include "ttsr_st_cuda_api.h"

namespace ttsr_st {

inline int relevance_path(ttsr_st_dtype dtype, int d, int requested, int cc_major) {
    if (dtype != TTSR_ST_FLOAT16 || !fused_supports(d) || requested == TTSR_ST_RELEVANCE_GEMM) {
        return TTSR_ST_RELEVANCE_GEMM;
    }
    if (requested == TTSR_ST_RELEVANCE_FUSED || cc_major == 8) {
        return TTSR_ST_RELEVANCE_FUSED;
    }
    return TTSR_ST_RELEVANCE_GEMM;
}

}  // namespace ttsr_st
