"""The files a run writes: checked and made before any model runs, removed again if the run fails."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from ttsr.atomic import atomic_output, json_text, make_folders, write_bytes_atomic, write_json_atomic

class OutputError(ValueError):
    """An output path that cannot be written; the message names it and the fix."""


def _probe(folder: Path, option: str) -> None:
    """Write and remove a file in ``folder``: permissions, read-only mounts and full disks all show here."""
    probe = folder / f".ttsr-write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{option} {folder}: cannot write there ({exc.strerror}); choose a writable "
                          f"folder") from None


class Outputs:
    """Files and folders this run creates, in creation order; :meth:`remove` undoes them."""

    def __init__(self) -> None:
        self.created: list[Path] = []

    def folder(self, path: Path, option: str) -> None:
        """Make ``path`` (and its parents) for ``option`` and check that it takes files."""
        if path.exists() and not path.is_dir():
            raise OutputError(f"{option} {path} is a file; give a folder (it is created when missing)")
        try:
            self.created.extend(make_folders(path))
        except OSError as exc:
            raise OutputError(f"{option} {path}: cannot create the folder ({exc.strerror}); choose another "
                              f"path") from None
        _probe(path, option)

    def file_target(self, path: Path, option: str) -> None:
        """Check that ``path`` can become a file: not a folder, its folder made and writable."""
        if path.is_dir():
            raise OutputError(f"{option} {path} is a folder; give a file name such as {path / 'report.json'}")
        if path.parent.exists() and not path.parent.is_dir():
            raise OutputError(f"{option} {path}: {path.parent} is a file, not a folder; choose another path")
        self.folder(path.parent, option)

    def _track(self, path: Path) -> bool:
        return not path.exists()

    def png(self, path: Path, image: Image.Image | Any) -> None:
        new = self._track(path)
        picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
        with atomic_output(path) as temp:
            picture.save(temp, format="PNG")
        if new:
            self.created.append(path)

    def text(self, path: Path, text: str) -> None:
        new = self._track(path)
        write_bytes_atomic(path, text.encode("utf-8"))
        if new:
            self.created.append(path)

    def json(self, path: Path, data: dict[str, Any]) -> None:
        """``path`` ``-`` writes to standard output."""
        if is_stdout(path):
            sys.stdout.write(json_text(data))
            sys.stdout.flush()
            return
        new = self._track(path)
        write_json_atomic(path, data)
        if new:
            self.created.append(path)

    def remove(self) -> None:
        for path in reversed(self.created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self.created.clear()


def is_stdout(path: Path | None) -> bool:
    """``-`` as a file name means standard output."""
    return path is not None and os.fspath(path) == "-"
