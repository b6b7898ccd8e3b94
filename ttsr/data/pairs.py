"""Pairs of LR and Ref images (and optionally HR ground truth) from folders or a list file."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


class PairError(ValueError):
    """Images that cannot be paired; the message names them and the fix."""


@dataclass
class Pair:
    """One super-resolution job; ``name`` (the LR file stem) names its outputs."""

    name: str
    lr: Path
    ref: Path
    hr: Path | None = None


def _images_by_stem(folder: Path, role: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise PairError(f"{role} folder {folder} does not exist; give an existing folder of images")
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in images:
            raise PairError(f"{role} folder has two images named {path.stem!r} ({images[path.stem].name}, "
                            f"{path.name}); keep one")
        images[path.stem] = path
    if not images:
        raise PairError(f"{role} folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def _names(stems: set[str], limit: int = 5) -> str:
    shown = sorted(stems)[:limit]
    return ", ".join(shown) + (f" and {len(stems) - limit} more" if len(stems) > limit else "")


def find_pairs(lr_dir: str | os.PathLike, ref_dir: str | os.PathLike,
               hr_dir: str | os.PathLike | None = None) -> list[Pair]:
    """Pair the images of the folders by file stem (``a.png`` with ``a.jpg``); every image must have its partners."""
    folders = {"LR": Path(lr_dir), "Ref": Path(ref_dir)}
    if hr_dir is not None:
        folders["HR"] = Path(hr_dir)
    found = {role: _images_by_stem(folder, role) for role, folder in folders.items()}
    everywhere = set.intersection(*(set(images) for images in found.values()))
    for role, images in found.items():
        unmatched = set(images) - everywhere
        if unmatched:
            others = " and ".join(other for other in found if other != role)
            raise PairError(f"{role} images without a partner in the {others} folder(s): {_names(unmatched)}; "
                            f"give every image the same file stem in each folder")
    return [Pair(name=stem, lr=found["LR"][stem], ref=found["Ref"][stem],
                 hr=found["HR"][stem] if "HR" in found else None)
            for stem in sorted(everywhere)]


def read_pair_list(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Pair]:
    """Read a text file of ``lr ref [hr]`` lines (paths relative to ``root``, by default the file's folder).

    ``#`` starts a comment; paths with spaces can be quoted.  Pairs are named by their LR file stem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairError(f"cannot read pair list {path} ({exc}); give a UTF-8 text file") from None
    base = Path(root) if root is not None else path.parent
    pairs: list[Pair] = []
    names: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            fields = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PairError(f"{where}: {exc}; check the quotes") from None
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise PairError(f"{where}: expected 'lr ref [hr]', got {len(fields)} fields")
        files = [base / field for field in fields]
        for file in files:
            if not file.is_file():
                raise PairError(f"{where}: {file} does not exist; paths are relative to {base}")
        name = files[0].stem
        if name in names:
            raise PairError(f"{where}: LR name {name!r} is already used on line {names[name]}; "
                            f"outputs would overwrite each other, rename one")
        names[name] = number
        pairs.append(Pair(name=name, lr=files[0], ref=files[1], hr=files[2] if len(files) == 3 else None))
    if not pairs:
        raise PairError(f"pair list {path} holds no pairs; write one 'lr ref [hr]' line per pair")
    return pairs
