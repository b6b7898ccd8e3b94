"""The CUDA kernels' index math, checked on the CPU through host emulations
(plugins/search_transfer/cuda_emulation.cpp) that run each kernel's steps with the kernel's own
functions, against the PyTorch reference: the fused FP16 relevance + argmax kernel (tiles, zero
padding, splits, scan order, key merge; lowest index among equal maxima, ttsr/contract.py), the
two-pass patch normalisation, the argmax update after each GEMM tile; also the launch geometry
of every kernel and the rule that picks the relevance path."""

from __future__ import annotations

import ctypes
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests._emu import emu_library
from ttsr import contract
from ttsr.plugin import native

FP32, FP16 = 0, 1
AUTO, GEMM, FUSED, GRAM = 0, 1, 2, 3
TILE_P, TILE_J, TILE_K = 128, 64, 32  # fused_tiling.h


@pytest.fixture(scope="module")
def emu() -> ctypes.CDLL:
    return emu_library({
        "ttsr_st_emu_fused_relevance": ([ctypes.c_void_p, ctypes.c_void_p, *[ctypes.c_int] * 5,
                                         ctypes.c_void_p], ctypes.c_int),
        "ttsr_st_emu_better_match": ([ctypes.c_float, ctypes.c_int, ctypes.c_float, ctypes.c_int],
                                     ctypes.c_int),
        "ttsr_st_emu_grid_blocks": ([ctypes.c_int] * 4 + [ctypes.c_void_p], None),
        "ttsr_st_emu_threads_per_block": ([ctypes.c_longlong, ctypes.c_int], ctypes.c_int),
        "ttsr_st_emu_relevance_path": ([ctypes.c_int] * 3, ctypes.c_int),
        "ttsr_st_emu_normalise": ([ctypes.c_void_p, *[ctypes.c_int] * 3, ctypes.c_void_p], None),
        "ttsr_st_emu_update_keys": ([ctypes.c_void_p, *[ctypes.c_int] * 6, ctypes.c_void_p],
                                    ctypes.c_longlong),
    })


def normalised_patches(features: torch.Tensor) -> np.ndarray:
    """(positions, d) float16: column-per-position d x positions, as the kernels store qn / kn."""
    ps = contract.PATCH_SIZE
    unfolded = F.unfold(features.double(), ps, padding=ps // 2)
    patches = F.normalize(unfolded, dim=1, eps=contract.NORM_EPS)[0].T
    return np.ascontiguousarray(patches.numpy().astype(np.float16))


def features(seed: int, ck: int, h: int, w: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((1, ck, h, w)))


def fused(emu: ctypes.CDLL, qn: np.ndarray, kn: np.ndarray, min_blocks: int, j_first: int = 0,
          keys: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Keys after the emulated kernel folded kn (Ref positions j_first..) into them."""
    p, d = qn.shape
    if keys is None:
        keys = np.full(p, emu.ttsr_st_emu_initial_key(), dtype=np.uint64)
    splits = emu.ttsr_st_emu_fused_relevance(qn.ctypes.data, kn.ctypes.data, d, p, j_first,
                                             kn.shape[0], min_blocks, keys.ctypes.data)
    assert splits >= 1
    return keys, splits


def decode(emu: ctypes.CDLL, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([emu.ttsr_st_emu_key_value(int(k)) for k in keys], dtype=np.float32)
    return values, np.array([emu.ttsr_st_emu_key_index(int(k)) for k in keys])


def reference_relevance(qn: np.ndarray, kn: np.ndarray) -> torch.Tensor:
    """(J, P) relevance of the float16 patches in float64."""
    return torch.from_numpy(kn.astype(np.float64)) @ torch.from_numpy(qn.astype(np.float64)).T


CASES = {
    # name: (LR h, w), (Ref hr, wr), ck, min_blocks
    "odd-small": ((5, 7), (6, 4), 8, 1),        # d = 72: a partial K stage; one tile each way
    "tile-edges": ((11, 13), (9, 15), 8, 264),  # P = 143, J = 135: partial LR and Ref tiles, 3 splits
    "one-by-one": ((1, 1), (1, 1), 8, 8),
    "exact-stages": ((12, 12), (10, 13), 32, 4),  # d = 288 = 9 stages, 2 LR tiles, 3 Ref tiles
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_argmax_matches_reference(emu: ctypes.CDLL, name: str) -> None:
    (h, w), (hr, wr), ck, min_blocks = CASES[name]
    qn = normalised_patches(features(1, ck, h, w))
    kn = normalised_patches(features(2, ck, hr, wr))
    keys, splits = fused(emu, qn, kn, min_blocks)
    values, index = decode(emu, keys)
    relevance = reference_relevance(qn, kn)
    best, want = relevance.max(dim=0)
    assert torch.equal(want, relevance.argmax(dim=0))  # torch's argmax: the first maximum
    np.testing.assert_allclose(values, best.numpy(), atol=2e-6)
    chosen = relevance[torch.from_numpy(index), torch.arange(h * w)].numpy()
    # Float32 sums may reorder positions within rounding of each other, never more.
    assert np.all(best.numpy() - chosen <= 2e-6)
    assert np.mean(index == want.numpy()) >= 0.95
    assert splits == min(math.ceil(min_blocks / math.ceil(h * w / TILE_P)), math.ceil(hr * wr / TILE_J))


def test_results_do_not_depend_on_splits_or_ref_ranges(emu: ctypes.CDLL) -> None:
    qn = normalised_patches(features(3, 8, 13, 11))
    kn = normalised_patches(features(4, 8, 20, 13))  # J = 260: 5 Ref tiles, the last partial
    whole, one = fused(emu, qn, kn, min_blocks=1)
    split, many = fused(emu, qn, kn, min_blocks=1000)
    assert (one, many) == (1, 5)
    np.testing.assert_array_equal(whole, split)
    # The plan's Ref tiles (ref_chunk caps) as separate launches merging into the same keys.
    keys = None
    for first in range(0, kn.shape[0], 77):
        keys, _ = fused(emu, qn, kn[first:first + 77], min_blocks=8, j_first=first, keys=keys)
    np.testing.assert_array_equal(whole, keys)


@pytest.mark.parametrize("copies", [(5, 64, 130, 199), (70, 140), (199, 63)])
def test_exact_ties_pick_the_lowest_index_across_tiles_and_splits(emu: ctypes.CDLL,
                                                                  copies: tuple[int, ...]) -> None:
    qn = normalised_patches(features(5, 8, 4, 5))
    kn = normalised_patches(features(6, 8, 10, 20)).copy()
    kn[list(copies)] = kn[copies[0]]
    qn[:6] = kn[copies[0]]  # these LR patches match every copy best, with bit-equal relevance
    for min_blocks in (1, 4, 100):
        keys, _ = fused(emu, qn, kn, min_blocks)
        _, index = decode(emu, keys)
        assert np.all(index[:6] == min(copies)), (min_blocks, index[:6])
        assert np.array_equal(index, reference_relevance(qn, kn).argmax(dim=0).numpy())


def test_all_zero_lr_patch_ties_everywhere_and_picks_ref_zero(emu: ctypes.CDLL) -> None:
    q = features(7, 8, 6, 7)
    q[:, :, 2:, :] = 0.0  # LR rows 3.. have all-zero patches: relevance +-0 against every Ref
    qn = normalised_patches(q)
    kn = normalised_patches(features(8, 8, 9, 9))
    values, index = decode(emu, fused(emu, qn, kn, min_blocks=3)[0])
    zero = np.all(qn == 0, axis=1)
    assert zero.sum() >= 14
    assert np.all(index[zero] == 0) and np.all(values[zero] == 0.0)
    assert np.array_equal(index, reference_relevance(qn, kn).argmax(dim=0).numpy())


def test_padding_rows_never_beat_negative_relevance(emu: ctypes.CDLL) -> None:
    # J = 65: one full Ref tile and one row; the padded rows of the second tile would score 0.
    kn = np.tile(normalised_patches(features(9, 8, 1, 1)), (65, 1))
    qn = -kn[:3]
    values, index = decode(emu, fused(emu, qn, kn, min_blocks=2)[0])
    assert np.all(values < -0.99) and np.all(index == 0)


@pytest.mark.parametrize("channels, h, w", [(3, 1, 1), (8, 5, 7), (256, 6, 5), (33, 1, 9), (40, 9, 1)])
def test_two_pass_normalisation_matches_reference(emu: ctypes.CDLL, channels: int, h: int, w: int) -> None:
    """Energy per pixel (channel strides of 32 rows), window sums, division: the reference's
    F.normalize of the im2col patches, zero padding and all."""
    feature_map = features(channels + h, channels, h, w)
    feature_map[0, :, 0, :] = 0.0  # a zero row: border patches see less energy, not none
    data = np.ascontiguousarray(feature_map[0].numpy().astype(np.float32))
    out = np.empty((h * w, channels * 9), dtype=np.float32)
    emu.ttsr_st_emu_normalise(data.ctypes.data, channels, h, w, out.ctypes.data)
    ps = contract.PATCH_SIZE
    want = F.normalize(F.unfold(torch.from_numpy(data)[None].double(), ps, padding=ps // 2), dim=1,
                       eps=contract.NORM_EPS)[0].T.numpy()
    np.testing.assert_allclose(out, want, atol=2e-7, rtol=0)
    zero = np.zeros((channels, h, w), dtype=np.float32)
    emu.ttsr_st_emu_normalise(zero.ctypes.data, channels, h, w, out.ctypes.data)
    assert not out.any()  # all-zero patches stay zero (eps, not a division by zero)


@pytest.mark.parametrize("rows, positions, min_blocks", [(1, 1, 264), (37, 5, 1), (300, 9, 264),
                                                        (1000, 70, 96), (129, 130, 8)])
def test_update_pass_merges_tiles_to_the_first_maximum(emu: ctypes.CDLL, rows: int, positions: int,
                                                       min_blocks: int) -> None:
    """The argmax pass after each relevance GEMM: every row of every column scanned once, in
    segments of whole warps, rows past the tile never read, ties to the lowest Ref index, and
    tiles of one image merging into the same keys."""
    rng = np.random.default_rng(rows)
    ldc = rows + 5
    relevance = rng.integers(-4, 4, size=(positions, ldc)).astype(np.float32) / 4  # many exact ties
    relevance[:, rows:] = np.inf  # the ldc padding: would win if read
    keys = np.full(2 * positions, emu.ttsr_st_emu_initial_key(), dtype=np.uint64)
    blocks = emu.ttsr_st_emu_update_keys(relevance.ctypes.data, ldc, 0, rows, positions, positions,
                                         min_blocks, keys.ctypes.data)
    assert blocks >= min(min_blocks // 2, math.ceil(positions / 8) * math.ceil(rows / 32))
    values, index = decode(emu, keys[positions:])
    want = relevance[:, :rows]
    np.testing.assert_array_equal(index, want.argmax(axis=1))  # numpy: the first maximum
    np.testing.assert_array_equal(values, want.max(axis=1))
    assert np.all(keys[:positions] == emu.ttsr_st_emu_initial_key())  # lr_first offsets the keys
    # Two Ref tiles of one LR range (tiles are never empty), the later one first: the result
    # is the whole column's.
    half = rows // 2
    if half > 0:
        merged = np.full(positions, emu.ttsr_st_emu_initial_key(), dtype=np.uint64)
        emu.ttsr_st_emu_update_keys(relevance.ctypes.data + 4 * half, ldc, half, rows - half, 0,
                                    positions, min_blocks, merged.ctypes.data)
        emu.ttsr_st_emu_update_keys(relevance.ctypes.data, ldc, 0, half, 0, positions, min_blocks,
                                    merged.ctypes.data)
        np.testing.assert_array_equal(merged, keys[positions:])


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, np.nextafter(np.float32(0.5), np.float32(1)), 1e-45, -1e-45,
           3.4e38, -3.4e38, np.inf, -np.inf, np.nan]


def test_key_order_is_the_contracts_tie_rule(emu: ctypes.CDLL) -> None:
    """key(a, ja) > key(b, jb) exactly when better_match(a, ja, b, jb) (index_math.h): higher
    relevance wins, equal relevance (+0 == -0) goes to the lower index, NaN never wins.  The
    running best b is never NaN (it starts at -inf and NaN never wins), so b ranges over the rest."""
    indices = [0, 1, 7, 2**31 - 1]
    for a in SPECIAL:
        for ja in indices:
            key_a = emu.ttsr_st_emu_match_key(a, ja)
            if not np.isnan(a):
                assert emu.ttsr_st_emu_key_index(key_a) == ja
                value = emu.ttsr_st_emu_key_value(key_a)
                assert value == np.float32(a) and (a != 0 or math.copysign(1, value) == 1)  # zeros: +0
            for b in SPECIAL[:-1]:
                for jb in indices:
                    key_b = emu.ttsr_st_emu_match_key(b, jb)
                    assert (key_a > key_b) == bool(emu.ttsr_st_emu_better_match(a, ja, b, jb)), \
                        (a, ja, b, jb)
    initial = emu.ttsr_st_emu_initial_key()
    assert (emu.ttsr_st_emu_key_value(initial), emu.ttsr_st_emu_key_index(initial)) == (-np.inf, 0)
    assert emu.ttsr_st_emu_match_key(np.nan, 0) < initial  # an all-NaN column keeps (-inf, 0)


SIZES = [(40, 40), (120, 120), (384, 384), (40, 160), (160, 640), (1, 1), (3, 200)]


@pytest.mark.parametrize("sms", [132, 108, 46])
def test_every_kernel_gets_enough_blocks_when_the_work_allows(emu: ctypes.CDLL, sms: int) -> None:
    """Issue #9: no kernel launched with fewer blocks than the GPU has SMs when the work allows
    (the old normalise kernel ran 4 blocks on 132 SMs for a chunk of 112 positions)."""
    d = 256 * 9
    for lr, ref in SIZES:
        p, j = lr * lr, ref * ref
        blocks = (ctypes.c_longlong * 4)()
        emu.ttsr_st_emu_grid_blocks(p, j, d, sms, blocks)
        energy, normalise, update, fused_blocks = list(blocks)
        assert energy == math.ceil(j / 8) and energy >= min(sms, math.ceil(j / 8))
        assert normalise >= min(sms, math.ceil(j / 32) * (d // 32))
        assert update >= min(sms, math.ceil(p / 8) * math.ceil(j / 32))
        assert fused_blocks >= min(sms, math.ceil(p / TILE_P) * math.ceil(j / TILE_J))
        for items in (p, j, 112, 1):
            threads = emu.ttsr_st_emu_threads_per_block(items, sms)
            assert threads % 32 == 0 and 32 <= threads <= 256
            assert math.ceil(items / threads) >= min(sms, math.ceil(items / 32))
    blocks = (ctypes.c_longlong * 4)()
    emu.ttsr_st_emu_grid_blocks(384 * 384, 112, d, sms, blocks)  # issue #9's chunk of 112
    assert blocks[1] >= sms


def test_relevance_path_rule(emu: ctypes.CDLL) -> None:
    path = emu.ttsr_st_emu_relevance_path
    for dtype in (FP32, FP16):
        for d in (2304, 36):
            assert path(dtype, d, AUTO) == GRAM  # the default: a ninth of the patch GEMM's work
            assert path(dtype, d, GRAM) == GRAM
            assert path(dtype, d, GEMM) == GEMM
    assert path(FP16, 2304, FUSED) == FUSED
    assert path(FP32, 2304, FUSED) == GEMM  # the fused kernel is FP16 only
    assert path(FP16, 36, FUSED) == GEMM  # 9 * ck not a multiple of 8


def test_cuda_binding_names_the_relevance_paths_of_the_header() -> None:
    header = (native.library_dir().parent / "plugins" / "search_transfer" / "ttsr_st_cuda_api.h").read_text()
    codes = dict(re.findall(r"TTSR_ST_RELEVANCE_(\w+) = (\d)", header))
    assert {name.lower(): int(code) for name, code in codes.items()} == \
        {name: code for code, name in enumerate(native.RELEVANCE_PATHS)}
    path = native.library_dir() / native.CUDA_LIBRARY
    if not path.is_file():
        pytest.skip(f"{path} not built (needs nvcc and cuBLAS)")
    with pytest.raises(ValueError, match="relevance must be one of auto, gemm, fused, gram"):
        native.CudaSearchTransfer(path, relevance="wmma")
    op = native.CudaSearchTransfer(path, relevance="fused")
    if not torch.cuda.is_available():
        with pytest.raises(native.NativeOpError, match="^ttsr_st_context_create: "):
            op.relevance_path(contract.Shapes(1, 256, 4, 4, 4, 4, 256, 128, 64), np.float16)
