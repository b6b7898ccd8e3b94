"""Optimisation profiles: min/opt/max LR size, Ref size and batch -> input shapes.

TTSR has four inputs (:data:`ttsr.model.ttsr.INPUT_NAMES`): ``lq`` (N, 3, h, w),
``lq_up`` (N, 3, 4h, 4w), and ``ref`` / ``ref_downup`` (N, 3, hr, wr), where
(h, w) is the LR size and (hr, wr) the Ref image size (multiples of 4, because
the texture extractor pools twice and the search runs on the Ref grid / 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence, TypeVar

from ttsr.model.ttsr import INPUT_NAMES

Size = tuple[int, int]
T = TypeVar("T", Size, int)
Shape = tuple[int, ...]

SCALE = 4
REF_MULTIPLE = 4


class ProfileError(ValueError):
    """A profile that cannot be built or does not fit a request; the message is one line."""


def parse_size(text: str) -> Size:
    """``"40x32"`` -> (40, 32) as (height, width); ``"40"`` -> (40, 40)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not match:
        raise ProfileError(f"size {text!r} is not HxW or N (e.g. 40x32 or 40)")
    height = int(match.group(1))
    width = int(match.group(2)) if match.group(2) else height
    return height, width


def format_size(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def _ordered(name: str, low: Size | int, mid: Size | int, high: Size | int) -> None:
    axes = zip(*(v if isinstance(v, tuple) else (v,) for v in (low, mid, high)))
    if not all(a <= b <= c for a, b, c in axes):
        raise ProfileError(
            f"{name} must satisfy min <= opt <= max on every axis, got "
            f"min={_show(low)} opt={_show(mid)} max={_show(high)}")


def _show(value: Size | int) -> str:
    return format_size(value) if isinstance(value, tuple) else str(value)


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimisation profile in the user's terms."""

    lr_min: Size
    lr_opt: Size
    lr_max: Size
    ref_min: Size
    ref_opt: Size
    ref_max: Size
    batch_min: int = 1
    batch_opt: int = 1
    batch_max: int = 1

    def __post_init__(self) -> None:
        for name in ("lr_min", "lr_opt", "lr_max", "ref_min", "ref_opt", "ref_max"):
            size = getattr(self, name)
            if min(size) < 1:
                raise ProfileError(f"{name.replace('_', ' ')} {format_size(size)} must be positive")
        for name in ("ref_min", "ref_opt", "ref_max"):
            size = getattr(self, name)
            if size[0] % REF_MULTIPLE or size[1] % REF_MULTIPLE:
                raise ProfileError(
                    f"{name.replace('_', ' ')} {format_size(size)} must be a multiple of "
                    f"{REF_MULTIPLE} on both sides (the Ref is cropped to such a size)")
        if self.batch_min < 1:
            raise ProfileError(f"batch min {self.batch_min} must be >= 1")
        _ordered("LR size", self.lr_min, self.lr_opt, self.lr_max)
        _ordered("Ref size", self.ref_min, self.ref_opt, self.ref_max)
        _ordered("batch", self.batch_min, self.batch_opt, self.batch_max)

    def shapes(self) -> dict[str, tuple[Shape, Shape, Shape]]:
        """Input name -> (min, opt, max) shape, as TensorRT's ``set_shape`` takes them."""
        levels = (
            (self.batch_min, self.lr_min, self.ref_min),
            (self.batch_opt, self.lr_opt, self.ref_opt),
            (self.batch_max, self.lr_max, self.ref_max),
        )
        per_level = [input_shapes(n, lr, ref) for n, lr, ref in levels]
        return {name: (per_level[0][name], per_level[1][name], per_level[2][name])
                for name in INPUT_NAMES}

    def fits_sizes(self, lr: Size, ref: Size) -> bool:
        return (all(lo <= v <= hi for lo, v, hi in zip(self.lr_min, lr, self.lr_max))
                and all(lo <= v <= hi for lo, v, hi in zip(self.ref_min, ref, self.ref_max)))

    def fits(self, batch: int, lr: Size, ref: Size) -> bool:
        return self.batch_min <= batch <= self.batch_max and self.fits_sizes(lr, ref)

    def describe(self) -> str:
        return (f"LR {format_size(self.lr_min)}..{format_size(self.lr_max)}, "
                f"Ref {format_size(self.ref_min)}..{format_size(self.ref_max)}, "
                f"batch {self.batch_min}..{self.batch_max}")

    def to_dict(self) -> dict[str, list[int] | int]:
        return {
            "lr_min": list(self.lr_min), "lr_opt": list(self.lr_opt), "lr_max": list(self.lr_max),
            "ref_min": list(self.ref_min), "ref_opt": list(self.ref_opt), "ref_max": list(self.ref_max),
            "batch_min": self.batch_min, "batch_opt": self.batch_opt, "batch_max": self.batch_max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "Profile":
        try:
            sizes = {k: _pair(data[k]) for k in
                     ("lr_min", "lr_opt", "lr_max", "ref_min", "ref_opt", "ref_max")}
            batches = {k: _integer(data[k]) for k in ("batch_min", "batch_opt", "batch_max")}
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"malformed profile record {dict(data)!r}: {exc}") from None
        return cls(sizes["lr_min"], sizes["lr_opt"], sizes["lr_max"],
                   sizes["ref_min"], sizes["ref_opt"], sizes["ref_max"],
                   batches["batch_min"], batches["batch_opt"], batches["batch_max"])


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _pair(value: object) -> Size:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"expected [height, width], got {value!r}")
    return _integer(value[0]), _integer(value[1])


def input_shapes(batch: int, lr: Size, ref: Size) -> dict[str, Shape]:
    """The four input shapes for one call."""
    h, w = lr
    hr, wr = ref
    return {
        "lq": (batch, 3, h, w),
        "lq_up": (batch, 3, SCALE * h, SCALE * w),
        "ref": (batch, 3, hr, wr),
        "ref_downup": (batch, 3, hr, wr),
    }


def make_profile(lr: Sequence[Size | None], ref: Sequence[Size | None],
                 batch: Sequence[int | None]) -> Profile:
    """Build a profile from (min, opt, max) triples where missing values are filled in.

    A missing min or max takes opt; a missing opt takes max, then min.  At least one
    of each triple must be given.
    """
    def fill(triple: Sequence[T | None], what: str) -> tuple[T, T, T]:
        low, mid, high = triple
        mid = mid if mid is not None else (high if high is not None else low)
        if mid is None:
            raise ProfileError(f"give at least one of --min-{what}, --opt-{what}, --max-{what}")
        return (low if low is not None else mid, mid, high if high is not None else mid)

    lr_t = fill(lr, "lr")
    ref_t = fill(ref, "ref")
    batch_t = fill(batch, "batch")
    return Profile(*lr_t, *ref_t, *batch_t)


def choose_profile(profiles: Sequence[Profile], lr: Size, ref: Size, batch: int | None = None) -> int:
    """Index of the first profile that accepts these sizes (and batch, when given).

    ProfileError naming the engine's ranges when none does.
    """
    for index, profile in enumerate(profiles):
        if profile.fits_sizes(lr, ref) if batch is None else profile.fits(batch, lr, ref):
            return index
    ranges = "; ".join(p.describe() for p in profiles) or "no profiles"
    what = f"LR {format_size(lr)} with Ref {format_size(ref)}"
    if batch is not None:
        what = f"batch {batch} of {what}"
    raise ProfileError(
        f"{what} fits no engine profile ({ranges}); rebuild the engine with wider "
        f"--min/--max sizes or resize the inputs")


def check_graph_inputs(profile: Profile, graph_inputs: Mapping[str, Sequence[int | None]]) -> None:
    """Reject a profile that a graph with these input dims cannot take.

    ``graph_inputs`` maps input name -> dims, ``None`` for a dynamic dim.  A static
    dim must equal the profile's min and max; a missing input is an error.
    """
    missing = [name for name in INPUT_NAMES if name not in graph_inputs]
    if missing:
        raise ProfileError(
            f"the ONNX graph has no input(s) {', '.join(missing)}; expected {', '.join(INPUT_NAMES)} "
            f"(export it with `python -m ttsr.cli export`)")
    for name, (low, _, high) in profile.shapes().items():
        dims = list(graph_inputs[name])
        if len(dims) != len(low):
            raise ProfileError(f"graph input {name} has rank {len(dims)}, expected {len(low)}")
        for axis, dim in enumerate(dims):
            if dim is not None and not (low[axis] == dim == high[axis]):
                raise ProfileError(
                    f"graph input {name} has static dim {axis} = {dim}, but the profile asks for "
                    f"{low[axis]}..{high[axis]}; export with dynamic sizes or fix the profile to {dim}")
