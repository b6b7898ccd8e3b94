"""Reading and writing images as HxWx3 uint8 RGB arrays (Pillow, as mmediting's ``backend='pillow'``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ttsr.atomic import atomic_output
from ttsr.errors import first_line


class ImageError(ValueError):
    """An image file that cannot be read or written; the message names the file and the fix."""


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` as an HxWx3 uint8 RGB array, EXIF orientation applied (mmcv ``_pillow2array``)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} does not exist; give the path of an existing image file")
    try:
        with Image.open(path) as image:
            # Decoding is lazy: load() here so that truncated files fail inside this try.
            image.load()
            rgb = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageError(f"cannot read image {path} ({first_line(exc)}); give a valid PNG/JPEG/BMP/TIFF file") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an HxWx3 uint8 array to ``path`` (format from the suffix, PNG without one), atomically."""
    path = Path(path)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {tuple(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageError(f"cannot save {path}: expected an HxWx3 uint8 array, got {got}; "
                         f"convert it with ttsr.data.to_image first")
    suffix = path.suffix.lower() or ".png"
    image_format = Image.registered_extensions().get(suffix)
    if image_format is None or image_format not in Image.SAVE:
        raise ImageError(f"cannot save {path}: unknown image suffix {suffix!r}; use .png or .jpg")
    # JPEG's default quality (75) would blur away the detail super-resolution adds.
    options = {"quality": 95} if image_format == "JPEG" else {}
    if not path.parent.is_dir():
        raise ImageError(f"cannot save {path}: folder {path.parent} does not exist; create it first")
    try:
        with atomic_output(path) as temp, open(temp, "xb") as stream:
            Image.fromarray(np.ascontiguousarray(image)).save(stream, format=image_format, **options)
    except OSError as exc:
        raise ImageError(f"cannot save {path} ({exc.strerror or exc}); check the path and free space") from None
