"""PyTorch TTSR -> ONNX."""

from ttsr.export.onnx_export import ExportError, example_inputs, export_onnx

__all__ = ["ExportError", "example_inputs", "export_onnx"]
