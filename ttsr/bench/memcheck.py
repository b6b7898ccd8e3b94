"""compute-sanitizer memcheck of the kernels on small odd shapes (FP32 and FP16, Ref chunk caps
0, 1 and 7, batch 2, 1x1 grids), on each relevance path (gram, gemm and fused).

:func:`run_memcheck` starts this module as a child under ``compute-sanitizer --tool memcheck``
and reads the sanitizer's verdict; the child (``python -m ttsr.bench.memcheck --library ...``)
only runs the kernels.  PyTorch's caching allocator is off in the child, so that every tensor
is its own allocation and an access past its end is caught, not hidden inside a cached block.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ttsr.bench.features import Case, make_inputs
from ttsr.plugin.torch_kernels import TorchKernels, open_cuda_kernels

REPO = Path(__file__).resolve().parents[2]
CASES = (
    Case(1, 5, 7, 3, 4, (16, 16, 8, 4)),
    Case(2, 3, 3, 2, 5, (8, 8, 4, 4)),
    Case(1, 1, 1, 1, 1, (4, 4, 4, 4)),
    Case(2, 9, 6, 11, 3, (32, 32, 16, 8)),
    Case(1, 7, 5, 6, 9),
)
REF_CHUNKS = (0, 1, 7)
RELEVANCE_PATHS = ("gram", "gemm", "fused")  # auto takes gram
DONE = "memcheck child: ran {} kernel calls"
_SUMMARY = re.compile(r"ERROR SUMMARY:\s*(\d+) error")


@dataclass
class MemcheckResult:
    status: str  # passed, failed, timed out, skipped
    errors: int | None = None
    calls: int = 0
    detail: list[str] = field(default_factory=list)  # the sanitizer's report, or why it did not run

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def line(self) -> str:
        if self.status == "passed":
            return f"memcheck: {self.calls} kernel calls, 0 errors"
        if self.status == "failed":
            found = "no verdict" if self.errors is None else f"{self.errors} errors"
            return f"memcheck FAILED: {found}"
        return f"memcheck {self.status}: {'; '.join(self.detail[-1:])}"

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "errors": self.errors, "kernel_calls": self.calls, "detail": self.detail}


def find_sanitizer() -> str | None:
    """compute-sanitizer on PATH, else next to nvcc, else in the usual CUDA prefix."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(nvcc).resolve().parent / "compute-sanitizer")
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(Path(home) / "bin" / "compute-sanitizer")
    return next((str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def sanitizer_command(sanitizer: str, python: str, library: Path) -> list[str]:
    # API errors are not counted: PyTorch's start-up probes of the driver API return errors by
    # design; a failed call of the kernels' own shows as the child's non-zero exit instead.
    return [sanitizer, "--tool", "memcheck", "--report-api-errors", "no", "--error-exitcode", "3",
            "--print-limit", "20", python, "-m", "ttsr.bench.memcheck", "--library", str(library)]


def verdict(returncode: int, output: str) -> MemcheckResult:
    """The sanitizer's verdict from its exit status and combined output."""
    lines = output.strip().splitlines()
    match = _SUMMARY.search(output)
    errors = int(match.group(1)) if match else None
    calls = 0
    for line in lines:
        found = re.fullmatch(DONE.format(r"(\d+)"), line.strip())
        if found:
            calls = int(found.group(1))
    if returncode == 0 and errors == 0 and calls > 0:
        return MemcheckResult("passed", 0, calls)
    # Errors, or a child that stopped early (a kernel error status, an exception): the tail says which.
    return MemcheckResult("failed", errors, calls, lines[-25:])


def run_memcheck(library: Path, timeout_s: float, python: str = sys.executable,
                 sanitizer: str | None = None) -> MemcheckResult:
    sanitizer = sanitizer or find_sanitizer()
    if sanitizer is None:
        return MemcheckResult("skipped", detail=["compute-sanitizer not found (PATH, next to nvcc, /usr/local/cuda)"])
    env = dict(os.environ, PYTORCH_NO_CUDA_MEMORY_CACHING="1",
               PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    # A session of its own, so that a timeout ends the sanitizer and the Python it runs together
    # (a stray child would hold the GPU through the benchmarks).
    with subprocess.Popen(sanitizer_command(sanitizer, str(python), library.resolve()), cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True) as child:
        try:
            output, _ = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            return MemcheckResult("timed out", detail=[f"no verdict within {timeout_s:g} s (--memcheck-timeout)"])
    return verdict(child.returncode, output)


def run_cases(kernels: TorchKernels, cases: Sequence[Case] = CASES, ref_chunks: Sequence[int] = REF_CHUNKS,
              seed: int = 0, device: str = "cuda", fp32: bool = True) -> int:
    """The child's work: every case, FP16 (and FP32 unless ``fp32`` is False), at every Ref chunk cap;
    returns the call count."""
    calls = 0
    for index, case in enumerate(cases):
        inputs32 = make_inputs(case, seed + index, device)
        half = tuple(t.half() for t in inputs32)
        for inputs in ((inputs32, half) if fp32 else (half,)):
            for ref_chunk in ref_chunks:
                kernels.prepare(inputs, ref_chunk)()
                if device == "cuda":
                    torch.cuda.synchronize()  # an asynchronous error surfaces at this call
                calls += 1
    return calls


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] != "--library":
        print("usage: python -m ttsr.bench.memcheck --library build/gpu-check/libttsr_st_cuda.so", file=sys.stderr)
        return 2
    calls = 0
    for relevance in RELEVANCE_PATHS:
        kernels = TorchKernels(open_cuda_kernels(Path(argv[1]), relevance=relevance))
        try:  # FP32 has the gram and gemm paths; fused falls back to gemm for it
            calls += run_cases(kernels, fp32=relevance != "fused")
        finally:
            kernels.close()
    print(DONE.format(calls), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
