"""What every backend is: ``run(inputs) -> sr``, stage times of the last call, and ``close()``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ttsr.provenance import Source

if TYPE_CHECKING:
    from ttsr.backends.profiles import Profile
    from ttsr.data.prepare import ModelInputs


class BackendError(RuntimeError):
    """A backend that cannot be opened as asked; the message is one line naming the fix."""


class Backend(ABC):
    """One way to run TTSR.  Use it as a context manager (or call ``close()``) to free what it holds."""

    name: str
    last_stages: dict[str, float]  # stage -> ms of the last call, for backends that time stages
    # What the backend runs ("engine x.engine", "ONNX graph y.onnx") and the weights it was made from,
    # as far as the file records them: callers check them against the weights they compare with.
    artefact: str | None = None
    source: Source = Source()

    @abstractmethod
    def run(self, inputs: ModelInputs) -> np.ndarray:
        """SR output (N, 3, 4H, 4W) float32 in [-1, 1]."""

    @property
    def profiles(self) -> list[Profile] | None:
        """The size ranges this backend accepts (a TensorRT engine's profiles); None where any size runs."""
        return None

    def close(self) -> None:
        """Free device memory and the like; the default holds nothing that needs it."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
