// Logging through the ILogger of the TensorRT engine that calls the plugin.
#pragma once

#include <NvInferRuntime.h>

#include <string>

namespace ttsr_trt
{

//! Keeps the finder TensorRT hands to the library through the exported setLoggerFinder.
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Logs "TTSRSearchTransfer: <message>"; errors go to stderr when no TensorRT logger is known
//! (a caller that created the plugin through getCreators directly) so that they are never lost.
void log(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept;

inline void logError(std::string const& message) noexcept
{
    log(nvinfer1::ILogger::Severity::kERROR, message);
}

inline void logInfo(std::string const& message) noexcept
{
    log(nvinfer1::ILogger::Severity::kINFO, message);
}

} // namespace ttsr_trt
