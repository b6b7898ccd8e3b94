"""Group image pairs of equal LR and Ref size into batches that an engine profile accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ttsr.backends.profiles import Profile, Size, choose_profile


@dataclass(frozen=True)
class Batch:
    """Positions of a batch's pairs in the input list.

    Padding repeats the last real pair; only the first ``real`` outputs are kept.
    """

    indices: tuple[int, ...]
    real: int
    lr_size: Size
    ref_size: Size
    profile: int | None = None

    @property
    def size(self) -> int:
        return len(self.indices)


def plan_batches(sizes: Sequence[tuple[Size, Size]], batch_size: int,
                 profiles: Sequence[Profile] | None = None, pad_to_full: bool = False) -> list[Batch]:
    """Batches over ``sizes`` (one (LR size, Ref size) per pair), in first-seen order of sizes.

    With ``profiles`` (an engine's), each size group uses the first profile that
    accepts it: batches are capped at its max batch and padded up to its min
    batch.  ``pad_to_full`` also pads a short last batch to the full batch size,
    so that every call has one shape (a CUDA graph, or one TensorRT context shape).
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be >= 1")
    groups: dict[tuple[Size, Size], list[int]] = {}
    for index, key in enumerate(sizes):
        groups.setdefault(key, []).append(index)
    batches = []
    for (lr, ref), members in groups.items():
        cap, floor, chosen = batch_size, 1, None
        if profiles is not None:
            chosen = choose_profile(profiles, lr, ref)
            cap = min(batch_size, profiles[chosen].batch_max)
            floor = profiles[chosen].batch_min
        for start in range(0, len(members), cap):
            real = members[start:start + cap]
            target = max(floor, cap if pad_to_full else len(real))
            padded = real + [real[-1]] * (target - len(real))
            batches.append(Batch(tuple(padded), len(real), lr, ref, chosen))
    return batches
