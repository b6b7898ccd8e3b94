"""ONNX graph surgery: the search-transfer rewrite and the FP16 pass."""

from ttsr.surgery.fp16 import FP16Error, convert_fp16
from ttsr.surgery.rewrite import RewriteError, RewriteReport, is_rewritten, rewrite_search_transfer

__all__ = ["FP16Error", "RewriteError", "RewriteReport", "convert_fp16", "is_rewritten",
           "rewrite_search_transfer"]
