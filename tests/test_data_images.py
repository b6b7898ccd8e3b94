import numpy as np
import pytest
from PIL import Image

from ttsr.data import ImageError, load_image, save_image


def two_colour_image(height=16, width=32):
    """Left half red, right half blue: large flat areas survive JPEG."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2, 0] = 255
    image[:, width // 2:, 2] = 255
    return image


def is_red(pixel):
    return pixel[0] > 200 and pixel[2] < 60


def is_blue(pixel):
    return pixel[2] > 200 and pixel[0] < 60


@pytest.mark.parametrize("orientation", [1, 6])
def test_load_applies_exif_orientation(tmp_path, orientation):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(two_colour_image()).save(path, quality=95, exif=exif)
    image = load_image(path)
    if orientation == 1:
        assert image.shape == (16, 32, 3)
        assert is_red(image[8, 4]) and is_blue(image[8, 28])
    else:
        # Orientation 6 is displayed turned 90 degrees clockwise: the left (red) half goes to the top.
        assert image.shape == (32, 16, 3)
        assert is_red(image[4, 8]) and is_blue(image[28, 8])


def test_load_grey_and_rgba_give_rgb(tmp_path):
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    rgba = np.dstack([two_colour_image(), np.full((16, 32), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    loaded_grey = load_image(tmp_path / "grey.png")
    assert loaded_grey.dtype == np.uint8 and loaded_grey.shape == (12, 10, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded_grey[..., channel], grey)
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png"), two_colour_image())


@pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
def test_load_corrupt_file_is_one_line_image_error(tmp_path, content):
    path = tmp_path / "broken.png"
    if content == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(path)
        content = path.read_bytes()[:400]
    path.write_bytes(content)
    with pytest.raises(ImageError) as error:
        load_image(path)
    message = str(error.value)
    assert "broken.png" in message and "\n" not in message


def test_load_missing_file(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "absent.png")


@pytest.mark.parametrize("name", ["out.png", "out", "out.bmp"])
def test_save_round_trip_leaves_only_the_file(tmp_path, name):
    image = np.random.default_rng(1).integers(0, 256, (9, 13, 3), np.uint8)
    save_image(tmp_path / name, image)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    np.testing.assert_array_equal(load_image(tmp_path / name), image)


def test_save_gives_the_permissions_of_a_plain_new_file(tmp_path):
    save_image(tmp_path / "out.png", two_colour_image())
    (tmp_path / "plain").write_bytes(b"")
    assert (tmp_path / "out.png").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_save_jpeg_by_suffix(tmp_path):
    save_image(tmp_path / "out.jpg", two_colour_image())
    with Image.open(tmp_path / "out.jpg") as saved:
        assert saved.format == "JPEG"


def test_save_failure_leaves_no_file(tmp_path):
    target = tmp_path / "taken.png"
    target.mkdir()
    with pytest.raises(ImageError, match="taken.png"):
        save_image(target, two_colour_image())
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]
    assert not any(target.iterdir())


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_save_rejects_non_rgb_uint8(tmp_path, bad):
    with pytest.raises(ImageError, match="HxWx3 uint8"):
        save_image(tmp_path / "out.png", bad)
    assert not any(tmp_path.iterdir())


def test_save_rejects_unknown_suffix_and_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="suffix"):
        save_image(tmp_path / "out.xyz", two_colour_image())
    with pytest.raises(ImageError, match="does not exist"):
        save_image(tmp_path / "missing" / "out.png", two_colour_image())
    assert not any(tmp_path.iterdir())
