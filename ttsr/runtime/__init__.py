"""Inference backends (trt, ort, torch), batching and latency statistics."""
