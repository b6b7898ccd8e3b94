"""The C++ side of the contract: contract.h and the ABI agree with ttsr/contract.py,
chunk and workspace sizes stay linear in the image area, bad calls fail clearly."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from ttsr import contract
from ttsr.contract import Shapes
from ttsr.plugin import native

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "plugins" / "search_transfer"
CHUNK_BUDGET = 64 << 20  # plan.h: one pass's kn and rel blocks together


def header_macros() -> dict[str, str]:
    text = (PLUGIN_SRC / "contract.h").read_text()
    return dict(re.findall(r"^#define\s+(TTSR_ST_\w+)\s+(.+?)\s*$", text, flags=re.MULTILINE))


def c_string(literal: str) -> str:
    assert literal.startswith('"') and literal.endswith('"'), literal
    return literal[1:-1]


def c_string_list(literal: str) -> tuple[str, ...]:
    return tuple(re.findall(r'"([^"]*)"', literal))


def test_contract_header_mirrors_python_contract() -> None:
    m = header_macros()
    assert c_string(m["TTSR_ST_OP_TYPE"]) == contract.OP_TYPE
    assert c_string(m["TTSR_ST_DOMAIN"]) == contract.DOMAIN
    assert c_string(m["TTSR_ST_PLUGIN_VERSION"]) == contract.PLUGIN_VERSION
    assert c_string(m["TTSR_ST_PLUGIN_NAMESPACE"]) == contract.PLUGIN_NAMESPACE
    assert int(m["TTSR_ST_PATCH_SIZE"]) == contract.PATCH_SIZE
    scales = tuple(int(m[f"TTSR_ST_LEVEL_SCALE_{level}"]) for level in (3, 2, 1))
    assert scales == contract.LEVEL_SCALES
    assert float(m["TTSR_ST_FOLD_DIVISOR"].rstrip("f")) == contract.FOLD_DIVISOR
    assert float(m["TTSR_ST_NORM_EPS"].rstrip("f")) == contract.NORM_EPS
    attributes = {c_string(m[f"TTSR_ST_ATTR_{name.upper()}"]) for name in contract.ATTRIBUTES}
    assert attributes == set(contract.ATTRIBUTES)
    assert int(m["TTSR_ST_DEFAULT_REF_CHUNK"]) == contract.ATTRIBUTES["ref_chunk"]
    assert c_string_list(m["TTSR_ST_INPUT_NAMES"]) == contract.INPUT_NAMES
    assert c_string_list(m["TTSR_ST_OUTPUT_NAMES"]) == contract.OUTPUT_NAMES
    assert int(m["TTSR_ST_NUM_INPUTS"]) == len(contract.INPUT_NAMES)
    assert int(m["TTSR_ST_NUM_OUTPUTS"]) == len(contract.OUTPUT_NAMES)


def test_abi_shape_struct_follows_contract_shapes() -> None:
    text = (PLUGIN_SRC / "ttsr_st_api.h").read_text()
    body = re.search(r"typedef struct \{ int ([^;]+); \} ttsr_st_shape;", text)
    assert body is not None
    c_fields = tuple(name.strip() for name in body.group(1).split(","))
    assert c_fields == tuple(f.name for f in dataclasses.fields(Shapes))
    assert tuple(name for name, _ in native._Shape._fields_) == c_fields


def square(side: int, ref_side: int | None = None, n: int = 1) -> Shapes:
    ref = side if ref_side is None else ref_side
    return Shapes(n, 256, side, side, ref, ref, 256, 128, 64)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_chunk_bounds_the_relevance_block(dtype: type) -> None:
    for side in (10, 40, 120, 300, 1200):
        shapes = square(side)
        chunk = native.chunk_size(shapes, dtype)
        positions = side * side
        # Bytes one Ref position takes in a pass: its normalised patch and its relevance row.
        per_position = 9 * shapes.ck * np.dtype(dtype).itemsize + 4 * positions
        assert 1 <= chunk <= positions
        assert chunk * per_position <= CHUNK_BUDGET or chunk == 1
        assert chunk * positions * 4 <= CHUNK_BUDGET or chunk == 1
        # Small grids take the whole Ref in one pass; big ones as much as the budget allows.
        assert chunk == min(positions, max(1, CHUNK_BUDGET // per_position))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("ref_chunk", [0, 7, 5000])
def test_workspace_never_shrinks_as_a_size_grows(dtype: type, ref_chunk: int) -> None:
    # A profile's workspace is sized at its largest shape, so no size may need less when it grows.
    # Adjacent LR sizes (60, 61) are where a rule that shrinks the chunk with the LR area breaks.
    lr, ref, channels = (1, 2, 40, 60, 61, 95), (1, 23, 64, 65, 100), (1, 64, 256)
    sizes = np.array([[[[[native.workspace_size(Shapes(1, ck, h, w, hr, wr, 1, 1, 1), dtype, ref_chunk)
                          for ck in channels] for wr in ref] for hr in ref] for w in lr] for h in lr])
    for axis in range(sizes.ndim):
        assert (np.diff(sizes, axis=axis) >= 0).all(), f"axis {axis}"
    largest = Shapes(1, 256, 95, 95, 100, 100, 1, 1, 1)
    assert native.workspace_size(largest, dtype, ref_chunk) == sizes.max()
    assert native.workspace_size(largest, dtype, 7) <= native.workspace_size(largest, dtype, 5000) \
        <= native.workspace_size(largest, dtype, 0)


def test_ref_chunk_caps_the_chunk() -> None:
    shapes = square(20, ref_side=9)
    assert native.chunk_size(shapes) == 81
    assert native.chunk_size(shapes, ref_chunk=5) == 5
    assert native.chunk_size(shapes, ref_chunk=1000) == 81
    assert native.workspace_size(shapes, ref_chunk=5) < native.workspace_size(shapes)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_workspace_grows_linearly_with_area(dtype: type) -> None:
    sizes = {side: native.workspace_size(square(side), dtype) for side in (100, 200, 400, 800)}
    for side in (100, 200, 400):
        # Four times the area: at most four times the workspace (quadratic would be 16x).
        assert sizes[2 * side] <= 4 * sizes[side]
    per_position = sizes[800] / 800**2
    item = np.dtype(dtype).itemsize
    # Dominated by the normalised LR patches: 9 * Ck elements per position.
    assert 9 * 256 * item <= per_position <= 9 * 256 * item * 1.5
    assert native.workspace_size(square(100, n=4), dtype) == sizes[100]  # batch-independent


def test_workspace_holds_the_plan_buffers() -> None:
    shapes = Shapes(1, 8, 5, 7, 6, 4, 5, 3, 2)
    d, p, j = 72, 35, 24
    for dtype, item in ((np.float32, 4), (np.float16, 2)):
        size = native.workspace_size(shapes, dtype)
        need = d * p * item + d * j * item + j * p * 4 + p * 4 + p * 4
        assert need <= size <= need + 5 * 256
    # A chunk bound by the budget: its kn and rel blocks fit, and the block is no larger than the budget.
    shapes = square(120)
    d, p = 9 * 256, 120 * 120
    for dtype, item in ((np.float32, 4), (np.float16, 2)):
        chunk = native.chunk_size(shapes, dtype)
        assert chunk < p
        size = native.workspace_size(shapes, dtype)
        fixed = d * p * item + p * 4 + p * 4
        assert fixed + chunk * (d * item + 4 * p) <= size <= fixed + CHUNK_BUDGET + 6 * 256


def test_mixed_dtypes_rejected() -> None:
    inputs = [np.zeros(s, np.float32) for s in Shapes(1, 2, 2, 2, 2, 2, 1, 1, 1).expected_inputs()]
    inputs[2] = inputs[2].astype(np.float16)
    with pytest.raises(TypeError, match="mixed dtypes"):
        native.search_transfer_cpu(*inputs)


def test_unsupported_dtype_rejected() -> None:
    inputs = [np.zeros(s, np.float64) for s in Shapes(1, 2, 2, 2, 2, 2, 1, 1, 1).expected_inputs()]
    with pytest.raises(TypeError, match="float32 or float16"):
        native.search_transfer_cpu(*inputs)


def test_inconsistent_shapes_rejected() -> None:
    inputs = [np.zeros(s, np.float32) for s in Shapes(1, 2, 3, 3, 2, 2, 1, 1, 1).expected_inputs()]
    inputs[3] = np.zeros((1, 1, 3, 4), np.float32)
    with pytest.raises(ValueError, match="input 'v2' has shape"):
        native.search_transfer_cpu(*inputs)


def test_negative_ref_chunk_rejected() -> None:
    inputs = [np.zeros(s, np.float32) for s in Shapes(1, 2, 2, 2, 2, 2, 1, 1, 1).expected_inputs()]
    with pytest.raises(ValueError, match="ref_chunk"):
        native.search_transfer_cpu(*inputs, ref_chunk=-1)


def test_too_large_grid_rejected_by_the_library() -> None:
    with pytest.raises(ValueError, match="not supported"):
        native.workspace_size(Shapes(1, 8, 20000, 20000, 4, 4, 1, 1, 1))


def test_missing_library_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTSR_PLUGIN_DIR", str(tmp_path))
    assert native.library_dir() == tmp_path
    assert native.default_plugin_library() == tmp_path / "libttsr_trt_plugin.so"
    with pytest.raises(native.NativeLibraryError, match="scripts/setup.sh"):
        native.cpu_library()


def test_abi_reports_bad_arguments_by_status() -> None:
    lib = native.cpu_library()
    shapes = Shapes(1, 2, 2, 2, 2, 2, 1, 1, 1)
    arrays = [np.zeros(s, np.float32) for s in shapes.expected_inputs() + shapes.outputs()]
    pointers = [a.ctypes.data for a in arrays]
    shape = native._Shape.of(shapes)
    workspace = np.zeros(native.workspace_size(shapes), np.uint8)
    assert lib.ttsr_st_cpu_run(shape, 0, 0, *pointers, workspace.ctypes.data) == 0
    assert lib.ttsr_st_cpu_run(shape, 0, 0, *pointers, None) == 3
    assert lib.ttsr_st_cpu_run(shape, 2, 0, *pointers, workspace.ctypes.data) == 2
    assert lib.ttsr_st_cpu_run(shape, 0, -1, *pointers, workspace.ctypes.data) == 3
    empty = native._Shape(1, 2, 0, 2, 2, 2, 1, 1, 1)
    assert lib.ttsr_st_cpu_run(empty, 0, 0, *pointers, workspace.ctypes.data) == 1
    assert lib.ttsr_st_workspace_size(empty, 0, 0) == 0
    assert lib.ttsr_st_chunk_size(empty, 0, 0) == 0
    messages = {lib.ttsr_st_status_string(code).decode() for code in range(6)}
    assert len(messages) == 6 and "ok" in messages
