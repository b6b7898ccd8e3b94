"""The ``tritonserver`` that ``nvidia-pytriton`` ships, run as a child process over a model repository.

The Python backend runs each model instance in a stub process.  The wheel has one stub per Python minor
version, and each links ``libpython3.X.so.1.0`` by name only.  Left to the system loader cache, that
name can resolve to another build of the same minor version (here: Debian's 3.11.2 under a pyenv 3.11.7
venv), and the stub then runs one CPython's C core under the other's standard library; the first
``multiprocessing`` resource-tracker call fails with ``'_thread.RLock' object has no attribute
'_recursion_count'``.  The server therefore gets this interpreter's own library folder first on
``LD_LIBRARY_PATH``, and its ``bin`` first on ``PATH`` (the stub takes ``sys.prefix``, and so the
venv's packages, from the ``python`` it finds there).  The stubs check at start-up that they run the
version this process runs (:func:`ttsr.serve.models.check_python`).
"""

from __future__ import annotations

import collections
import importlib.util
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

INSTALL_HINT = ("run bash scripts/setup.sh (it installs the serve extra and nvidia-pytriton==0.7.0 with "
                "--no-deps)")
LOG_LEVELS = ("error", "warning", "info", "verbose")
_LOG_FLAGS = {
    "error": ["--log-info=false", "--log-warning=false"],
    "warning": ["--log-info=false"],
    "info": [],
    "verbose": ["--log-verbose=1"],
}


# What tritonserver logs on every start without a GPU; never the reason a start failed.
_CPU_ONLY_NOISE = ("CudaDriverHelper", "NVML", "DCGM", "pinned memory")


class ServeError(RuntimeError):
    """The server cannot be set up or did not come up; the message is one line."""


@dataclass(frozen=True)
class TritonInstall:
    """Where nvidia-pytriton keeps the server, its libraries and the Python backend."""

    server: Path
    libraries: Path
    python_backend: Path
    stub: Path


def find_triton() -> TritonInstall:
    # Located, not imported: only its server binaries are used, and its Python code would need
    # packages (and a numpy < 2) this project does not install.
    found = importlib.util.find_spec("pytriton")
    if found is None or found.origin is None:
        raise ServeError(f"nvidia-pytriton is not installed; {INSTALL_HINT}")
    root = Path(found.origin).parent
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(server=root / "tritonserver" / "bin" / "tritonserver",
                            libraries=root.parent / "nvidia_pytriton.libs",
                            python_backend=root / "tritonserver" / "backends" / "python",
                            stub=root / "tritonserver" / "python_backend_stubs" / version
                            / "triton_python_backend_stub")
    if not install.server.is_file():
        raise ServeError(f"{install.server} is missing; reinstall nvidia-pytriton ({INSTALL_HINT})")
    if not install.stub.is_file():
        raise ServeError(f"nvidia-pytriton has no Python-backend stub for Python {version}; run ttsr "
                         f"under one of the versions in {install.stub.parents[1]}")
    return install


def python_library_dir() -> Path:
    """The folder holding this interpreter's shared ``libpython3.X.so.1.0``, which the stub must load."""
    name = f"libpython{sys.version_info.major}.{sys.version_info.minor}.so.1.0"
    folder = Path(sysconfig.get_config_var("LIBDIR") or "")
    if not (folder / name).is_file():
        raise ServeError(f"this Python ({sys.executable}) has no shared {name} in {folder}; the Triton "
                         f"Python backend needs one: use a Python built with --enable-shared")
    return folder


def make_backend_dir(install: TritonInstall, workdir: Path) -> Path:
    """A backend folder whose ``python`` backend has the stub for this Python (links, nothing copied)."""
    python = workdir / "backends" / "python"
    python.mkdir(parents=True, exist_ok=True)
    for source in (*install.python_backend.glob("*.so"), *install.python_backend.glob("*.py"), install.stub):
        (python / source.name).symlink_to(source)
    return python.parent


def server_env(install: TritonInstall) -> dict[str, str]:
    env = dict(os.environ)
    libraries = [str(python_library_dir()), str(install.libraries)]
    if env.get("LD_LIBRARY_PATH"):
        libraries.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
    env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env.get("PATH", "")])
    return env


@dataclass(frozen=True)
class ServerOptions:
    repository: Path
    address: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    log_level: str = "info"
    gpu_metrics: bool = False
    exit_timeout_s: int = 30

    @property
    def http_url(self) -> str:
        return f"http://{_host(self.address)}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_host(self.address)}:{self.metrics_port}/metrics"


def _host(address: str) -> str:
    """Where a local client reaches a server bound to ``address``."""
    return "127.0.0.1" if address in ("0.0.0.0", "") else address


def server_command(install: TritonInstall, options: ServerOptions, backends: Path) -> list[str]:
    return [
        str(install.server), f"--model-repository={options.repository}", f"--backend-directory={backends}",
        f"--http-address={options.address}", f"--http-port={options.http_port}",
        f"--grpc-address={options.address}", f"--grpc-port={options.grpc_port}",
        f"--metrics-address={options.address}", f"--metrics-port={options.metrics_port}",
        f"--allow-gpu-metrics={str(options.gpu_metrics).lower()}",
        f"--exit-timeout-secs={options.exit_timeout_s}",
        # The stubs talk to the server through shared memory regions named by this prefix; a
        # per-process prefix keeps servers started side by side (tests, CI) apart.
        f"--backend-config=python,shm-region-prefix-name=ttsr{os.getpid()}_",
        *_LOG_FLAGS[options.log_level],
    ]


class TritonServer:
    """A running ``tritonserver``: its output goes to ``echo`` line by line, the last lines are kept
    for error messages.  It runs in its own session, so a terminal's Ctrl-C reaches it only through
    :meth:`stop` (one orderly shutdown, however the signal came).  SIGTERM, not SIGINT: a shell starts
    background jobs with SIGINT ignored, and tritonserver inherits that until it sets up its handlers."""

    def __init__(self, install: TritonInstall, options: ServerOptions, backends: Path,
                 echo: Callable[[str], None]) -> None:
        self.options = options
        self._tail: collections.deque[str] = collections.deque(maxlen=200)
        self._echo = echo
        self.process = subprocess.Popen(server_command(install, options, backends), env=server_env(install),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        errors="replace", start_new_session=True)
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._tail.append(line.rstrip("\n"))
            self._echo(line.rstrip("\n"))

    def errors(self) -> list[str]:
        """The server's model-load failures, else its other error lines (Triton starts them with ``E``),
        else its last lines; without the CUDA/NVML/DCGM complaints every CPU-only start makes."""
        lines = [line for line in self._tail if not any(noise in line for noise in _CPU_ONLY_NOISE)]
        return ([line for line in lines if "failed to load" in line]
                or [line for line in lines if line.startswith("E") or "error" in line.lower()] or lines[-5:])

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the server reports ready; ServeError if it exits or takes longer than ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        url = f"{self.options.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise ServeError(f"tritonserver exited with status {self.process.returncode} while starting: "
                                 + " | ".join(self.errors()))
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise ServeError(f"tritonserver was not ready after {timeout_s:g} s: " + " | ".join(self.errors()))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Ask the server to finish in-flight requests and exit; kill it if it is still there after
        its exit timeout plus a margin.  Returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=self.options.exit_timeout_s + 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode
