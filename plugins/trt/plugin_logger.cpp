#include "plugin_logger.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdio>

#include "contract.h"

namespace ttsr_trt
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

//! getInferLibVersion() of the library that implements `object` (TensorRT's own finder), or -1.
//! Looked up at run time so that the plugin keeps no undefined TensorRT symbol.
int32_t versionOfImplementingLibrary(void const* object)
{
    Dl_info info{};
    void const* vtable = *static_cast<void const* const*>(object);
    if (dladdr(vtable, &info) == 0 || info.dli_fname == nullptr)
    {
        return -1;
    }
    void* library = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (library == nullptr)
    {
        return -1;
    }
    auto* getVersion = reinterpret_cast<int32_t (*)()>(dlsym(library, "getInferLibVersion"));
    int32_t const version = getVersion != nullptr ? getVersion() : -1;
    dlclose(library);
    return version;
}
} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    if (finder == nullptr)
    {
        return;
    }
    // ILoggerFinder and ILogger have other vtables in TensorRT 11 than in 10 (they became
    // IVersionedInterface), so calling them across majors would call the wrong functions.
    // Then log to stderr instead; the plugin interfaces themselves are the same in both.
    int32_t const version = versionOfImplementingLibrary(finder);
    if (version >= 0 && version / 10000 != NV_TENSORRT_MAJOR)
    {
        std::fprintf(stderr,
            "%s: libttsr_trt_plugin.so was built with TensorRT %d headers but runs in TensorRT %d.%d.%d; it logs to "
            "stderr (rebuild with -DTensorRT_ROOT=<that TensorRT> to log through TensorRT)\n",
            TTSR_ST_OP_TYPE, NV_TENSORRT_MAJOR, version / 10000, version / 100 % 100, version % 100);
        return;
    }
    // TensorRT calls this once per registry that loads the library (builder and runtime may
    // both do); any finder answers with the logger of the calling engine, so the first is kept.
    nvinfer1::ILoggerFinder* expected = nullptr;
    gLoggerFinder.compare_exchange_strong(expected, finder);
}

void log(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept
{
    try
    {
        std::string const line = std::string(TTSR_ST_OP_TYPE) + ": " + message;
        nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
        // findLogger must run on the thread of the plugin call, hence no caching of the logger.
        nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
        if (logger != nullptr)
        {
            logger->log(severity, line.c_str());
        }
        else if (severity <= nvinfer1::ILogger::Severity::kERROR)
        {
            std::fprintf(stderr, "%s\n", line.c_str());
        }
    }
    catch (...)
    {
        // Out of memory while formatting a log line: nothing sensible is left to do.
    }
}

} // namespace ttsr_trt
