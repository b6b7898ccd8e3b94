"""The search-transfer host twin (libttsr_st_cpu.so) against the PyTorch reference block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttsr import contract
from ttsr.contract import Shapes
from ttsr.model.lte import LTE
from ttsr.model.search_transfer import SearchTransfer
from ttsr.plugin import native
from ttsr.plugin.native import search_transfer_cpu

TOLERANCE = 1e-5


def random_inputs(shapes: Shapes, seed: int, relu: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes.expected_inputs()]
    return [np.maximum(a, 0.0) for a in arrays] if relu else arrays


def reference(inputs: list[np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        outputs = SearchTransfer()(*(torch.from_numpy(a) for a in inputs))
    return [o.numpy() for o in outputs]


def assert_matches_reference(inputs: list[np.ndarray], ref_chunk: int = 0) -> None:
    got = search_transfer_cpu(*inputs, ref_chunk=ref_chunk)
    want = reference(inputs)
    for name, g, w in zip(contract.OUTPUT_NAMES, got, want):
        assert g.shape == w.shape and g.dtype == np.float32, name
        assert np.abs(g - w).max() <= TOLERANCE, f"{name}: max abs diff {np.abs(g - w).max()}"


def relevance64(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(N, J, P) cosine relevance in float64."""
    ps = contract.PATCH_SIZE
    unfold = [F.normalize(F.unfold(torch.from_numpy(a).double(), ps, padding=ps // 2), dim=1,
                          eps=contract.NORM_EPS) for a in (q, k)]
    return torch.bmm(unfold[1].transpose(1, 2), unfold[0]).numpy()


def transfer_from_index(index: np.ndarray, value: np.ndarray, scale: int,
                        lr_size: tuple[int, int]) -> np.ndarray:
    """The reference block's texture transfer for a given (N, P) argmax."""
    ps = contract.PATCH_SIZE
    v_unf = F.unfold(torch.from_numpy(value), ps * scale, padding=scale, stride=scale)
    idx = torch.from_numpy(index).long().unsqueeze(1).expand(-1, v_unf.shape[1], -1)
    folded = F.fold(v_unf.gather(2, idx), (lr_size[0] * scale, lr_size[1] * scale),
                    ps * scale, padding=scale, stride=scale)
    return (folded / contract.FOLD_DIVISOR).numpy()


SHAPES = {
    "odd-nonsquare": Shapes(1, 8, 5, 7, 6, 4, 5, 3, 2),
    "ref-bigger": Shapes(1, 8, 4, 3, 9, 11, 5, 3, 2),
    "ref-smaller": Shapes(1, 8, 9, 10, 3, 2, 5, 3, 2),
    "batch2": Shapes(2, 16, 6, 5, 7, 6, 4, 3, 2),
    "lr-1x1": Shapes(1, 8, 1, 1, 4, 5, 5, 3, 2),
    "ref-1x1": Shapes(2, 8, 3, 4, 1, 1, 5, 3, 2),
    "both-1x1": Shapes(1, 8, 1, 1, 1, 1, 5, 3, 2),
    "both-2x2": Shapes(2, 8, 2, 2, 2, 2, 5, 3, 2),
    "one-row": Shapes(1, 4, 1, 9, 7, 1, 2, 2, 2),
    "ttsr-channels": Shapes(1, 256, 6, 5, 5, 7, 256, 128, 64),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_random_inputs_match_reference(name: str) -> None:
    assert_matches_reference(random_inputs(SHAPES[name], seed=len(name)))


@pytest.mark.parametrize("name", ["odd-nonsquare", "batch2", "ttsr-channels"])
def test_relu_like_inputs_match_reference(name: str) -> None:
    assert_matches_reference(random_inputs(SHAPES[name], seed=7, relu=True))


def test_lte_features_match_reference() -> None:
    torch.manual_seed(0)
    extractor = LTE().eval()
    # Smooth structure plus noise, so that features have real spatial texture.
    yy, xx = torch.meshgrid(torch.linspace(0, 6, 28), torch.linspace(0, 9, 36), indexing="ij")
    base = torch.stack([torch.sin(yy + xx), torch.cos(yy * 1.3), torch.sin(xx * 0.7)])
    lr_image = (0.5 + 0.4 * base + 0.05 * torch.randn(3, 28, 36)).clamp(0, 1)[None]
    ref_image = (0.5 + 0.4 * base.flip(2) + 0.05 * torch.randn(3, 28, 36)).clamp(0, 1)[None]
    ref_image = ref_image[:, :, :24, :32]
    with torch.no_grad():
        q = extractor(lr_image)[0]
        k = extractor(F.interpolate(F.interpolate(ref_image, scale_factor=0.25, mode="bicubic"),
                                    scale_factor=4, mode="bicubic"))[0]
        v3, v2, v1 = extractor(ref_image)
    inputs = [t.numpy().copy() for t in (q, k, v3, v2, v1)]
    assert inputs[0].shape == (1, 256, 7, 9) and inputs[1].shape == (1, 256, 6, 8)
    assert_matches_reference(inputs)


@pytest.mark.parametrize("ref_chunk", [1, 2, 7, 41])
def test_chunked_search_equals_single_chunk(ref_chunk: int) -> None:
    inputs = random_inputs(Shapes(2, 8, 5, 6, 8, 5, 3, 2, 2), seed=3)
    whole = search_transfer_cpu(*inputs)
    chunked = search_transfer_cpu(*inputs, ref_chunk=ref_chunk)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    assert_matches_reference(inputs, ref_chunk=ref_chunk)


# LR 460 and Ref 713 positions: a 1-byte budget gives Gram tiles of one grid row a side
# (20 x 23 GEMMs), 256 KiB several LR and Ref rows, ref_chunk 7 partial rows, 0 one GEMM.
TILED = Shapes(1, 16, 20, 23, 23, 31, 4, 3, 2)
TILINGS = [(0, 0), (1, 0), (256 << 10, 0), (1, 7), (200 << 10, 300), (1 << 30, 129)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_results_are_bit_identical_across_budgets_and_tile_shapes(dtype: type) -> None:
    inputs = [a.astype(dtype) for a in random_inputs(TILED, seed=21, relu=True)]
    tilings = {native.tile_sizes(TILED, dtype, ref_chunk, budget) for budget, ref_chunk in TILINGS}
    assert len(tilings) == len(TILINGS)  # each case really tiles differently
    assert (23, 31) in tilings and (460, 713) in tilings
    first = search_transfer_cpu(*inputs)
    for budget, ref_chunk in TILINGS:
        got = search_transfer_cpu(*inputs, ref_chunk=ref_chunk, budget=budget)
        for name, a, b in zip(contract.OUTPUT_NAMES, first, got):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} budget={budget} ref_chunk={ref_chunk}")
    if dtype == np.float32:
        assert_matches_reference(inputs)


def tiled_ref_inputs(seed: int) -> list[np.ndarray]:
    """Ref keys tiled three times across, so Ref columns 1, 4 and 7 hold identical patches."""
    rng = np.random.default_rng(seed)
    tile = rng.standard_normal((1, 6, 5, 3)).astype(np.float32)
    k = np.tile(tile, (1, 1, 1, 3))
    shapes = Shapes(1, 6, 5, 9, 5, 9, 3, 2, 2)
    _, _, v3, v2, v1 = random_inputs(shapes, seed + 1)
    return [k.copy(), k, v3, v2, v1]


@pytest.mark.parametrize(("ref_chunk", "budget"), [(0, 0), (4, 0), (0, 1), (5, 1)])
def test_exact_ties_pick_the_lowest_ref_index(ref_chunk: int, budget: int) -> None:
    inputs = tiled_ref_inputs(seed=11)
    q, k, v3, v2, v1 = inputs
    rel = relevance64(q, k)[0]
    best = rel.max(axis=0)
    tied = rel >= best - 1e-9
    lowest = tied.argmax(axis=0)
    highest = tied.shape[0] - 1 - tied[::-1].argmax(axis=0)
    assert (lowest != highest).sum() >= 10  # the case really has ties
    s, t3, t2, t1 = search_transfer_cpu(*inputs, ref_chunk=ref_chunk, budget=budget)
    np.testing.assert_allclose(s[0, 0].ravel(), best, atol=TOLERANCE)
    lr_size = (q.shape[2], q.shape[3])
    for got, value, scale in ((t3, v3, 1), (t2, v2, 2), (t1, v1, 4)):
        want = transfer_from_index(lowest[None], value, scale, lr_size)
        other = transfer_from_index(highest[None], value, scale, lr_size)
        assert np.abs(want - other).max() > 0.1  # the tie-break is visible in the texture
        assert np.abs(got - want).max() <= TOLERANCE


def test_all_zero_patches() -> None:
    shapes = Shapes(1, 4, 6, 7, 5, 6, 3, 2, 2)
    q, k, v3, v2, v1 = random_inputs(shapes, seed=5, relu=True)
    q[:, :, 2:, :] = 0.0   # LR rows 3.. have all-zero patches: relevance 0 everywhere
    k[:, :, :, :3] = 0.0   # Ref columns 0..1 have all-zero patches
    inputs = [q, k, v3, v2, v1]
    s = search_transfer_cpu(*inputs)[0]
    assert np.all(s[0, 0, 3:] == 0.0)
    assert_matches_reference(inputs)
    zero_q = [np.zeros_like(q), k, v3, v2, v1]
    s, t3, t2, t1 = search_transfer_cpu(*zero_q)
    assert np.all(s == 0.0)
    index = np.zeros((1, shapes.h * shapes.w), dtype=np.int64)  # all tied: Ref position 0
    assert np.abs(t1 - transfer_from_index(index, v1, 4, (shapes.h, shapes.w))).max() <= TOLERANCE
    assert_matches_reference(zero_q)


def test_float16_rounds_to_nearest_even() -> None:
    # One LR and one Ref position: t3 is exactly v3 / 9, so it shows the conversion alone.
    rng = np.random.default_rng(2)
    exponents = rng.integers(-30, 16, size=4096)
    v3 = (rng.uniform(1, 2, 4096) * 2.0 ** exponents * rng.choice([-1, 1], 4096))
    v3 = np.concatenate([v3, [65504.0, -65504.0, 0.0, 6e-8, 2.0 ** -24 * 9 * 1.5]])
    v3 = v3.astype(np.float16).reshape(1, -1, 1, 1)
    shapes = Shapes(1, 2, 1, 1, 1, 1, v3.shape[1], 2, 2)
    q, k, _, v2, v1 = (a.astype(np.float16) for a in random_inputs(shapes, seed=1))
    t3 = search_transfer_cpu(q, k, v3, v2, v1)[1]
    want = (v3.astype(np.float32) / np.float32(9.0)).astype(np.float16)
    # Compared as float32 (exact for float16 values), so only the sign of zero may differ.
    np.testing.assert_array_equal(t3.astype(np.float32), want.astype(np.float32))


def test_float16_argmax_agreement() -> None:
    # One LR position per image, so t3 = v3[:, idx] / 9 and one-hot values reveal idx.
    count, ck, hr, wr = 300, 32, 6, 6
    shapes = Shapes(count, ck, 1, 1, hr, wr, hr * wr, 2, 2)
    q, k, _, v2, v1 = random_inputs(shapes, seed=9, relu=True)
    one_hot = np.broadcast_to(np.eye(hr * wr, dtype=np.float32).reshape(1, hr * wr, hr, wr),
                              (count, hr * wr, hr, wr)).copy()
    inputs = [q, k, one_hot, v2, v1]
    want = search_transfer_cpu(*inputs)[1][:, :, 0, 0].argmax(axis=1)
    got = search_transfer_cpu(*(a.astype(np.float16) for a in inputs))[1][:, :, 0, 0]
    got = got.astype(np.float32).argmax(axis=1)
    rel = relevance64(q, k)[:, :, 0]
    assert np.array_equal(want, rel.argmax(axis=1))
    agreement = np.mean(got == want)
    # Where fp16 picks another position, it must be a near-tie in exact arithmetic.
    loss = rel.max(axis=1) - rel[np.arange(count), got]
    assert agreement >= 0.95, agreement
    assert loss.max() <= 5e-3, loss.max()


def test_float16_outputs_close_to_float32_reference() -> None:
    shapes = Shapes(1, 64, 8, 9, 7, 8, 16, 8, 4)
    inputs = [a.astype(np.float16) for a in random_inputs(shapes, seed=4, relu=True)]
    exact = [a.astype(np.float32) for a in inputs]
    want = reference(exact)
    got = [o.astype(np.float32) for o in search_transfer_cpu(*inputs)]
    assert np.abs(got[0] - want[0]).max() <= 2e-3  # s is a cosine in [-1, 1]
    # Away from near-ties (top-2 relevance gap < 1e-3, where fp16 may pick the
    # other position), textures differ only by fp16 rounding.
    rel = np.sort(relevance64(exact[0], exact[1])[0], axis=0)
    near_tie = torch.from_numpy((rel[-1] - rel[-2] < 1e-3).reshape(1, 1, shapes.h, shapes.w))
    touched = F.max_pool2d(near_tie.double(), 3, stride=1, padding=1)
    for g, w, scale in zip(got[1:], want[1:], contract.LEVEL_SCALES):
        clear = (F.interpolate(touched, scale_factor=scale) == 0).numpy()[0, 0]
        assert clear.mean() >= 0.5
        error = np.abs(g - w)[:, :, clear]
        assert error.max() <= 2e-3 * (1 + np.abs(w[:, :, clear])).max()


def test_worker_threads_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = random_inputs(TILED, seed=12)
    results = [search_transfer_cpu(*inputs, threads=threads, budget=1) for threads in (1, 2, 3)]
    monkeypatch.setenv("TTSR_ST_CPU_THREADS", "2")  # the default when threads is 0
    results.append(search_transfer_cpu(*inputs, budget=1))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    assert_matches_reference(inputs)


def test_bad_thread_count_rejected() -> None:
    inputs = random_inputs(Shapes(1, 2, 2, 2, 2, 2, 1, 1, 1), seed=0)
    with pytest.raises(ValueError, match="threads"):
        search_transfer_cpu(*inputs, threads=-1)
