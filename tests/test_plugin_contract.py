"""The C++ side of the contract: contract.h and the ABI agree with ttsr/contract.py,
the plan (tiles, alignment, budget, workspace) keeps its rules, bad calls fail clearly."""

from __future__ import annotations

import ctypes
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from ttsr import contract
from ttsr.contract import Shapes
from ttsr.plugin import native

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "plugins" / "search_transfer"
TILE_ALIGN = 128  # plan.h: kTileAlign
ROW_ALIGN = 8  # plan.h: kRowAlign


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


def api_macro(name: str) -> int:
    text = (PLUGIN_SRC / "ttsr_st_api.h").read_text()
    match = re.search(rf"#define {name} \(\(size_t\)(\d+) << (\d+)\)", text)
    assert match is not None, name
    return int(match.group(1)) << int(match.group(2))


def test_default_budgets_follow_the_header() -> None:
    assert native.DEVICE_DEFAULT_BUDGET == api_macro("TTSR_ST_DEFAULT_WORKSPACE_BUDGET") == 1 << 30
    assert native.CPU_DEFAULT_BUDGET == api_macro("TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET")


def rel_rows(ref_tile: int) -> int:
    return -(-ref_tile // ROW_ALIGN) * ROW_ALIGN


# (LR side, Ref side, budget bytes): whole-fit, one side whole, square tiles, tiny budgets.
TILING_CASES = [(s, r, b) for s in (1, 7, 40, 120, 384) for r in (1, 11, 40, 120, 384)
                for b in (0, 1, 64 << 10, 4 << 20, 64 << 20)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_tiles_are_aligned_and_fit_the_budget(dtype: type) -> None:
    for side, ref_side, budget in TILING_CASES:
        shapes = square(side, ref_side)
        p, j = side * side, ref_side * ref_side
        lr_tile, ref_tile = native.tile_sizes(shapes, dtype, budget=budget, relevance="gemm")
        assert 1 <= lr_tile <= p and 1 <= ref_tile <= j
        # Multiples of 128 positions unless a tile covers its whole grid.
        assert lr_tile == p or lr_tile % TILE_ALIGN == 0, (side, ref_side, budget, lr_tile)
        assert ref_tile == j or ref_tile % TILE_ALIGN == 0, (side, ref_side, budget, ref_tile)
        limit = budget or native.DEVICE_DEFAULT_BUDGET
        block = rel_rows(ref_tile) * lr_tile * 4
        smallest = rel_rows(min(j, TILE_ALIGN)) * min(p, TILE_ALIGN) * 4
        assert block <= max(limit, smallest), (side, ref_side, budget)
        if rel_rows(j) * p * 4 <= limit:
            assert (lr_tile, ref_tile) == (p, j)  # one GEMM when the whole matrix fits
        # Large GEMMs: with a 4 MiB budget and more, each side >= 1024 where the grids allow.
        if limit >= 4 << 20:
            assert lr_tile >= min(p, 1024) and ref_tile >= min(j, 1024), (side, ref_side, budget)
            # and the budget is used: the block is more than half of it, or a side is whole.
            assert block * 2 > limit or lr_tile == p or ref_tile == j


def test_default_device_budget_gives_few_large_gemms() -> None:
    assert native.tile_sizes(square(120), relevance="gemm") == (120 * 120, 120 * 120)  # 829 MB relevance: one GEMM
    lr_tile, ref_tile = native.tile_sizes(square(384), relevance="gemm")
    assert lr_tile >= 16384 and ref_tile >= 16384  # 384^2 = 147456 positions a side
    assert native.tile_sizes(square(384), budget=64 << 20, relevance="gemm") == (4096, 4096)


def test_ref_chunk_caps_the_ref_tile() -> None:
    shapes = square(20, ref_side=9)
    assert native.tile_sizes(shapes, relevance="gemm") == (400, 81)
    assert native.tile_sizes(shapes, ref_chunk=5, relevance="gemm") == (400, 5)
    assert native.chunk_size(shapes, ref_chunk=1000) == 81
    assert native.workspace_size(shapes, ref_chunk=5) < native.workspace_size(shapes)
    # A cap below the budget's tile: the LR tile grows to fill the budget.
    lr_tile, ref_tile = native.tile_sizes(square(384), budget=64 << 20, ref_chunk=300, relevance="gemm")
    assert ref_tile == 300 and lr_tile == (64 << 20) // 4 // rel_rows(300) // TILE_ALIGN * TILE_ALIGN


PATHS = ["auto", "gemm"]  # the default (Gram) layout and the patch paths' layout (fused lays out as gemm)


@pytest.mark.parametrize("relevance", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("ref_chunk", [0, 7, 5000])
@pytest.mark.parametrize("budget", [0, 1, 1 << 20])
def test_workspace_never_shrinks_as_a_size_grows(dtype: type, ref_chunk: int, budget: int, relevance: str) -> None:
    # A profile's workspace is sized at its largest shape, so no size may need less when it grows.
    # Adjacent sizes (60, 61) are where a rule that shrinks a tile with the other grid's area breaks.
    lr, ref, channels = (1, 2, 40, 60, 61, 95), (1, 23, 64, 65, 100), (1, 64, 256)
    sizes = np.array([[[[[native.workspace_size(Shapes(1, ck, h, w, hr, wr, 1, 1, 1), dtype, ref_chunk, budget,
                                                relevance)
                          for ck in channels] for wr in ref] for hr in ref] for w in lr] for h in lr])
    for axis in range(sizes.ndim):
        assert (np.diff(sizes, axis=axis) >= 0).all(), f"axis {axis}"
    largest = Shapes(1, 256, 95, 95, 100, 100, 1, 1, 1)
    assert native.workspace_size(largest, dtype, ref_chunk, budget, relevance) == sizes.max()


@pytest.mark.parametrize("relevance", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_workspace_never_shrinks_as_the_budget_or_the_cap_grows(dtype: type, relevance: str) -> None:
    for shapes in (square(40), square(95, 100), Shapes(1, 64, 7, 300, 200, 3, 1, 1, 1)):
        budgets = [native.workspace_size(shapes, dtype, 0, b, relevance) for b in (1, 1 << 16, 1 << 20, 1 << 24, 1 << 30)]
        assert budgets == sorted(budgets)
        caps = [native.workspace_size(shapes, dtype, c, 1 << 20, relevance) for c in (1, 7, 128, 5000, 0)]
        assert caps == sorted(caps)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("budget", [0, 64 << 20])
def test_workspace_grows_linearly_with_area(dtype: type, budget: int) -> None:
    item = np.dtype(dtype).itemsize
    for relevance in PATHS:
        sizes = {side: native.workspace_size(square(side), dtype, budget=budget, relevance=relevance)
                 for side in (200, 400, 800, 1600)}
        for side in (400, 800):
            # Four times the area: at most four times the workspace (quadratic would be 16x).
            assert sizes[2 * side] <= 4 * sizes[side]
    # At 800 the tile block is the budget (at 1600, 64 MiB is below one grid row's Gram block,
    # which the block never goes under: ~4.8k x 4.8k floats).  Per position, besides it: the
    # Gram path's padded LR and Ref features (Ck elements per padded pixel each), energies,
    # 1 / norm of LR and Ref, a 64-bit key and the argmax; the patch paths' normalised LR and
    # Ref patches (9 Ck elements per position each), energies and a key.
    block = budget or native.DEVICE_DEFAULT_BUDGET
    gram = (native.workspace_size(square(800), dtype, budget=budget) - block) / 800**2
    assert gram == pytest.approx(2 * 256 * item * (802**2 + 15) / 800**2 + 4 + 8 + 8 + 4, rel=1e-4)
    patch = (native.workspace_size(square(800), dtype, budget=budget, relevance="gemm") - block) / 800**2
    assert patch == pytest.approx(2 * 9 * 256 * item + 4 + 8, rel=1e-4)
    assert native.workspace_size(square(100, n=4), dtype) == native.workspace_size(square(100), dtype)


def test_workspace_holds_the_plan_buffers() -> None:
    shapes = Shapes(1, 8, 5, 7, 6, 4, 5, 3, 2)
    d, p, j = 72, 35, 24
    for dtype, item in ((np.float32, 4), (np.float16, 2)):
        # Gram path: padded features of (5 + 2) x (7 + 2) LR and (6 + 2) x (4 + 2) Ref pixels, each
        # with 15 more for the GEMM's 16-aligned block, the whole Gram block (48 Ref rows by 63 LR
        # columns, both aligned to 16), energies max(p, j), 1 / norms p + j, 64-bit keys p, argmax p.
        need = (63 + 15 + 48 + 15) * 8 * item + 48 * 64 * 4 + max(p, j) * 4 + (p + j) * 4 + p * 8 + p * 4
        size = native.workspace_size(shapes, dtype)
        assert need <= size <= need + 8 * 256
        # Patch paths: normalised patches, the relevance block, energies, keys (the argmax reuses qn).
        need = d * p * item + d * j * item + rel_rows(j) * p * 4 + max(p, j) * 4 + p * 8
        for relevance in ("gemm", "fused"):
            size = native.workspace_size(shapes, dtype, relevance=relevance)
            assert need <= size <= need + 8 * 256
        assert native.workspace_size(shapes, dtype, relevance="gram") == native.workspace_size(shapes, dtype)
    # Tiles bound by the budget: the block is the budget, the feature and patch buffers are whole.
    shapes, budget = square(120), 16 << 20
    d, p = 9 * 256, 120 * 120
    for dtype, item in ((np.float32, 4), (np.float16, 2)):
        lr_tile, ref_tile = native.tile_sizes(shapes, dtype, budget=budget, relevance="gemm")
        assert lr_tile < p and ref_tile < p
        size = native.workspace_size(shapes, dtype, budget=budget, relevance="gemm")
        fixed = 2 * d * p * item + p * 4 + p * 8
        assert fixed + rel_rows(ref_tile) * lr_tile * 4 <= size <= fixed + budget + 8 * 256
        size = native.workspace_size(shapes, dtype, budget=budget)
        fixed = 2 * (122 * 122 + 15) * 256 * item + p * 4 + 2 * p * 4 + p * 8 + p * 4
        assert fixed + budget <= size <= fixed + budget + 8 * 256


def test_bad_relevance_rejected() -> None:
    with pytest.raises(ValueError, match="relevance must be one of auto, gemm, fused, gram"):
        native.workspace_size(square(4), relevance="wmma")


def test_bad_budget_rejected() -> None:
    with pytest.raises(ValueError, match="budget"):
        native.workspace_size(square(4), budget=-1)


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
    workspace = np.zeros(native.cpu_workspace_size(shapes), np.uint8)
    assert lib.ttsr_st_cpu_run(shape, 0, 0, 0, 0, *pointers, workspace.ctypes.data, None) == 0
    assert lib.ttsr_st_cpu_run(shape, 0, 0, 0, 0, *pointers, None, None) == 3
    assert lib.ttsr_st_cpu_run(shape, 2, 0, 0, 0, *pointers, workspace.ctypes.data, None) == 2
    assert lib.ttsr_st_cpu_run(shape, 0, -1, 0, 0, *pointers, workspace.ctypes.data, None) == 3
    assert lib.ttsr_st_cpu_run(shape, 0, 0, 0, -1, *pointers, workspace.ctypes.data, None) == 3
    empty = native._Shape(1, 2, 0, 2, 2, 2, 1, 1, 1)
    assert lib.ttsr_st_cpu_run(empty, 0, 0, 0, 0, *pointers, workspace.ctypes.data, None) == 1
    assert lib.ttsr_st_workspace_size(empty, 0, 0, 0) == 0
    assert lib.ttsr_st_cpu_workspace_size(empty, 0, 0, 0) == 0
    tile = ctypes.c_int()
    assert lib.ttsr_st_tile_sizes(empty, 0, 0, 0, ctypes.byref(tile), ctypes.byref(tile)) == 1
    assert lib.ttsr_st_tile_sizes(shape, 0, 0, 0, None, ctypes.byref(tile)) == 3
    messages = {lib.ttsr_st_status_string(code).decode() for code in range(6)}
    assert len(messages) == 6 and "ok" in messages
