// The two entry points TensorRT looks up in a dynamically loaded plugin library
// (IPluginRegistry::loadLibrary, Python get_plugin_registry().load_library,
// trtexec --dynamicPlugins). Nothing else is exported (see exports.map).
#include <NvInferRuntime.h>

#include "plugin_logger.h"
#include "ttsr_search_transfer_plugin.h"

#define TTSR_TRT_EXPORT __attribute__((visibility("default")))

extern "C" TTSR_TRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    ttsr_trt::setLoggerFinder(finder);
}

extern "C" TTSR_TRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static ttsr_trt::TTSRSearchTransferPluginCreator creator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}
