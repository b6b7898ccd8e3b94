"""Reading ONNX files with one-line errors, for every module that takes a graph path."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from ttsr.errors import first_line


def load_onnx(path: str | os.PathLike[str], error: type[Exception], fix: str) -> onnx.ModelProto:
    """The model in ``path``; a missing or unreadable file raises ``error`` with one line ending in ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such ONNX file; {fix}")
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf raises DecodeError, onnx raises its own
        raise error(f"{path}: not a readable ONNX model ({first_line(exc)}); {fix}") from None
