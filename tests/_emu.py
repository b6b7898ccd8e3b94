"""Loads libttsr_st_emu.so (the CUDA kernels' host emulations) with the signatures a test declares."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from ttsr.plugin import native

KEY = ctypes.c_ulonglong
# Key helpers every emulation test decodes with (argmax_key.h).
KEY_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "ttsr_st_emu_initial_key": ([], KEY),
    "ttsr_st_emu_match_key": ([ctypes.c_float, ctypes.c_int], KEY),
    "ttsr_st_emu_key_value": ([KEY], ctypes.c_float),
    "ttsr_st_emu_key_index": ([KEY], ctypes.c_int),
}


def emu_library(signatures: dict[str, tuple[list[Any], Any]]) -> ctypes.CDLL:
    """The emulation library with ``signatures`` (name -> (argtypes, restype)) and the key helpers."""
    path = native.library_dir() / "libttsr_st_emu.so"
    if not path.is_file():
        pytest.fail(f"{path} missing: run `bash scripts/setup.sh`")
    lib = ctypes.CDLL(str(path))
    for name, (argtypes, restype) in {**KEY_SIGNATURES, **signatures}.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib
