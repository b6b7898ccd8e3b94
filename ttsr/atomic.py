"""File helpers: atomic output (write to a temporary name in the same folder, then rename over the
target, so a reader never sees a half-written file and a failed write leaves the target as it was),
output folders, and file hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on any exception it is removed.

    The caller creates the temporary file (``open(temp, "wb")``, ``onnx.save(proto, temp)``, ...).
    """
    path = Path(path)
    # A name, not tempfile.mkstemp: mkstemp creates the file with mode 0600, which the rename
    # would carry over to the output; a file the caller opens gets the umask's permissions.
    temp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as temp, open(temp, "xb") as stream:
        stream.write(data)


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf" or "nan"
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


def json_text(payload: Any) -> str:
    """``payload`` as strict JSON (indent 2, final newline).

    JSON has no infinity or NaN: such floats (the PSNR of identical images is inf) are written
    as the strings ``"inf"``, ``"-inf"`` and ``"nan"``, which ``float()`` reads back.
    """
    return json.dumps(_strict(payload), indent=2, allow_nan=False) + "\n"


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically as :func:`json_text`."""
    write_bytes_atomic(path, json_text(payload).encode("utf-8"))


def make_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """Create ``folder`` with its missing parents; returns those created, outermost first (for clean-up on failure)."""
    folder = Path(folder)
    created = [path for path in (*reversed(folder.parents), folder) if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return created


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file (the released checkpoints end in its first 8 digits)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
