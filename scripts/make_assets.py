"""Regenerate the bundled test/demo image pairs in assets/pairs/{hr,lr,ref}/<name>.png.

Sources are photographs that scikit-image ships in its wheel (see assets/README.md for their
licences); scikit-image is a dev dependency, used only here.  Each HR and Ref is a Pillow
bicubic crop-and-resize of one photo (two views of the same scene, as in CUFED5); each LR is
the HR reduced x1/4 exactly as ttsr.data.prepare_eval does.  The output is deterministic.

    python scripts/make_assets.py [--out assets/pairs]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skimage_data

from ttsr.data import resize_bicubic, save_image

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets" / "pairs"


@dataclass(frozen=True)
class View:
    """A (left, top, right, bottom) box of the source photo resized to (width, height)."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]

    def render(self, photo: np.ndarray) -> np.ndarray:
        image = Image.fromarray(photo).resize(self.size, Image.Resampling.BICUBIC, box=self.box)
        return np.asarray(image)


@dataclass(frozen=True)
class PairSpec:
    name: str
    photo: str
    hr: View
    ref: View


PAIRS = (
    # The demo: square HR 160x160 (LR 40x40); the Ref is a wider view at a smaller scale, 144x176.
    PairSpec("demo", "astronaut", hr=View((96, 0, 416, 320), (160, 160)),
             ref=View((64, 32, 504, 392), (176, 144))),
    # Non-square HR 96x128; Ref larger than HR, 120x160.
    PairSpec("cat", "chelsea", hr=View((100, 40, 420, 280), (128, 96)),
             ref=View((40, 0, 440, 300), (160, 120))),
    # HR 128x128; Ref smaller than HR with sides not multiples of 4, 90x102.
    PairSpec("coffee", "coffee", hr=View((150, 0, 470, 320), (128, 128)),
             ref=View((100, 12, 540, 400), (102, 90))),
)


def make_assets(out: Path) -> None:
    for spec in PAIRS:
        photo = getattr(skimage_data, spec.photo)()
        hr = spec.hr.render(photo)
        images = {"hr": hr, "lr": resize_bicubic(hr, 0.25), "ref": spec.ref.render(photo)}
        for role, image in images.items():
            (out / role).mkdir(parents=True, exist_ok=True)
            save_image(out / role / f"{spec.name}.png", image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write hr/, lr/ and ref/ into")
    make_assets(parser.parse_args().out)


if __name__ == "__main__":
    main()
