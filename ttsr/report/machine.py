"""Where a run ran: CPU, GPU, library versions, threads and time, for the JSON report."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# Distributions whose versions decide the numbers; absent ones are recorded as None.
LIBRARIES = ("ttsr-trt", "torch", "numpy", "onnx", "onnxruntime", "pillow", "tensorrt-cu13", "tensorrt",
             "pycuda")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_details(gpu: dict[str, str] | None, threads: dict[str, int | None]) -> dict[str, Any]:
    """``gpu`` as the backend saw it (None without one); ``threads`` per library that was asked."""
    return {
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": {"model": cpu_model(), "logical_cores": os.cpu_count()},
        "gpu": gpu,
        "threads": threads,
        "libraries": library_versions(),
    }
