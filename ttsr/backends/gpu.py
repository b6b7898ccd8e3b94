"""Which NVIDIA GPU is here, if any (name and compute capability)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "8.6"


def detect_gpu(device: int = 0) -> GpuInfo | None:
    """The GPU ``device``, from pycuda when installed, else from ``nvidia-smi``; None without one."""
    try:
        import pycuda.driver as cuda
    except ImportError:
        return _from_nvidia_smi(device)
    try:
        cuda.init()
        if cuda.Device.count() <= device:
            return None
        gpu = cuda.Device(device)
        major, minor = gpu.compute_capability()
        return GpuInfo(gpu.name(), f"{major}.{minor}")
    except cuda.Error:
        return None


def _from_nvidia_smi(device: int) -> GpuInfo | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", f"--id={device}", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ""
    name, _, capability = line.rpartition(",")
    if not name or not capability.strip():
        return None
    return GpuInfo(name.strip(), capability.strip())
