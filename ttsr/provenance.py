"""What a graph or an engine was made from (the sha256 of a checkpoint, or the seed of the random model),
and the check that every command pairing one with weights runs before it compares them.

A graph of other weights than the reference's still runs and scores, only against the wrong model:
a release gate would measure nothing.  So a recorded source that differs from the weights at hand
is refused, and a graph or engine that records none is reported (it cannot be checked).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ttsr.atomic import file_sha256


class SourceMismatch(ValueError):
    """A graph or engine made from other weights than those given; the message is one line."""


@dataclass(frozen=True)
class Source:
    """A checkpoint's sha256, or the seed of the random stand-in model; neither when not recorded."""

    checkpoint_sha256: str | None = None
    seed: int | None = None

    @classmethod
    def of(cls, checkpoint: str | os.PathLike[str] | None, seed: int) -> "Source":
        """What a command's ``--checkpoint`` (when given) or else ``--seed`` stands for."""
        return cls(checkpoint_sha256=file_sha256(checkpoint)) if checkpoint is not None else cls(seed=seed)

    @property
    def known(self) -> bool:
        return self.checkpoint_sha256 is not None or self.seed is not None

    def describe(self) -> str:
        if self.checkpoint_sha256 is not None:
            return f"the checkpoint with sha256 {self.checkpoint_sha256[:12]}"
        if self.seed is not None:
            return f"the random model of seed {self.seed}"
        return "unrecorded weights"

    def options(self) -> str:
        """The command-line options that give these weights."""
        if self.checkpoint_sha256 is not None:
            return f"--checkpoint with sha256 {self.checkpoint_sha256[:12]}"
        return f"--seed {self.seed} and no --checkpoint"


def check_source(recorded: Source, given: Source, what: str) -> str | None:
    """SourceMismatch when ``what`` (e.g. "ONNX graph x.onnx") was made from other weights than ``given``;
    a warning line when it records no source; None when they match."""
    if not recorded.known:
        return (f"{what} records no checkpoint hash or seed, so it cannot be checked against "
                f"{given.describe()}; re-export it with `ttsr export` to record them")
    if recorded != given:
        raise SourceMismatch(f"{what} was made from {recorded.describe()}, but the weights given are "
                             f"{given.describe()}; pass {recorded.options()}, or the graph/engine of these weights")
    return None
