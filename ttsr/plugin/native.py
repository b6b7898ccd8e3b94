"""ctypes bindings of the search-transfer host twin (``build/libttsr_st_cpu.so``).

The twin computes the ``TTSRSearchTransfer`` op of :mod:`ttsr.contract` with the
CUDA kernels' index math and GEMM arguments, in memory linear in the image area.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import numpy as np

from ttsr.contract import OP_TYPE, Shapes

CPU_LIBRARY = "libttsr_st_cpu.so"
PLUGIN_LIBRARY = "libttsr_trt_plugin.so"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
_STATUS_SHAPE = 1


class NativeLibraryError(RuntimeError):
    """The native library is missing or does not load."""


class NativeOpError(RuntimeError):
    """The native op returned an error status."""


class _Shape(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("n", "ck", "h", "w", "hr", "wr", "c3", "c2", "c1")]

    @classmethod
    def of(cls, shapes: Shapes) -> "_Shape":
        return cls(shapes.n, shapes.ck, shapes.h, shapes.w, shapes.hr, shapes.wr,
                   shapes.c3, shapes.c2, shapes.c1)


def library_dir() -> Path:
    """Where the native libraries are: ``$TTSR_PLUGIN_DIR`` or ``<repo>/build``."""
    return Path(os.environ.get("TTSR_PLUGIN_DIR") or _REPO_ROOT / "build")


def default_plugin_library() -> Path:
    """The TensorRT plugin library that ``cmake --build build`` produces."""
    return library_dir() / PLUGIN_LIBRARY


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> ctypes.CDLL:
    if not path.is_file():
        raise NativeLibraryError(
            f"{path} not found: run `bash scripts/setup.sh` (or `cmake -S . -B build && "
            f"cmake --build build`), or point TTSR_PLUGIN_DIR at the folder that holds {CPU_LIBRARY}")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise NativeLibraryError(
            f"cannot load {path} ({exc}): rebuild it with `bash scripts/setup.sh`") from exc
    shape_p = ctypes.POINTER(_Shape)
    lib.ttsr_st_chunk_size.argtypes = [shape_p, ctypes.c_int, ctypes.c_int]
    lib.ttsr_st_chunk_size.restype = ctypes.c_int
    lib.ttsr_st_workspace_size.argtypes = [shape_p, ctypes.c_int, ctypes.c_int]
    lib.ttsr_st_workspace_size.restype = ctypes.c_size_t
    lib.ttsr_st_cpu_workspace_size.argtypes = [shape_p, ctypes.c_int, ctypes.c_int]
    lib.ttsr_st_cpu_workspace_size.restype = ctypes.c_size_t
    pointers: list[type[ctypes.c_void_p]] = [ctypes.c_void_p] * 10  # 5 inputs, 4 outputs, workspace
    lib.ttsr_st_cpu_run.argtypes = [shape_p, ctypes.c_int, ctypes.c_int, *pointers]
    lib.ttsr_st_cpu_run.restype = ctypes.c_int
    lib.ttsr_st_status_string.argtypes = [ctypes.c_int]
    lib.ttsr_st_status_string.restype = ctypes.c_char_p
    return lib


def cpu_library() -> ctypes.CDLL:
    """The loaded host-twin library; :class:`NativeLibraryError` with the fix if it is missing."""
    return _load(library_dir() / CPU_LIBRARY)


def _dtype_code(dtype: np.dtype | type) -> int:
    code = _DTYPE_CODES.get(np.dtype(dtype))
    if code is None:
        raise TypeError(f"{OP_TYPE}: dtype {np.dtype(dtype)} is not supported, use float32 or float16")
    return code


def _check_ref_chunk(ref_chunk: int) -> int:
    if int(ref_chunk) != ref_chunk or ref_chunk < 0:
        raise ValueError(f"{OP_TYPE}: ref_chunk must be an integer >= 0 (0 = automatic), got {ref_chunk!r}")
    return int(ref_chunk)


def chunk_size(shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0) -> int:
    """Ref positions scored per pass (the same number the CUDA kernels use)."""
    shape = _Shape.of(shapes)
    chunk = cpu_library().ttsr_st_chunk_size(ctypes.byref(shape), _dtype_code(dtype),
                                             _check_ref_chunk(ref_chunk))
    if chunk <= 0:
        raise ValueError(f"{OP_TYPE}: sizes {shapes} are not supported (see ttsr/plugin/native.py)")
    return int(chunk)


def workspace_size(shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0) -> int:
    """Workspace bytes of one call (host twin and CUDA kernels alike); independent of the batch."""
    shape = _Shape.of(shapes)
    size = cpu_library().ttsr_st_workspace_size(ctypes.byref(shape), _dtype_code(dtype),
                                                _check_ref_chunk(ref_chunk))
    if size == 0:
        raise ValueError(f"{OP_TYPE}: sizes {shapes} are not supported (see ttsr/plugin/native.py)")
    return int(size)


def search_transfer_cpu(q: np.ndarray, k: np.ndarray, v3: np.ndarray, v2: np.ndarray,
                        v1: np.ndarray, ref_chunk: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the op on the host twin: ``(s, t3, t2, t1)``, in the inputs' dtype (float32 or float16).

    Its GEMM uses ``$TTSR_ST_CPU_THREADS`` threads (default: every hardware thread);
    the results do not depend on the thread count.
    """
    inputs = [np.ascontiguousarray(a) for a in (q, k, v3, v2, v1)]
    dtypes = {a.dtype for a in inputs}
    if len(dtypes) != 1:
        raise TypeError(f"{OP_TYPE}: inputs have mixed dtypes {sorted(map(str, dtypes))}; "
                        "cast all five to float32 or all to float16")
    dtype = dtypes.pop()
    code = _dtype_code(dtype)
    for name, a in zip(("q", "k", "v3", "v2", "v1"), inputs):
        if a.ndim != 4:
            raise ValueError(f"{OP_TYPE}: input {name!r} must be 4-D NCHW, got shape {a.shape}")
    shapes = Shapes.from_inputs(*inputs)
    ref_chunk = _check_ref_chunk(ref_chunk)
    lib = cpu_library()
    shape = _Shape.of(shapes)
    size = lib.ttsr_st_cpu_workspace_size(ctypes.byref(shape), code, ref_chunk)
    if size == 0:
        raise ValueError(f"{OP_TYPE}: sizes {shapes} are not supported (see ttsr/plugin/native.py)")
    workspace = np.empty(size, dtype=np.uint8)
    outputs = tuple(np.empty(s, dtype=dtype) for s in shapes.outputs())
    status = lib.ttsr_st_cpu_run(ctypes.byref(shape), code, ref_chunk,
                                 *(a.ctypes.data for a in inputs),
                                 *(o.ctypes.data for o in outputs), workspace.ctypes.data)
    if status != 0:
        message = lib.ttsr_st_status_string(status).decode()
        error = ValueError if status == _STATUS_SHAPE else NativeOpError
        raise error(f"{OP_TYPE} host twin failed: {message}")
    return outputs  # type: ignore[return-value]
