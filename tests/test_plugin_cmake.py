"""What the CMake build in build/ (made by scripts/setup.sh) produced for the search-transfer op."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

from ttsr.contract import Shapes
from ttsr.plugin import native

REPO_ROOT = Path(__file__).resolve().parents[1]
ABI_FUNCTIONS = ("ttsr_st_context_create", "ttsr_st_context_destroy", "ttsr_st_tile_sizes",
                 "ttsr_st_path_tile_sizes", "ttsr_st_path_workspace_size",
                 "ttsr_st_workspace_size", "ttsr_st_enqueue", "ttsr_st_status_string",
                 "ttsr_st_context_set_relevance", "ttsr_st_context_relevance")


def cmake_cache() -> dict[str, str]:
    path = native.library_dir() / "CMakeCache.txt"
    if not path.is_file():
        pytest.fail(f"{path} missing: run `bash scripts/setup.sh` first")
    return dict(re.findall(r"^(\w+):\w+=(.*)$", path.read_text(), flags=re.MULTILINE))


def cuda_library() -> Path:
    cache = cmake_cache()
    found = [cache.get(key, "") for key in ("CMAKE_CUDA_COMPILER", "CUBLAS_LIBRARY")]
    if not all(value and not value.endswith("NOTFOUND") for value in found):
        pytest.skip("this build has no nvcc or no cuBLAS, so no CUDA kernels to check")
    path = native.library_dir() / "libttsr_st_cuda.so"
    assert path.is_file(), f"nvcc and cuBLAS were found but {path} was not built"
    return path


def test_default_cuda_architectures_are_set_before_project() -> None:
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    setting = re.search(r'set\(CMAKE_CUDA_ARCHITECTURES "([0-9;]+)"', text)
    assert setting is not None and setting.group(1) == "75;80;86;89;90"
    assert setting.start() < text.index("\nproject(")


def test_cuda_library_holds_every_configured_architecture() -> None:
    binary = cuda_library().read_bytes()
    architectures = cmake_cache()["CMAKE_CUDA_ARCHITECTURES"].split(";")
    for arch in architectures:
        number = re.match(r"\d+", arch)
        assert number is not None, arch
        assert f"-arch sm_{number.group(0)} ".encode() in binary, f"no sm_{number.group(0)} code"


def test_cuda_library_plans_like_the_host_twin() -> None:
    lib = ctypes.CDLL(str(cuda_library()))
    for name in ABI_FUNCTIONS:
        assert hasattr(lib, name), name
    lib.ttsr_st_workspace_size.restype = ctypes.c_size_t
    lib.ttsr_st_workspace_size.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_size_t]
    lib.ttsr_st_tile_sizes.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_size_t,
                                       ctypes.c_void_p, ctypes.c_void_p]
    lib.ttsr_st_status_string.restype = ctypes.c_char_p
    for shapes in (Shapes(1, 256, 40, 40, 40, 40, 256, 128, 64), Shapes(2, 8, 5, 7, 9, 3, 5, 3, 2)):
        shape = native._Shape.of(shapes)
        for dtype, code in ((np.float32, 0), (np.float16, 1)):
            for ref_chunk, budget in ((0, 0), (3, 0), (0, 1 << 16)):
                assert lib.ttsr_st_workspace_size(ctypes.byref(shape), code, ref_chunk, budget) == \
                    native.workspace_size(shapes, dtype, ref_chunk, budget)
                lr_tile, ref_tile = ctypes.c_int(), ctypes.c_int()
                assert lib.ttsr_st_tile_sizes(ctypes.byref(shape), code, ref_chunk, budget,
                                              ctypes.byref(lr_tile), ctypes.byref(ref_tile)) == 0
                assert (lr_tile.value, ref_tile.value) == native.tile_sizes(shapes, dtype, ref_chunk, budget)
    assert lib.ttsr_st_status_string(5) == b"cuBLAS error"
