// The fused FP16 relevance + argmax kernel (tiling rules: fused_tiling.h).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace ttsr_st {

// Folds R[j, p] = <kn_j, qn_p> for the Ref positions j_first .. j_first +
// j_count - 1 (kn points at j_first's column) and every LR position p into
// keys[p] (argmax_key.h).  qn is d x p, kn d x j_count, columns contiguous;
// fused_supports(d) must hold and both pointers be 16-byte aligned.
cudaError_t fused_relevance(const __half* qn, const __half* kn, int d, int p, int j_first,
                            int j_count, int min_blocks, unsigned long long* keys,
                            cudaStream_t stream);

}  // namespace ttsr_st
