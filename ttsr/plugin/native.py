"""ctypes bindings of the search-transfer libraries: the host twin (``libttsr_st_cpu.so``)
and the CUDA kernels (``libttsr_st_cuda.so``).

The twin computes the ``TTSRSearchTransfer`` op of :mod:`ttsr.contract` with the
CUDA kernels' index math and GEMM arguments, in memory linear in the image area.
Both libraries load on first use only: importing this module needs neither, and the
CUDA one is never loaded on a machine that only runs the twin.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np

from ttsr.contract import OP_TYPE, Shapes

CPU_LIBRARY = "libttsr_st_cpu.so"
CUDA_LIBRARY = "libttsr_st_cuda.so"
PLUGIN_LIBRARY = "libttsr_trt_plugin.so"
_REPO_ROOT = Path(__file__).resolve().parents[2]
# ttsr_st_api.h: the budget (bytes of one tile's Gram block) a budget of 0 stands for.
DEVICE_DEFAULT_BUDGET = 1 << 30
CPU_DEFAULT_BUDGET = 16 << 20
# ttsr_st_cuda_api.h: TTSR_ST_RELEVANCE_AUTO, _GEMM, _FUSED, in code order.
RELEVANCE_PATHS = ("auto", "gemm", "fused", "gram")
_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
_STATUS_SHAPE = 1
_INT = ctypes.c_int
_SIZE = ctypes.c_size_t
_POINTER = ctypes.c_void_p
_INT_P = ctypes.POINTER(ctypes.c_int)
_CPU_FIX = (f"run `bash scripts/setup.sh` (or `cmake -S . -B build && cmake --build build`), "
            f"or point TTSR_PLUGIN_DIR at the folder that holds {CPU_LIBRARY}")
_CUDA_FIX = ("build it with `cmake -S . -B build && cmake --build build --target ttsr_st_cuda` "
             "(needs nvcc and cuBLAS) or `bash scripts/gpu_check.sh`")


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


_SHAPE_P = ctypes.POINTER(_Shape)


# The host twin's stages, timed per call: padded features and patch norms, Gram GEMMs,
# patch sums + argmax, texture transfer.
TWIN_STAGES = ("prepare", "gemm", "argmax", "transfer")


class _CpuStats(ctypes.Structure):
    _fields_ = [(f"{stage}_s", ctypes.c_double) for stage in TWIN_STAGES]


def library_dir() -> Path:
    """Where the native libraries are: ``$TTSR_PLUGIN_DIR`` or ``<repo>/build``."""
    return Path(os.environ.get("TTSR_PLUGIN_DIR") or _REPO_ROOT / "build")


def default_plugin_library() -> Path:
    """The TensorRT plugin library that ``cmake --build build`` produces."""
    return library_dir() / PLUGIN_LIBRARY


def _declare(lib: ctypes.CDLL, name: str, argtypes: list, restype: type | None) -> None:
    function = getattr(lib, name)
    function.argtypes, function.restype = argtypes, restype


def _open(path: Path, fix: str) -> ctypes.CDLL:
    """Loads ``path`` and declares the planning functions both libraries export."""
    if not path.is_file():
        raise NativeLibraryError(f"{path} not found: {fix}")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise NativeLibraryError(f"cannot load {path} ({exc}): {fix}") from exc
    _declare(lib, "ttsr_st_tile_sizes", [_SHAPE_P, _INT, _INT, _SIZE, _INT_P, _INT_P], _INT)
    _declare(lib, "ttsr_st_path_tile_sizes", [_SHAPE_P, _INT, _INT, _SIZE, _INT, _INT_P, _INT_P], _INT)
    _declare(lib, "ttsr_st_workspace_size", [_SHAPE_P, _INT, _INT, _SIZE], _SIZE)
    _declare(lib, "ttsr_st_path_workspace_size", [_SHAPE_P, _INT, _INT, _SIZE, _INT], _SIZE)
    _declare(lib, "ttsr_st_status_string", [_INT], ctypes.c_char_p)
    return lib


@functools.lru_cache(maxsize=None)
def _load_cpu(path: Path) -> ctypes.CDLL:
    lib = _open(path, _CPU_FIX)
    _declare(lib, "ttsr_st_cpu_workspace_size", [_SHAPE_P, _INT, _INT, _SIZE], _SIZE)
    # shape, dtype, ref_chunk, budget, threads, then 5 inputs, 4 outputs, workspace, stats
    _declare(lib, "ttsr_st_cpu_run", [_SHAPE_P, _INT, _INT, _SIZE, _INT, *[_POINTER] * 10,
                                      ctypes.POINTER(_CpuStats)], _INT)
    return lib


@functools.lru_cache(maxsize=None)
def _load_cuda(path: Path) -> ctypes.CDLL:
    lib = _open(path, _CUDA_FIX)
    _declare(lib, "ttsr_st_context_create", [ctypes.POINTER(_POINTER)], _INT)
    _declare(lib, "ttsr_st_context_destroy", [_POINTER], None)
    _declare(lib, "ttsr_st_context_set_relevance", [_POINTER, _INT], _INT)
    _declare(lib, "ttsr_st_context_relevance", [_POINTER, _SHAPE_P, _INT], _INT)
    # context, shape, dtype, ref_chunk, budget, then 5 inputs, 4 outputs, workspace, stream
    _declare(lib, "ttsr_st_enqueue", [_POINTER, _SHAPE_P, _INT, _INT, _SIZE, *[_POINTER] * 11], _INT)
    return lib


def cpu_library() -> ctypes.CDLL:
    """The loaded host-twin library; :class:`NativeLibraryError` with the fix if it is missing."""
    return _load_cpu(library_dir() / CPU_LIBRARY)


def cuda_library(path: Path | None = None) -> ctypes.CDLL:
    """The loaded CUDA-kernel library (default: ``library_dir()/libttsr_st_cuda.so``); loading
    needs the CUDA runtime and cuBLAS libraries but no GPU."""
    return _load_cuda(Path(path) if path is not None else library_dir() / CUDA_LIBRARY)


def _dtype_code(dtype: np.dtype | type) -> int:
    code = _DTYPE_CODES.get(np.dtype(dtype))
    if code is None:
        raise TypeError(f"{OP_TYPE}: dtype {np.dtype(dtype)} is not supported, use float32 or float16")
    return code


def _check_ref_chunk(ref_chunk: int) -> int:
    if int(ref_chunk) != ref_chunk or ref_chunk < 0:
        raise ValueError(f"{OP_TYPE}: ref_chunk must be an integer >= 0 (0 = automatic), got {ref_chunk!r}")
    return int(ref_chunk)


def _check_budget(budget: int) -> int:
    if int(budget) != budget or budget < 0:
        raise ValueError(f"{OP_TYPE}: the workspace budget must be an integer number of bytes >= 0 "
                         f"(0 = the library's default), got {budget!r}")
    return int(budget)


def _unsupported(shapes: Shapes) -> ValueError:
    return ValueError(f"{OP_TYPE}: sizes {shapes} are not supported (see ttsr/plugin/native.py)")


def _check_status(lib: ctypes.CDLL, status: int, what: str) -> None:
    if status != 0:
        error = ValueError if status == _STATUS_SHAPE else NativeOpError
        raise error(f"{what}: {lib.ttsr_st_status_string(status).decode()}")


def _path_code(relevance: str) -> int:
    if relevance not in RELEVANCE_PATHS:
        raise ValueError(f"{OP_TYPE}: relevance must be one of {', '.join(RELEVANCE_PATHS)}, got {relevance!r}")
    return RELEVANCE_PATHS.index(relevance)


def _tile_sizes(lib: ctypes.CDLL, shapes: Shapes, dtype: np.dtype | type, ref_chunk: int,
                budget: int, relevance: str) -> tuple[int, int]:
    shape = _Shape.of(shapes)
    lr_tile, ref_tile = ctypes.c_int(), ctypes.c_int()
    status = lib.ttsr_st_path_tile_sizes(ctypes.byref(shape), _dtype_code(dtype), _check_ref_chunk(ref_chunk),
                                         _check_budget(budget), _path_code(relevance), ctypes.byref(lr_tile),
                                         ctypes.byref(ref_tile))
    if status != 0:
        raise _unsupported(shapes)
    return lr_tile.value, ref_tile.value


def _workspace_size(function: Callable[..., int], shapes: Shapes, dtype: np.dtype | type, ref_chunk: int,
                    budget: int) -> int:
    shape = _Shape.of(shapes)
    size = function(ctypes.byref(shape), _dtype_code(dtype), _check_ref_chunk(ref_chunk), _check_budget(budget))
    if size == 0:
        raise _unsupported(shapes)
    return int(size)


def tile_sizes(shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
               budget: int = 0, relevance: str = "auto") -> tuple[int, int]:
    """(LR, Ref) positions per GEMM on the CUDA ``relevance`` path for a block of at most ``budget``
    bytes (0: the device default, 1 GiB). auto / gram: Gram tiles (or one grid row a side), as the
    host twin tiles; gemm / fused: patch tiles."""
    return _tile_sizes(cpu_library(), shapes, dtype, ref_chunk, budget, relevance)


def chunk_size(shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
               budget: int = 0) -> int:
    """Ref positions per Gram GEMM (the same number the CUDA kernels' default path uses)."""
    return tile_sizes(shapes, dtype, ref_chunk, budget)[1]


def workspace_size(shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
                   budget: int = 0, relevance: str = "auto") -> int:
    """Device workspace bytes of one call of the CUDA kernels on the ``relevance`` path (auto: the
    default, what the TensorRT plugin runs); independent of the batch."""
    return _path_workspace_size(cpu_library(), shapes, dtype, ref_chunk, budget, relevance)


def _path_workspace_size(lib: ctypes.CDLL, shapes: Shapes, dtype: np.dtype | type, ref_chunk: int, budget: int,
                         relevance: str) -> int:
    path = _path_code(relevance)
    return _workspace_size(lambda *args: lib.ttsr_st_path_workspace_size(*args, path), shapes, dtype, ref_chunk,
                           budget)


def cpu_workspace_size(shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
                       budget: int = 0) -> int:
    """Host workspace bytes of one call of the host twin (0 budget: the twin's default)."""
    return _workspace_size(cpu_library().ttsr_st_cpu_workspace_size, shapes, dtype, ref_chunk, budget)


def search_transfer_cpu(q: np.ndarray, k: np.ndarray, v3: np.ndarray, v2: np.ndarray,
                        v1: np.ndarray, ref_chunk: int = 0, budget: int = 0, threads: int = 0,
                        stage_seconds: dict[str, float] | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the op on the host twin: ``(s, t3, t2, t1)``, in the inputs' dtype (float32 or float16).

    ``budget``: bytes of one tile's Gram block (0: the twin's default, sized for CPU caches).
    ``threads``: worker threads (0: ``$TTSR_ST_CPU_THREADS``, else every hardware thread).
    The results do not depend on ``ref_chunk``, ``budget`` or ``threads``.
    ``stage_seconds``: if given, each stage's time (:data:`TWIN_STAGES`) is added to it.
    """
    if int(threads) != threads or threads < 0:
        raise ValueError(f"{OP_TYPE}: threads must be an integer >= 0 (0 = default), got {threads!r}")
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
    lib = cpu_library()
    workspace = np.empty(cpu_workspace_size(shapes, dtype, ref_chunk, budget), dtype=np.uint8)
    shape = _Shape.of(shapes)
    outputs = tuple(np.empty(s, dtype=dtype) for s in shapes.outputs())
    stats = _CpuStats()
    status = lib.ttsr_st_cpu_run(ctypes.byref(shape), code, int(ref_chunk), int(budget), int(threads),
                                 *(a.ctypes.data for a in inputs),
                                 *(o.ctypes.data for o in outputs), workspace.ctypes.data, ctypes.byref(stats))
    _check_status(lib, status, f"{OP_TYPE} host twin failed")
    if stage_seconds is not None:
        for stage in TWIN_STAGES:
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + getattr(stats, f"{stage}_s")
    return outputs  # type: ignore[return-value]


class CudaSearchTransfer:
    """The CUDA kernels of ``libttsr_st_cuda.so`` on raw device pointers (any CUDA array
    library can supply them: ``tensor.data_ptr()``, ``cupy_array.data.ptr``, ...).

    Owns one cuBLAS context, created on first :meth:`enqueue` (or :meth:`open`), which
    needs a GPU; planning (:meth:`chunk_size`, :meth:`workspace_size`) does not.
    One instance per thread that enqueues.

    ``relevance`` picks how relevance is scored (ttsr_st_cuda_api.h): ``"gram"`` (a cuBLASLt GEMM
    of the pixel features per tile and a kernel summing each patch's 9 Gram entries into the
    argmax; FP32 and FP16), ``"gemm"`` (cuBLASLt GEMM of normalised patches per tile, then an
    argmax pass; FP32 and FP16), ``"fused"`` (FP16: one tensor-core kernel over the normalised
    patches that keeps the argmax in registers; FP32 falls back to gemm), or ``"auto"`` (the
    library's rule: gram).
    """

    def __init__(self, library: Path | None = None, relevance: str = "auto"):
        self._relevance = _path_code(relevance)
        self._lib = cuda_library(library)
        self._context = ctypes.c_void_p()

    def open(self) -> None:
        """Creates the cuBLAS context; :class:`NativeOpError` without a usable GPU."""
        if not self._context:
            status = self._lib.ttsr_st_context_create(ctypes.byref(self._context))
            _check_status(self._lib, status, "ttsr_st_context_create")
            status = self._lib.ttsr_st_context_set_relevance(self._context, self._relevance)
            _check_status(self._lib, status, "ttsr_st_context_set_relevance")

    def relevance_path(self, shapes: Shapes, dtype: np.dtype | type) -> str:
        """``"gram"``, ``"gemm"`` or ``"fused"``: the path :meth:`enqueue` takes for these sizes on
        this GPU (opens the context, so it needs a GPU)."""
        self.open()
        shape = _Shape.of(shapes)
        code = self._lib.ttsr_st_context_relevance(self._context, ctypes.byref(shape), _dtype_code(dtype))
        if code == 0:
            raise _unsupported(shapes)
        return RELEVANCE_PATHS[code]

    def close(self) -> None:
        if self._context:
            self._lib.ttsr_st_context_destroy(self._context)
            self._context = ctypes.c_void_p()

    def __enter__(self) -> "CudaSearchTransfer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def tile_sizes(self, shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
                   budget: int = 0) -> tuple[int, int]:
        """(LR, Ref) positions per GEMM on the path this op was opened with (ttsr_st_cuda_api.h)."""
        return _tile_sizes(self._lib, shapes, dtype, ref_chunk, budget, RELEVANCE_PATHS[self._relevance])

    def chunk_size(self, shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
                   budget: int = 0) -> int:
        """Ref positions per GEMM on this op's path (:meth:`tile_sizes`)."""
        return self.tile_sizes(shapes, dtype, ref_chunk, budget)[1]

    def workspace_size(self, shapes: Shapes, dtype: np.dtype | type = np.float32, ref_chunk: int = 0,
                       budget: int = 0) -> int:
        """Device workspace bytes for :meth:`enqueue` with the same ``ref_chunk`` and ``budget`` on
        the path this op was opened with."""
        return _path_workspace_size(self._lib, shapes, dtype, ref_chunk, budget, RELEVANCE_PATHS[self._relevance])

    def enqueue(self, shapes: Shapes, dtype: np.dtype | type, ref_chunk: int, inputs: Sequence[int],
                outputs: Sequence[int], workspace: int, stream: int = 0, budget: int = 0) -> None:
        """Enqueues the op on ``stream`` (0: the legacy default stream): ``inputs`` are the device
        addresses of q, k, v3, v2, v1, ``outputs`` those of s, t3, t2, t1, ``workspace`` holds
        :meth:`workspace_size` bytes (for the same ``budget``: bytes of one tile's Gram block, 0 = 1 GiB).
        ValueError for unsupported sizes, NativeOpError on failure."""
        if len(inputs) != 5 or len(outputs) != 4:
            raise ValueError(f"{OP_TYPE}: enqueue takes 5 input and 4 output addresses, "
                             f"got {len(inputs)} and {len(outputs)}")
        self.open()
        shape = _Shape.of(shapes)
        status = self._lib.ttsr_st_enqueue(self._context, ctypes.byref(shape), _dtype_code(dtype),
                                           _check_ref_chunk(ref_chunk), _check_budget(budget), *inputs, *outputs,
                                           workspace, stream)
        _check_status(self._lib, status, "ttsr_st_enqueue")
