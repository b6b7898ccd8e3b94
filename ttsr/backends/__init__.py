"""Backends, one module or folder each, and the registry through which every command opens them.

Each backend module provides ``open_backend(**options) -> Backend`` (raising :class:`BackendError`
with one line for what it knows can go wrong when opening), ``KNOWN_ERRORS`` (the exceptions of a
run whose message already names the problem), ``UNEXPECTED_HINT`` (what to do about any other)
and ``unavailable_reason() -> str | None`` (why it cannot run on this machine).  The registry below
names them; the module is imported only when the backend is used.  Adding a backend: its module
or folder under ``ttsr/backends/`` and one :class:`BackendSpec` line in ``BACKENDS``.

Use::

    from ttsr.backends import failure_message, known_errors, open_backend

    with open_backend("ort", onnx="out/ttsr.rewritten.onnx", threads=2) as backend:
        try:
            sr = backend.run(inputs)
        except known_errors("ort") as exc:
            raise SystemExit(failure_message("ort", exc))

``unavailable_reason(name)`` says why a backend cannot run here; ``choose_backend`` picks one from what
a command line asked for (an engine means trt, never a silent fallback), ``foreign_options`` finds the options a
backend does not take.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ttsr.backends.base import Backend, BackendError
from ttsr.errors import first_line


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str  # provides open_backend, KNOWN_ERRORS, UNEXPECTED_HINT, unavailable_reason
    summary: str
    options: tuple[str, ...]  # keyword options open_backend takes
    required: tuple[str, ...] = ()

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("trt", "ttsr.backends.trt", "TensorRT engine on an NVIDIA GPU",
                options=("engine", "plugin", "cuda_graph"), required=("engine",)),
    BackendSpec("ort", "ttsr.backends.ort",
                "ONNX Runtime on the CPU: the rewritten graph, its plugin node on the CPU twin",
                options=("onnx", "threads"), required=("onnx",)),
    BackendSpec("torch", "ttsr.backends.torch", "the PyTorch reference model on the CPU or a CUDA device",
                options=("model", "device", "search_transfer"), required=("model",)),
)}


def names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def spec(name: str) -> BackendSpec:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def open_backend(name: str, **options: Any) -> Backend:
    """The backend ``name`` opened with ``options`` (see ``BACKENDS`` for which it takes).

    BackendError with one line for an unknown name, an option the backend does not take, a
    required one missing, or a known reason why it cannot open.
    """
    backend = spec(name)
    foreign = foreign_options(name, options)
    if foreign:
        raise BackendError(f"backend {name} takes no option {', '.join(foreign)} "
                           f"(it takes {', '.join(backend.options)})")
    missing = [option for option in backend.required if options.get(option) is None]
    if missing:
        raise BackendError(f"backend {name} needs {', '.join(missing)}")
    opened: Backend = backend.load().open_backend(**options)
    return opened


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine; None when it can."""
    reason: str | None = spec(name).load().unavailable_reason()
    return reason


DEFAULT_BACKEND = "ort"  # runs anywhere this package is set up, on the graph TensorRT builds


def choose_backend(asked: str | None, given: Iterable[str]) -> tuple[str, str]:
    """The backend to run and how it was chosen: ``"asked"`` (``asked`` names it), ``"implied"`` (the
    options ``given`` hold the required ones of exactly one backend: an engine means trt, a graph ort),
    or ``"default"`` (:data:`DEFAULT_BACKEND`, when nothing names one: the only fallback there is).

    BackendError when ``asked`` is unknown or the options name several backends.
    """
    if asked is not None:
        return spec(asked).name, "asked"
    given = set(given)
    implied = [name for name, backend in BACKENDS.items()
               if backend.required and set(backend.required) <= given]
    if len(implied) > 1:
        options = " and ".join(sorted({option for name in implied for option in BACKENDS[name].required}))
        raise BackendError(f"{options} name different backends ({', '.join(implied)}); choose one")
    if implied:
        return implied[0], "implied"
    return DEFAULT_BACKEND, "default"


def foreign_options(name: str, given: Iterable[str]) -> list[str]:
    """The options in ``given`` that backend ``name`` does not take, in the order given."""
    takes = spec(name).options
    return [option for option in given if option not in takes]


def known_errors(name: str) -> tuple[type[Exception], ...]:
    """The exceptions of ``name``'s runs whose one-line message already names the problem."""
    errors: tuple[type[Exception], ...] = spec(name).load().KNOWN_ERRORS
    return errors


def failure_message(name: str, exc: BaseException) -> str:
    """One line for a failed run of backend ``name``: the known error's message, or its type and a hint."""
    if isinstance(exc, known_errors(name)):
        return f"{name} backend failed: {first_line(exc)}"
    return (f"{name} backend failed with {type(exc).__name__}: {first_line(exc)}; "
            f"{spec(name).load().UNEXPECTED_HINT}")


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "BackendError", "BackendSpec", "choose_backend",
           "failure_message", "foreign_options", "known_errors", "names", "open_backend", "spec",
           "unavailable_reason"]
