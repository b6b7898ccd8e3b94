#include "plugin_logger.h"

#include <atomic>
#include <cstdio>

#include "contract.h"

namespace ttsr_trt
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};
} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
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
