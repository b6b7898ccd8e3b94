// Which relevance path the CUDA op takes (rule: ttsr_st_cuda_api.h).  A host
// function, so CPU tests check it.
#pragma once

#include "fused_tiling.h"
#include "plan.h"
#include "ttsr_st_cuda_api.h"

namespace ttsr_st {

inline int relevance_path(ttsr_st_dtype dtype, int d, int requested) {
    if (requested == TTSR_ST_RELEVANCE_AUTO || requested == TTSR_ST_RELEVANCE_GRAM) {
        return TTSR_ST_RELEVANCE_GRAM;
    }
    if (requested == TTSR_ST_RELEVANCE_FUSED && dtype == TTSR_ST_FLOAT16 && fused_supports(d)) {
        return TTSR_ST_RELEVANCE_FUSED;
    }
    return TTSR_ST_RELEVANCE_GEMM;
}

// The workspace layout of the path relevance_path chose.
inline const Layout& workspace_layout(const Plan& plan, int path) {
    return path == TTSR_ST_RELEVANCE_GRAM ? plan.gram_layout : plan.patch_layout;
}

}  // namespace ttsr_st
