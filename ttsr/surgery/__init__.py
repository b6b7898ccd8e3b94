"""ONNX graph surgery: the search-transfer rewrite and the FP16 pass."""

from ttsr.surgery.rewrite import RewriteError, RewriteReport, is_rewritten, rewrite_search_transfer

__all__ = ["RewriteError", "RewriteReport", "is_rewritten", "rewrite_search_transfer"]
