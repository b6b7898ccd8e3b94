// The ABI functions that only plan (no device work): shared by the host twin's
// library and the CUDA library, so both report the same tiles and workspace.
#include "plan.h"
#include "relevance_path.h"
#include "ttsr_st_api.h"
#include "ttsr_st_cuda_api.h"

extern "C" {

int ttsr_st_path_tile_sizes(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                            size_t workspace_budget, int path, int* lr_tile, int* ref_tile) {
    if (lr_tile == nullptr || ref_tile == nullptr || path < TTSR_ST_RELEVANCE_AUTO ||
        path > TTSR_ST_RELEVANCE_GRAM) {
        return TTSR_ST_ERR_ARGUMENT;
    }
    ttsr_st::Plan plan;
    const int status = ttsr_st::make_plan(shape, dtype, ref_chunk, workspace_budget,
                                          TTSR_ST_DEFAULT_WORKSPACE_BUDGET, &plan);
    if (status != TTSR_ST_OK) return status;
    const bool gram = ttsr_st::relevance_path(dtype, plan.d, path) == TTSR_ST_RELEVANCE_GRAM;
    *lr_tile = gram ? plan.gram_lr_tile : plan.lr_tile;
    *ref_tile = gram ? plan.gram_ref_tile : plan.ref_tile;
    return TTSR_ST_OK;
}

int ttsr_st_tile_sizes(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                       size_t workspace_budget, int* lr_tile, int* ref_tile) {
    return ttsr_st_path_tile_sizes(shape, dtype, ref_chunk, workspace_budget,
                                   TTSR_ST_RELEVANCE_AUTO, lr_tile, ref_tile);
}

size_t ttsr_st_path_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                                   size_t workspace_budget, int path) {
    ttsr_st::Plan plan;
    if (path < TTSR_ST_RELEVANCE_AUTO || path > TTSR_ST_RELEVANCE_GRAM ||
        ttsr_st::make_plan(shape, dtype, ref_chunk, workspace_budget,
                           TTSR_ST_DEFAULT_WORKSPACE_BUDGET, &plan) != TTSR_ST_OK) {
        return 0;
    }
    return ttsr_st::workspace_layout(plan, ttsr_st::relevance_path(dtype, plan.d, path)).bytes;
}

size_t ttsr_st_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk,
                              size_t workspace_budget) {
    return ttsr_st_path_workspace_size(shape, dtype, ref_chunk, workspace_budget,
                                       TTSR_ST_RELEVANCE_AUTO);
}

const char* ttsr_st_status_string(int status) { return ttsr_st::status_string(status); }

}  // extern "C"
