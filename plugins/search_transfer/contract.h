// C++ mirror of ttsr/contract.py (the single definition of the op).  A test
// parses this file and checks every value against the Python module, so edit
// both together.
#pragma once

#define TTSR_ST_OP_TYPE "TTSRSearchTransfer"
#define TTSR_ST_DOMAIN "trt.plugins"
#define TTSR_ST_PLUGIN_VERSION "1"
#define TTSR_ST_PLUGIN_NAMESPACE ""

#define TTSR_ST_PATCH_SIZE 3
#define TTSR_ST_LEVEL_SCALE_3 1
#define TTSR_ST_LEVEL_SCALE_2 2
#define TTSR_ST_LEVEL_SCALE_1 4
#define TTSR_ST_FOLD_DIVISOR 9.0f
#define TTSR_ST_NORM_EPS 1e-12f

#define TTSR_ST_ATTR_PATCH_SIZE "patch_size"
#define TTSR_ST_ATTR_FOLD_DIVISOR "fold_divisor"
#define TTSR_ST_ATTR_REF_CHUNK "ref_chunk"
#define TTSR_ST_DEFAULT_REF_CHUNK 0
/* Plugin field, not an op attribute (ttsr/contract.py WORKSPACE_BUDGET_FIELD). */
#define TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB "workspace_budget_mib"
#define TTSR_ST_MAX_WORKSPACE_BUDGET_MIB 1048576

#define TTSR_ST_NUM_INPUTS 5
#define TTSR_ST_NUM_OUTPUTS 4
#define TTSR_ST_INPUT_NAMES {"q", "k", "v3", "v2", "v1"}
#define TTSR_ST_OUTPUT_NAMES {"s", "t3", "t2", "t1"}
