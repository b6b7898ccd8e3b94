// The ABI functions that only plan (no device work): shared by the host twin's
// library and the CUDA library, so both report the same chunk and workspace.
#include "plan.h"
#include "ttsr_st_api.h"

extern "C" {

int ttsr_st_chunk_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk) {
    ttsr_st::Plan plan;
    return ttsr_st::make_plan(shape, dtype, ref_chunk, &plan) == TTSR_ST_OK ? plan.chunk : 0;
}

size_t ttsr_st_workspace_size(const ttsr_st_shape* shape, ttsr_st_dtype dtype, int ref_chunk) {
    ttsr_st::Plan plan;
    return ttsr_st::make_plan(shape, dtype, ref_chunk, &plan) == TTSR_ST_OK ? plan.bytes : 0;
}

const char* ttsr_st_status_string(int status) { return ttsr_st::status_string(status); }

}  // extern "C"
