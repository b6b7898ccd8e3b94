// TensorRT IPluginV3 wrapper of the TTSRSearchTransfer kernels (ttsr/contract.py).
//
// The plugin only negotiates formats and shapes and forwards to the C ABI of
// plugins/search_transfer/ttsr_st_api.h; all numerics live in the kernels.
// Only interface (virtual or header-inline) TensorRT calls are made, so the
// library has no undefined TensorRT symbols and loads into TensorRT 10 and 11.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "ttsr_st_api.h"

namespace ttsr_trt
{

//! The plugin fields (names in contract.h): the op's attributes, then the kernels' workspace
//! budget (MiB one tile's Gram block may take; 0 = the kernels' default), which bounds memory only.
struct SearchTransferParams
{
    int32_t patchSize;
    float foldDivisor;
    int32_t refChunk;
    int32_t workspaceBudgetMib;

    size_t workspaceBudgetBytes() const
    {
        return static_cast<size_t>(workspaceBudgetMib) << 20;
    }
};

class TTSRSearchTransferPlugin final : public nvinfer1::IPluginV3,
                                       public nvinfer1::IPluginV3OneCore,
                                       public nvinfer1::IPluginV3OneBuild,
                                       public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit TTSRSearchTransferPlugin(SearchTransferParams const& params);
    //! Copies the attributes only: every instance owns its own cuBLAS context.
    TTSRSearchTransferPlugin(TTSRSearchTransferPlugin const& other);
    TTSRSearchTransferPlugin& operator=(TTSRSearchTransferPlugin const&) = delete;
    ~TTSRSearchTransferPlugin() override;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    nvinfer1::AsciiChar const* getPluginName() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    char const* getMetadataString() noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    //! Creates the cuBLAS-owning kernel context on first need; false (logged) on failure.
    bool ensureContext() noexcept;

    SearchTransferParams mParams;
    ttsr_st_context* mContext{nullptr};
    std::vector<nvinfer1::PluginField> mSerialFields;
    nvinfer1::PluginFieldCollection mSerialCollection{};
    std::string mMetadata;
};

class TTSRSearchTransferPluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    TTSRSearchTransferPluginCreator();

    nvinfer1::AsciiChar const* getPluginName() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(nvinfer1::AsciiChar const* name, nvinfer1::PluginFieldCollection const* fc,
        nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFieldNames;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

} // namespace ttsr_trt
