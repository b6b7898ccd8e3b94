import numpy as np
import pytest
import torch
from PIL import Image

from ttsr.data import ModelInputs, prepare_eval, prepare_pair, resize_bicubic, to_image
from ttsr.model.ttsr import INPUT_NAMES


def photo_like(height, width, seed=0):
    """Smooth gradients plus noise, so that bicubic resizes are not trivial."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (height + width)], axis=-1)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def pillow_bicubic(image, width, height):
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def nchw(image, mean, std):
    return ((image.astype(np.float64) - mean) / std).transpose(2, 0, 1)[None]


@pytest.mark.parametrize("size, expected", [((10, 7), (3, 2)), ((6, 5), (2, 1)), ((2, 9), (1, 2))])
def test_resize_rounds_sizes_like_mmcv(size, expected):
    # int(x * 0.25 + 0.5): 10 -> 3, 7 -> 2, 6 -> 2, 5 -> 1, 2 -> 1, 9 -> 2.
    assert resize_bicubic(photo_like(*size), 0.25).shape == (*expected, 3)


def test_resize_to_nothing_is_an_error():
    with pytest.raises(ValueError, match="too small"):
        resize_bicubic(photo_like(1, 8), 0.25)


def test_prepare_eval_sizes_and_values():
    gt, ref = photo_like(32, 48, seed=1), photo_like(40, 60, seed=2)
    inputs, gt_out = prepare_eval(gt, ref)
    np.testing.assert_array_equal(gt_out, gt)
    assert inputs.batch == 1 and inputs.lr_size == (8, 12) and inputs.ref_size == (32, 48)
    lq = pillow_bicubic(gt, 12, 8)
    ref_cropped = ref[:32, :48]
    ref_downup = pillow_bicubic(pillow_bicubic(ref_cropped, 12, 8), 48, 32)
    expected = {"lq": nchw(lq, 127.5, 127.5), "lq_up": nchw(pillow_bicubic(lq, 48, 32), 0, 255),
                "ref": nchw(ref_cropped, 0, 255), "ref_downup": nchw(ref_downup, 0, 255)}
    for name, array in inputs.as_dict().items():
        assert array.dtype == np.float32 and array.flags.c_contiguous
        np.testing.assert_allclose(array, expected[name], rtol=0, atol=1e-7, err_msg=name)
    assert inputs.lq.min() >= -1 and inputs.lq.max() <= 1


def test_prepare_eval_pads_a_small_ref_with_zeros():
    gt, ref = photo_like(32, 48, seed=3), photo_like(20, 30, seed=4)
    inputs, _ = prepare_eval(gt, ref)
    padded = np.zeros_like(gt)
    padded[:20, :30] = ref
    np.testing.assert_allclose(inputs.ref, nchw(padded, 0, 255), atol=1e-7)
    ref_downup = pillow_bicubic(pillow_bicubic(padded, 12, 8), 48, 32)
    np.testing.assert_allclose(inputs.ref_downup, nchw(ref_downup, 0, 255), atol=1e-7)


def test_prepare_eval_rejects_gt_not_multiple_of_4():
    with pytest.raises(ValueError, match="crop it to 32x44"):
        prepare_eval(photo_like(34, 47), photo_like(32, 32))


def test_prepare_pair_crops_ref_to_multiples_of_4():
    lr, ref = photo_like(10, 7, seed=5), photo_like(90, 102, seed=6)
    inputs = prepare_pair(lr, ref)
    assert inputs.lr_size == (10, 7) and inputs.ref_size == (88, 100)
    assert inputs.lq_up.shape == (1, 3, 40, 28) and inputs.ref_downup.shape == (1, 3, 88, 100)
    cropped = ref[:88, :100]
    np.testing.assert_allclose(inputs.lq, nchw(lr, 127.5, 127.5), atol=1e-7)
    np.testing.assert_allclose(inputs.lq_up, nchw(pillow_bicubic(lr, 28, 40), 0, 255), atol=1e-7)
    np.testing.assert_allclose(inputs.ref, nchw(cropped, 0, 255), atol=1e-7)
    ref_downup = pillow_bicubic(pillow_bicubic(cropped, 25, 22), 100, 88)
    np.testing.assert_allclose(inputs.ref_downup, nchw(ref_downup, 0, 255), atol=1e-7)


def test_prepare_pair_smallest_sizes():
    inputs = prepare_pair(photo_like(1, 1), photo_like(4, 7))
    assert inputs.lr_size == (1, 1) and inputs.lq_up.shape == (1, 3, 4, 4) and inputs.ref_size == (4, 4)


@pytest.mark.parametrize("ref_size", [(3, 50), (50, 2)])
def test_prepare_pair_rejects_tiny_ref(ref_size):
    with pytest.raises(ValueError, match="at least 4 pixels"):
        prepare_pair(photo_like(8, 8), photo_like(*ref_size))


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8),
                                 np.zeros((8, 8, 3), np.float32)])
def test_prepare_rejects_non_rgb_uint8(bad):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        prepare_pair(bad, photo_like(8, 8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        prepare_eval(photo_like(8, 8), bad)


def test_model_inputs_reject_mismatched_grids():
    inputs = prepare_pair(photo_like(6, 5), photo_like(16, 20))
    fields = inputs.as_dict()
    with pytest.raises(ValueError, match="lq_up"):
        ModelInputs(**{**fields, "lq_up": fields["lq_up"][:, :, :-4]})
    with pytest.raises(ValueError, match="ref_downup"):
        ModelInputs(**{**fields, "ref_downup": fields["ref_downup"][:, :, :, :-4]})
    with pytest.raises(ValueError, match="multiples of 4"):
        ModelInputs(**{**fields, "ref": fields["ref"][:, :, :-2], "ref_downup": fields["ref_downup"][:, :, :-2]})


def test_as_torch_and_as_dict_follow_input_names():
    inputs = prepare_pair(photo_like(6, 5), photo_like(16, 20))
    assert tuple(inputs.as_dict()) == INPUT_NAMES
    for name, tensor in zip(INPUT_NAMES, inputs.as_torch()):
        assert tensor.dtype == torch.float32
        np.testing.assert_array_equal(tensor.numpy(), getattr(inputs, name))


def test_stack_concatenates_same_sizes_only():
    first = prepare_pair(photo_like(6, 5, seed=7), photo_like(16, 20, seed=8))
    second = prepare_pair(photo_like(6, 5, seed=9), photo_like(16, 20, seed=10))
    batch = ModelInputs.stack([first, second])
    assert batch.batch == 2
    for name in INPUT_NAMES:
        np.testing.assert_array_equal(getattr(batch, name)[1], getattr(second, name)[0])
    with pytest.raises(ValueError, match="different sizes"):
        ModelInputs.stack([first, prepare_pair(photo_like(6, 5), photo_like(16, 24))])
    with pytest.raises(ValueError, match="at least one"):
        ModelInputs.stack([])


def half_way_inputs():
    """Float32 model outputs whose mmediting steps ((x+1)/2*255 in float32) land exactly on n + 0.5."""
    found = {}
    for n in range(0, 255):
        unit = np.float32((n + 0.5) / 255)
        for _ in range(8):
            x = np.float32(unit * np.float32(2) - np.float32(1))
            if (x + np.float32(1)) / np.float32(2) * np.float32(255) == np.float32(n + 0.5):
                found[n] = x
                break
            unit = np.nextafter(unit, np.float32(1))
    return found


def test_to_image_rounds_half_to_even():
    cases = half_way_inputs()
    assert sum(n % 2 == 0 for n in cases) >= 5 and sum(n % 2 == 1 for n in cases) >= 5
    values = np.array(list(cases.values()), np.float32)
    image = to_image(np.broadcast_to(values, (3, 1, len(values))))
    expected = [n if n % 2 == 0 else n + 1 for n in cases]
    np.testing.assert_array_equal(image[0, :, 0], expected)


def test_to_image_clamps_and_lays_out_hwc():
    sr = np.zeros((1, 3, 2, 3), np.float32)
    sr[0, 0, 0, 0], sr[0, 1, 0, 1], sr[0, 2, 1, 2] = 1.7, -3.0, 1.0
    sr[0, 0, 1, 0] = -1.0
    image = to_image(torch.from_numpy(sr))
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8
    assert image[0, 0, 0] == 255 and image[0, 1, 1] == 0 and image[1, 2, 2] == 255 and image[1, 0, 0] == 0
    assert image[1, 1, 1] == 128  # x = 0 -> 127.5 -> 128 (even)
    np.testing.assert_array_equal(to_image(sr[0]), image)


def test_to_image_rejects_batches():
    with pytest.raises(ValueError, match="one image"):
        to_image(np.zeros((2, 3, 4, 4), np.float32))
