"""The CUDA Gram path (the kernels' default relevance path), checked on the CPU through its host
emulation (plugins/search_transfer/cuda_emulation.cpp): the plan's Gram tiles and GEMM arguments,
the padding transpose, the inverse patch norms and the argmax kernel block by block and lane by
lane, with the kernel's own functions (gram_geometry.h), against the PyTorch reference's
relevance; also the Gram tiling rules the workspace relies on."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests._emu import emu_library
from ttsr import contract
from ttsr.model.search_transfer import relevance as reference_relevance
from ttsr.plugin import native

SPAN = 32  # gram_geometry.h kGramSpan: LR positions per block, Ref positions per step


@pytest.fixture(scope="module")
def emu() -> ctypes.CDLL:
    map_to_array = ([ctypes.c_void_p, *[ctypes.c_int] * 3, ctypes.c_void_p], None)
    return emu_library({
        "ttsr_st_emu_gram_search": ([ctypes.c_void_p, ctypes.c_void_p, *[ctypes.c_int] * 6, ctypes.c_size_t,
                                     ctypes.c_int, ctypes.c_void_p], ctypes.c_int),
        "ttsr_st_emu_gram_plan": ([*[ctypes.c_int] * 6, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p],
                                  ctypes.c_int),
        "ttsr_st_emu_pad_features": map_to_array,
        "ttsr_st_emu_inverse_norms": map_to_array,
    })


def gram_search(emu: ctypes.CDLL, q: np.ndarray, k: np.ndarray, ref_chunk: int = 0, budget: int = 0,
                min_blocks: int = 264) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(s, idx, raw keys, Gram tiles) of the emulated Gram path on (ck, h, w) float32 maps."""
    q, k = np.ascontiguousarray(q, np.float32), np.ascontiguousarray(k, np.float32)
    (ck, h, w), (_, hr, wr) = q.shape, k.shape
    keys = np.full(h * w, emu.ttsr_st_emu_initial_key(), dtype=np.uint64)
    tiles = emu.ttsr_st_emu_gram_search(q.ctypes.data, k.ctypes.data, ck, h, w, hr, wr, ref_chunk,
                                        budget, min_blocks, keys.ctypes.data)
    assert tiles >= 1, tiles
    values = np.array([emu.ttsr_st_emu_key_value(int(key)) for key in keys], dtype=np.float32)
    indices = np.array([emu.ttsr_st_emu_key_index(int(key)) for key in keys])
    return values, indices, keys, tiles


def relevance(q: np.ndarray, k: np.ndarray) -> torch.Tensor:
    """(J, P) relevance of the PyTorch reference block, in float64."""
    return reference_relevance(torch.from_numpy(q).double()[None], torch.from_numpy(k).double()[None])[0]


def assert_matches_reference(q: np.ndarray, k: np.ndarray, values: np.ndarray, indices: np.ndarray) -> None:
    rel = relevance(q, k)
    best = rel.max(dim=0).values.numpy()
    picked = rel[torch.from_numpy(indices), torch.arange(rel.shape[1])].numpy()
    np.testing.assert_allclose(values, best, atol=1e-5)
    # The picked Ref position is a best one (up to float32 rounding of near-ties, contract.py).
    np.testing.assert_allclose(picked, best, atol=1e-6)


def maps(seed: int, ck: int, lr: tuple[int, int], ref: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((ck, *lr)).astype(np.float32),
            rng.standard_normal((ck, *ref)).astype(np.float32))


CASES = {
    # name: LR (h, w), Ref (hr, wr), ck, budget bytes (0 = the CUDA default: one tile here)
    "odd-small": ((5, 7), (6, 4), 8, 0),
    "one-by-one": ((1, 1), (1, 1), 8, 0),
    "segments": ((3, 37), (4, 70), 4, 0),              # 2 LR column blocks, 3 Ref steps per row
    "tall-thin": ((40, 1), (33, 2), 4, 0),
    "many-tiles": ((13, 11), (9, 35), 4, 16 << 10),    # tiles of whole and partial rows both ways
    "row-tiles": ((6, 9), (7, 5), 4, 4),               # a budget below one row's block: tiles of a row
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gram_path_matches_reference(emu: ctypes.CDLL, name: str) -> None:
    lr, ref, ck, budget = CASES[name]
    q, k = maps(sum(map(ord, name)), ck, lr, ref)
    values, indices, _, tiles = gram_search(emu, q, k, budget=budget)
    assert_matches_reference(q, k, values, indices)
    if budget == 0:
        assert tiles == 1
    else:
        assert tiles > 4


def test_relu_like_features_match_reference(emu: ctypes.CDLL) -> None:
    # Non-negative, sparse features like relu3_1's: many patches alike, many near-ties.
    q, k = maps(7, 16, (12, 20), (15, 18))
    q, k = np.maximum(q, 0.8), np.maximum(k, 0.8)
    values, indices, _, _ = gram_search(emu, q, k, budget=32 << 10)
    assert_matches_reference(q, k, values, indices)


def test_results_do_not_depend_on_tiles_caps_or_block_counts(emu: ctypes.CDLL) -> None:
    q, k = maps(3, 4, (14, 17), (12, 38))
    _, _, reference, _ = gram_search(emu, q, k)
    seen_tiles = set()
    for ref_chunk, budget, min_blocks in [(0, 16 << 10, 1), (0, 40 << 10, 264), (7, 0, 132),
                                          (40, 64 << 10, 2), (0, 0, 1 << 12)]:
        _, _, keys, tiles = gram_search(emu, q, k, ref_chunk, budget, min_blocks)
        seen_tiles.add(tiles)
        np.testing.assert_array_equal(keys, reference, err_msg=f"{ref_chunk=} {budget=} {min_blocks=}")
    assert len(seen_tiles) >= 4  # the tilings really differ


def test_exact_ties_pick_the_lowest_ref_index(emu: ctypes.CDLL) -> None:
    # Every Ref pixel holds the same vector, so all interior Ref patches are equal and score
    # exactly alike; the lowest interior index must win, whatever tile or step it falls in.
    rng = np.random.default_rng(11)
    k = np.repeat(rng.standard_normal((4, 1, 1)), 9 * 40, axis=1).reshape(4, 9, 40).astype(np.float32)
    q = np.repeat(k[:, :1, :1], 8 * 8, axis=1).reshape(4, 8, 8).copy()
    for budget in (0, 8 << 10):
        values, indices, _, _ = gram_search(emu, q, k, budget=budget)
        rel = relevance(q, k)
        expected = rel.argmax(dim=0).numpy()  # torch: the first maximum
        interior = np.array([(y in range(1, 7)) and (x in range(1, 7)) for y in range(8) for x in range(8)])
        np.testing.assert_array_equal(indices[interior], expected[interior])
        assert set(indices[interior]) == {1 * 40 + 1}
        np.testing.assert_allclose(values, rel.max(dim=0).values.numpy(), atol=1e-6)


def test_all_zero_patches_tie_at_zero_and_pick_ref_zero(emu: ctypes.CDLL) -> None:
    q, k = maps(5, 4, (5, 6), (7, 3))
    for zero_q, zero_k in ((True, False), (False, True)):
        values, indices, _, _ = gram_search(emu, q * (not zero_q), k * (not zero_k))
        assert np.all(values == 0) and np.all(indices == 0)


def test_padding_transpose_and_inverse_norms(emu: ctypes.CDLL) -> None:
    rng = np.random.default_rng(2)
    for ck, h, w in ((3, 4, 5), (40, 7, 33), (1, 1, 1)):
        x = rng.standard_normal((ck, h, w)).astype(np.float32)
        # The padded grid, then 15 zero pixels: room for the GEMM's 16-aligned block past the last pixel.
        padded = np.full(((h + 2) * (w + 2) + 15, ck), np.nan, np.float32)
        emu.ttsr_st_emu_pad_features(x.ctypes.data, ck, h, w, padded.ctypes.data)
        expected = np.pad(x, ((0, 0), (1, 1), (1, 1))).reshape(ck, -1).T
        np.testing.assert_array_equal(padded, np.concatenate([expected, np.zeros((15, ck), np.float32)]))
        inv = np.zeros(h * w, np.float32)
        emu.ttsr_st_emu_inverse_norms(x.ctypes.data, ck, h, w, inv.ctypes.data)
        norms = F.unfold(torch.from_numpy(x).double()[None], 3, padding=1)[0].norm(dim=0).numpy()
        np.testing.assert_allclose(inv, 1 / np.maximum(norms, contract.NORM_EPS), rtol=1e-6)


def gram_plan(emu: ctypes.CDLL, h: int, w: int, hr: int, wr: int, ref_chunk: int = 0, budget: int = 0,
              min_blocks: int = 264) -> dict[str, int]:
    out = (ctypes.c_longlong * 7)()
    assert emu.ttsr_st_emu_gram_plan(256, h, w, hr, wr, ref_chunk, budget, min_blocks, out) == 0
    return dict(zip(("lr_tile", "ref_tile", "ldg", "cols", "tiles", "reserved", "fewest_blocks"), out))


def extent(len_: int, h: int, w: int) -> int:
    """Padded pixels the Gram block of len_ consecutive positions may span (halo included)."""
    return min((h + 2) * (w + 2), len_ + 2 * -(-(len_ - 1) // w) + 2 * (w + 3))


@pytest.mark.parametrize("budget", [0, 64 << 20, 1 << 20, 4 << 10])
def test_gram_tiles_fit_the_budget_and_take_whole_rows(emu: ctypes.CDLL, budget: int) -> None:
    for (h, w), (hr, wr) in [((120, 120), (120, 120)), ((384, 384), (384, 384)), ((40, 40), (160, 160)),
                             ((160, 160), (40, 40)), ((3, 200), (200, 3)), ((1, 1), (1, 1))]:
        plan = gram_plan(emu, h, w, hr, wr, budget=budget)
        p, j = h * w, hr * wr
        limit = (budget or native.DEVICE_DEFAULT_BUDGET) // 4
        block = plan["ldg"] * plan["cols"]
        row_block = -(-extent(wr, hr, wr) // 16) * 16 * -(-extent(w, h, w) // 16) * 16  # one grid row a side
        assert block <= plan["reserved"] and block <= max(limit, row_block), (h, w, hr, wr)
        assert plan["ldg"] % 16 == 0 and plan["ldg"] >= extent(plan["ref_tile"], hr, wr)
        assert plan["cols"] == -(-extent(plan["lr_tile"], h, w) // 16) * 16
        for tile, total, width in ((plan["lr_tile"], p, w), (plan["ref_tile"], j, wr)):
            assert width <= tile <= total
            assert tile == total or tile % width == 0  # whole grid rows
        whole = -(-extent(j, hr, wr) // 16) * 16 * extent(p, h, w)
        if whole <= limit:
            assert (plan["lr_tile"], plan["ref_tile"], plan["tiles"]) == (p, j, 1)
        # Every Gram argmax launch fills the GPU when its tile has the work for it: a tile
        # touches at least one LR row (w / 32 blocks) and one Ref row (wr / 32 steps).
        assert plan["fewest_blocks"] >= min(264, -(-w // SPAN) * -(-wr // SPAN))
    assert gram_plan(emu, 120, 120, 120, 120)["tiles"] == 1  # ~0.9 GB: one GEMM at the 1 GiB default
    big = gram_plan(emu, 384, 384, 384, 384)
    assert big["lr_tile"] >= 40 * 384 and big["ref_tile"] >= 40 * 384 and big["tiles"] <= 100
