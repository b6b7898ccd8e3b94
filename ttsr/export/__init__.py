"""PyTorch TTSR -> ONNX."""

from ttsr.export.onnx_export import ExportError, check_example_size, example_inputs, export_onnx

__all__ = ["ExportError", "check_example_size", "example_inputs", "export_onnx"]
