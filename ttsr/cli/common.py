"""What several commands share: the PyTorch model from --checkpoint or --seed, and HxW size options."""

from __future__ import annotations

from pathlib import Path

import click

from ttsr.backends.profiles import ProfileError, Size, parse_size
from ttsr.model import TTSR, CheckpointError, build_model, load_checkpoint


def load_model(checkpoint: Path | None, seed: int = 0, device: str = "cpu") -> tuple[TTSR, str]:
    """The TTSR of ``checkpoint`` (random weights from ``seed`` without one) on ``device``, and a line saying which.

    An unusable checkpoint becomes a :class:`click.ClickException` with the checkpoint loader's one-line message.
    """
    if checkpoint is None:
        return build_model(seed=seed).to(device), (
            f"No --checkpoint: using a seeded random TTSR (seed {seed}); its images are noise-like, "
            f"good for testing the pipeline only")
    try:
        return load_checkpoint(checkpoint, map_location=device), f"Model: PyTorch TTSR from {checkpoint}"
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None


def size_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Size | None:
    """click callback: ``HxW`` or ``N`` -> (height, width), a bad value -> a usage error naming the option."""
    if value is None:
        return None
    try:
        return parse_size(value)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
