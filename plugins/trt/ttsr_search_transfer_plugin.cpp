#include "ttsr_search_transfer_plugin.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <type_traits>

#include "contract.h"
#include "plugin_logger.h"

using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::IDimensionExpr;
using nvinfer1::IPluginV3;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::PluginTensorDesc;

namespace ttsr_trt
{
namespace
{

static_assert(TTSR_ST_NUM_INPUTS == 5 && TTSR_ST_NUM_OUTPUTS == 4, "the plugin maps q,k,v3,v2,v1 -> s,t3,t2,t1");

enum Input : int32_t
{
    kQ = 0,
    kK,
    kV3,
    kV2,
    kV1
};

bool toKernelDtype(DataType type, ttsr_st_dtype& out)
{
    switch (type)
    {
    case DataType::kFLOAT: out = TTSR_ST_FLOAT32; return true;
    case DataType::kHALF: out = TTSR_ST_FLOAT16; return true;
    default: return false;
    }
}

bool toInt(int64_t value, int& out)
{
    if (value < 0 || value > std::numeric_limits<int>::max())
    {
        return false;
    }
    out = static_cast<int>(value);
    return true;
}

std::string dimsToString(Dims const& dims)
{
    std::string text = "(";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        text += (i == 0 ? "" : ", ") + std::to_string(dims.d[i]);
    }
    return text + ")";
}

//! Reads the kernel shape from the five input dims (all rank 4, non-negative).
//! The relations between the inputs are checked separately by checkInputRelations.
bool readShape(Dims const* const* in, ttsr_st_shape& shape, std::string& error)
{
    static char const* const kNames[] = TTSR_ST_INPUT_NAMES;
    for (int32_t i = 0; i < TTSR_ST_NUM_INPUTS; ++i)
    {
        if (in[i]->nbDims != 4)
        {
            error = std::string("input '") + kNames[i] + "' has shape " + dimsToString(*in[i])
                + ", expected rank 4 (NCHW); see ttsr/contract.py";
            return false;
        }
    }
    Dims const& q = *in[kQ];
    Dims const& k = *in[kK];
    bool const fits = toInt(q.d[0], shape.n) && toInt(q.d[1], shape.ck) && toInt(q.d[2], shape.h)
        && toInt(q.d[3], shape.w) && toInt(k.d[2], shape.hr) && toInt(k.d[3], shape.wr)
        && toInt(in[kV3]->d[1], shape.c3) && toInt(in[kV2]->d[1], shape.c2) && toInt(in[kV1]->d[1], shape.c1);
    if (!fits)
    {
        error = "input dimensions " + dimsToString(q) + ", " + dimsToString(k) + " are negative or exceed int32";
    }
    return fits;
}

//! The shape relations of ttsr/contract.py (Shapes.expected_inputs) for concrete dims.
bool checkInputRelations(Dims const* const* in, ttsr_st_shape const& s, std::string& error)
{
    static char const* const kNames[] = TTSR_ST_INPUT_NAMES;
    int64_t const expected[TTSR_ST_NUM_INPUTS][4] = {
        {s.n, s.ck, s.h, s.w},
        {s.n, s.ck, s.hr, s.wr},
        {s.n, s.c3, s.hr, s.wr},
        {s.n, s.c2, TTSR_ST_LEVEL_SCALE_2 * int64_t{s.hr}, TTSR_ST_LEVEL_SCALE_2 * int64_t{s.wr}},
        {s.n, s.c1, TTSR_ST_LEVEL_SCALE_1 * int64_t{s.hr}, TTSR_ST_LEVEL_SCALE_1 * int64_t{s.wr}},
    };
    for (int32_t i = 0; i < TTSR_ST_NUM_INPUTS; ++i)
    {
        for (int32_t d = 0; d < 4; ++d)
        {
            if (in[i]->d[d] != expected[i][d])
            {
                Dims want{};
                want.nbDims = 4;
                std::copy(expected[i], expected[i] + 4, want.d);
                error = std::string("input '") + kNames[i] + "' has shape " + dimsToString(*in[i]) + ", expected "
                    + dimsToString(want) + " from q " + dimsToString(*in[kQ]) + " and k " + dimsToString(*in[kK])
                    + "; see ttsr/contract.py";
                return false;
            }
        }
    }
    if (s.n > 0 && (s.h < 1 || s.w < 1 || s.hr < 1 || s.wr < 1))
    {
        error = "empty LR or Ref grid: q " + dimsToString(*in[kQ]) + ", k " + dimsToString(*in[kK]);
        return false;
    }
    return true;
}

bool readIntField(PluginField const& field, int32_t& out, std::string& error)
{
    if (field.data != nullptr && field.length == 1 && field.type == PluginFieldType::kINT32)
    {
        out = *static_cast<int32_t const*>(field.data);
        return true;
    }
    if (field.data != nullptr && field.length == 1 && field.type == PluginFieldType::kINT64)
    {
        int64_t const value = *static_cast<int64_t const*>(field.data);
        if (value >= std::numeric_limits<int32_t>::min() && value <= std::numeric_limits<int32_t>::max())
        {
            out = static_cast<int32_t>(value);
            return true;
        }
    }
    error = std::string("field '") + field.name + "' must be one INT32 value (an ONNX INT attribute)";
    return false;
}

bool readFloatField(PluginField const& field, float& out, std::string& error)
{
    if (field.data != nullptr && field.length == 1 && field.type == PluginFieldType::kFLOAT32)
    {
        out = *static_cast<float const*>(field.data);
        return true;
    }
    if (field.data != nullptr && field.length == 1 && field.type == PluginFieldType::kFLOAT64)
    {
        out = static_cast<float>(*static_cast<double const*>(field.data));
        return true;
    }
    error = std::string("field '") + field.name + "' must be one FLOAT32 value (an ONNX FLOAT attribute)";
    return false;
}

//! Fields absent from the collection keep the contract's defaults (the ONNX parser only warns
//! about missing attributes).
bool parseParams(PluginFieldCollection const* fc, SearchTransferParams& params, std::string& error)
{
    params = SearchTransferParams{TTSR_ST_PATCH_SIZE, TTSR_ST_FOLD_DIVISOR, TTSR_ST_DEFAULT_REF_CHUNK, 0};
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        PluginField const& field = fc->fields[i];
        if (field.name == nullptr)
        {
            continue;
        }
        bool ok = true;
        if (std::strcmp(field.name, TTSR_ST_ATTR_PATCH_SIZE) == 0)
        {
            ok = readIntField(field, params.patchSize, error);
        }
        else if (std::strcmp(field.name, TTSR_ST_ATTR_FOLD_DIVISOR) == 0)
        {
            ok = readFloatField(field, params.foldDivisor, error);
        }
        else if (std::strcmp(field.name, TTSR_ST_ATTR_REF_CHUNK) == 0)
        {
            ok = readIntField(field, params.refChunk, error);
        }
        else if (std::strcmp(field.name, TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB) == 0)
        {
            ok = readIntField(field, params.workspaceBudgetMib, error);
        }
        if (!ok)
        {
            return false;
        }
    }
    // The kernels implement exactly the contract; other values would silently compute another op.
    if (params.patchSize != TTSR_ST_PATCH_SIZE)
    {
        error = std::string(TTSR_ST_ATTR_PATCH_SIZE) + "=" + std::to_string(params.patchSize)
            + " is not supported: the kernels compute 3x3 patches only (export the graph with ttsr, see ttsr/contract.py)";
        return false;
    }
    if (params.foldDivisor != TTSR_ST_FOLD_DIVISOR)
    {
        error = std::string(TTSR_ST_ATTR_FOLD_DIVISOR) + "=" + std::to_string(params.foldDivisor)
            + " is not supported: the kernels divide by 9 (export the graph with ttsr, see ttsr/contract.py)";
        return false;
    }
    if (params.refChunk < 0)
    {
        error = std::string(TTSR_ST_ATTR_REF_CHUNK) + "=" + std::to_string(params.refChunk)
            + " is invalid: use 0 (the kernels choose) or a positive cap on Ref positions per pass";
        return false;
    }
    if (params.workspaceBudgetMib < 0 || params.workspaceBudgetMib > TTSR_ST_MAX_WORKSPACE_BUDGET_MIB)
    {
        error = std::string(TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB) + "=" + std::to_string(params.workspaceBudgetMib)
            + " is invalid: use 0 (the kernels' default, " + std::to_string(TTSR_ST_DEFAULT_WORKSPACE_BUDGET >> 20) + ") or 1.." + std::to_string(TTSR_ST_MAX_WORKSPACE_BUDGET_MIB)
            + " MiB (build_engine.py --workspace-budget)";
        return false;
    }
    return true;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// TTSRSearchTransferPlugin

TTSRSearchTransferPlugin::TTSRSearchTransferPlugin(SearchTransferParams const& params)
    : mParams(params)
{
}

TTSRSearchTransferPlugin::TTSRSearchTransferPlugin(TTSRSearchTransferPlugin const& other)
    : IPluginV3(other)
    , IPluginV3OneCore(other)
    , IPluginV3OneBuild(other)
    , IPluginV3OneRuntime(other)
    , mParams(other.mParams)
{
}

TTSRSearchTransferPlugin::~TTSRSearchTransferPlugin()
{
    if (mContext != nullptr)
    {
        ttsr_st_context_destroy(mContext);
    }
}

nvinfer1::IPluginCapability* TTSRSearchTransferPlugin::getCapabilityInterface(
    nvinfer1::PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* TTSRSearchTransferPlugin::clone() noexcept
{
    try
    {
        return new TTSRSearchTransferPlugin(*this);
    }
    catch (std::exception const& e)
    {
        logError(std::string("clone failed: ") + e.what());
        return nullptr;
    }
}

nvinfer1::AsciiChar const* TTSRSearchTransferPlugin::getPluginName() const noexcept
{
    return TTSR_ST_OP_TYPE;
}

nvinfer1::AsciiChar const* TTSRSearchTransferPlugin::getPluginVersion() const noexcept
{
    return TTSR_ST_PLUGIN_VERSION;
}

nvinfer1::AsciiChar const* TTSRSearchTransferPlugin::getPluginNamespace() const noexcept
{
    return TTSR_ST_PLUGIN_NAMESPACE;
}

int32_t TTSRSearchTransferPlugin::getNbOutputs() const noexcept
{
    return TTSR_ST_NUM_OUTPUTS;
}

int32_t TTSRSearchTransferPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
    DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        if (in == nullptr || out == nullptr || nbInputs != TTSR_ST_NUM_INPUTS || nbOutputs != TTSR_ST_NUM_OUTPUTS)
        {
            logError("expects 5 inputs (q, k, v3, v2, v1) and 4 outputs (s, t3, t2, t1), got " + std::to_string(nbInputs)
                + " and " + std::to_string(nbOutputs));
            return -1;
        }
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            if (in[i].desc.dims.nbDims != 4)
            {
                logError("input " + std::to_string(i) + " has rank " + std::to_string(in[i].desc.dims.nbDims)
                    + ", expected 4 (NCHW); see ttsr/contract.py");
                return -1;
            }
        }
        return 0;
    }
    catch (std::exception const&)
    {
        return -1;
    }
}

int32_t TTSRSearchTransferPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    try
    {
        if (outputTypes == nullptr || inputTypes == nullptr || nbInputs != TTSR_ST_NUM_INPUTS
            || nbOutputs != TTSR_ST_NUM_OUTPUTS)
        {
            return -1;
        }
        ttsr_st_dtype unused;
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            if (inputTypes[i] != inputTypes[0] || !toKernelDtype(inputTypes[i], unused))
            {
                // Strong typing inserts no casts, so say which graph change fixes it.
                logError("all 5 inputs must be float32 or all float16 (input " + std::to_string(i)
                    + " differs); convert the graph with ttsr's FP16 pass or keep it FP32");
                return -1;
            }
        }
        std::fill(outputTypes, outputTypes + nbOutputs, inputTypes[0]);
        return 0;
    }
    catch (std::exception const&)
    {
        return -1;
    }
}

int32_t TTSRSearchTransferPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /* shapeInputs */, int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs,
    nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    try
    {
        if (inputs == nullptr || outputs == nullptr || nbInputs != TTSR_ST_NUM_INPUTS || nbOutputs != TTSR_ST_NUM_OUTPUTS
            || nbShapeInputs != 0)
        {
            logError("expects 5 tensor inputs, no shape inputs and 4 outputs");
            return -1;
        }
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            if (inputs[i].nbDims != 4)
            {
                logError("input " + std::to_string(i) + " has rank " + std::to_string(inputs[i].nbDims)
                    + ", expected 4 (NCHW); see ttsr/contract.py");
                return -1;
            }
        }
        DimsExprs const& q = inputs[kQ];
        IDimensionExpr const* one = exprBuilder.constant(1);
        IDimensionExpr const* level2 = exprBuilder.constant(TTSR_ST_LEVEL_SCALE_2);
        IDimensionExpr const* level1 = exprBuilder.constant(TTSR_ST_LEVEL_SCALE_1);
        if (one == nullptr || level2 == nullptr || level1 == nullptr)
        {
            return -1;
        }
        auto scaled = [&](int32_t axis, IDimensionExpr const* factor) {
            return exprBuilder.operation(nvinfer1::DimensionOperation::kPROD, *q.d[axis], *factor);
        };
        // s: (N,1,H,W), t3: (N,C3,H,W), t2: (N,C2,2H,2W), t1: (N,C1,4H,4W).
        IDimensionExpr const* const shapes[TTSR_ST_NUM_OUTPUTS][4] = {
            {q.d[0], one, q.d[2], q.d[3]},
            {q.d[0], inputs[kV3].d[1], q.d[2], q.d[3]},
            {q.d[0], inputs[kV2].d[1], scaled(2, level2), scaled(3, level2)},
            {q.d[0], inputs[kV1].d[1], scaled(2, level1), scaled(3, level1)},
        };
        for (int32_t o = 0; o < nbOutputs; ++o)
        {
            outputs[o].nbDims = 4;
            for (int32_t d = 0; d < 4; ++d)
            {
                if (shapes[o][d] == nullptr)
                {
                    return -1;
                }
                outputs[o].d[d] = shapes[o][d];
            }
        }
        return 0;
    }
    catch (std::exception const&)
    {
        return -1;
    }
}

bool TTSRSearchTransferPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || pos < 0 || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    PluginTensorDesc const& desc = inOut[pos].desc;
    ttsr_st_dtype unused;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR || !toKernelDtype(desc.type, unused))
    {
        return false;
    }
    // One dtype for every input and output: the kernels take a single dtype argument.
    return pos == 0 || desc.type == inOut[0].desc.type;
}

size_t TTSRSearchTransferPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /* outputs */, int32_t /* nbOutputs */) const noexcept
{
    try
    {
        ttsr_st_dtype dtype;
        if (inputs == nullptr || nbInputs != TTSR_ST_NUM_INPUTS || !toKernelDtype(inputs[0].desc.type, dtype))
        {
            return 0;
        }
        // One workspace, sized here, serves every runtime shape of the profile; the kernels' size is
        // non-decreasing in every dimension, so the profile's largest shape needs the most.
        Dims const* maxDims[TTSR_ST_NUM_INPUTS];
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            maxDims[i] = &inputs[i].max;
        }
        ttsr_st_shape shape{};
        std::string error;
        if (!readShape(maxDims, shape, error))
        {
            logError("cannot size the workspace: " + error);
            return 0;
        }
        size_t const bytes = ttsr_st_workspace_size(&shape, dtype, mParams.refChunk, mParams.workspaceBudgetBytes());
        int lrTile = 0;
        int refTile = 0;
        ttsr_st_tile_sizes(&shape, dtype, mParams.refChunk, mParams.workspaceBudgetBytes(), &lrTile, &refTile);
        // Logged at build time (INFO), so that a deployment engineer sees what bounds the plugin's memory.
        logInfo("workspace " + std::to_string(bytes) + " bytes for the profile; at the largest shape the kernels score "
            + std::to_string(lrTile) + " of " + std::to_string(shape.h * shape.w) + " LR x "
            + std::to_string(refTile) + " of " + std::to_string(shape.hr * shape.wr) + " Ref positions per GEMM");
        return bytes;
    }
    catch (std::exception const&)
    {
        return 0;
    }
}

char const* TTSRSearchTransferPlugin::getMetadataString() noexcept
{
    try
    {
        mMetadata = std::string(TTSR_ST_ATTR_PATCH_SIZE) + "=" + std::to_string(mParams.patchSize) + " "
            + TTSR_ST_ATTR_FOLD_DIVISOR + "=" + std::to_string(mParams.foldDivisor) + " " + TTSR_ST_ATTR_REF_CHUNK
            + "=" + std::to_string(mParams.refChunk) + " " + TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB + "="
            + std::to_string(mParams.workspaceBudgetMib);
        return mMetadata.c_str();
    }
    catch (std::exception const&)
    {
        return nullptr;
    }
}

int32_t TTSRSearchTransferPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != TTSR_ST_NUM_INPUTS || nbOutputs != TTSR_ST_NUM_OUTPUTS)
    {
        return -1;
    }
    try
    {
        Dims const* dims[TTSR_ST_NUM_INPUTS];
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            dims[i] = &in[i].dims;
        }
        ttsr_st_shape shape{};
        std::string error;
        if (!readShape(dims, shape, error) || !checkInputRelations(dims, shape, error))
        {
            logError(error);
            return -1;
        }
        return 0;
    }
    catch (std::exception const& e)
    {
        logError(std::string("onShapeChange failed: ") + e.what());
        return -1;
    }
}

bool TTSRSearchTransferPlugin::ensureContext() noexcept
{
    if (mContext != nullptr)
    {
        return true;
    }
    int const status = ttsr_st_context_create(&mContext);
    if (status != TTSR_ST_OK)
    {
        mContext = nullptr;
        logError(std::string("cannot create the cuBLAS context: ") + ttsr_st_status_string(status));
        return false;
    }
    return true;
}

int32_t TTSRSearchTransferPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /* outputDesc */,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    try
    {
        ttsr_st_dtype dtype;
        Dims const* dims[TTSR_ST_NUM_INPUTS];
        for (int32_t i = 0; i < TTSR_ST_NUM_INPUTS; ++i)
        {
            dims[i] = &inputDesc[i].dims;
        }
        ttsr_st_shape shape{};
        std::string error;
        if (!toKernelDtype(inputDesc[0].type, dtype))
        {
            logError("enqueue got a tensor type other than float32/float16");
            return -1;
        }
        if (!readShape(dims, shape, error))
        {
            logError(error);
            return -1;
        }
        if (shape.n == 0)
        {
            return 0;
        }
        if (!ensureContext())
        {
            return -1;
        }
        int const status = ttsr_st_enqueue(mContext, &shape, dtype, mParams.refChunk, mParams.workspaceBudgetBytes(), inputs[kQ], inputs[kK],
            inputs[kV3], inputs[kV2], inputs[kV1], outputs[0], outputs[1], outputs[2], outputs[3], workspace,
            static_cast<void*>(stream));
        if (status != TTSR_ST_OK)
        {
            logError(std::string("kernel enqueue failed: ") + ttsr_st_status_string(status));
        }
        return status;
    }
    catch (std::exception const&)
    {
        return -1;
    }
}

IPluginV3* TTSRSearchTransferPlugin::attachToContext(nvinfer1::IPluginResourceContext* /* context */) noexcept
{
    auto* attached = static_cast<TTSRSearchTransferPlugin*>(clone());
    // Created here, outside any CUDA-graph capture; a failure is retried (and reported) at enqueue.
    if (attached != nullptr)
    {
        attached->ensureContext();
    }
    return attached;
}

PluginFieldCollection const* TTSRSearchTransferPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        mSerialFields = {
            PluginField(TTSR_ST_ATTR_PATCH_SIZE, &mParams.patchSize, PluginFieldType::kINT32, 1),
            PluginField(TTSR_ST_ATTR_FOLD_DIVISOR, &mParams.foldDivisor, PluginFieldType::kFLOAT32, 1),
            PluginField(TTSR_ST_ATTR_REF_CHUNK, &mParams.refChunk, PluginFieldType::kINT32, 1),
            PluginField(TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB, &mParams.workspaceBudgetMib, PluginFieldType::kINT32, 1),
        };
        mSerialCollection.nbFields = static_cast<int32_t>(mSerialFields.size());
        mSerialCollection.fields = mSerialFields.data();
        return &mSerialCollection;
    }
    catch (std::exception const& e)
    {
        logError(std::string("getFieldsToSerialize failed: ") + e.what());
        return nullptr;
    }
}

// ---------------------------------------------------------------------------------------------
// TTSRSearchTransferPluginCreator

TTSRSearchTransferPluginCreator::TTSRSearchTransferPluginCreator()
    : mFieldNames{
        PluginField(TTSR_ST_ATTR_PATCH_SIZE, nullptr, PluginFieldType::kINT32, 1),
        PluginField(TTSR_ST_ATTR_FOLD_DIVISOR, nullptr, PluginFieldType::kFLOAT32, 1),
        PluginField(TTSR_ST_ATTR_REF_CHUNK, nullptr, PluginFieldType::kINT32, 1),
        PluginField(TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB, nullptr, PluginFieldType::kINT32, 1),
    }
{
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

nvinfer1::AsciiChar const* TTSRSearchTransferPluginCreator::getPluginName() const noexcept
{
    return TTSR_ST_OP_TYPE;
}

nvinfer1::AsciiChar const* TTSRSearchTransferPluginCreator::getPluginVersion() const noexcept
{
    return TTSR_ST_PLUGIN_VERSION;
}

nvinfer1::AsciiChar const* TTSRSearchTransferPluginCreator::getPluginNamespace() const noexcept
{
    return TTSR_ST_PLUGIN_NAMESPACE;
}

PluginFieldCollection const* TTSRSearchTransferPluginCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

IPluginV3* TTSRSearchTransferPluginCreator::createPlugin(
    nvinfer1::AsciiChar const* name, PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /* phase */) noexcept
{
    try
    {
        SearchTransferParams params{};
        std::string error;
        if (!parseParams(fc, params, error))
        {
            logError(std::string("layer '") + (name != nullptr ? name : "") + "': " + error);
            return nullptr;
        }
        return new TTSRSearchTransferPlugin(params);
    }
    catch (std::exception const& e)
    {
        logError(std::string("createPlugin failed: ") + e.what());
        return nullptr;
    }
}

static_assert(!std::is_abstract<TTSRSearchTransferPlugin>::value, "every pure virtual of IPluginV3One* is overridden");
static_assert(!std::is_abstract<TTSRSearchTransferPluginCreator>::value, "the creator implements IPluginCreatorV3One");

} // namespace ttsr_trt
