"""Latency statistics over timed inference calls, as trtexec reports them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

STAGES = ("h2d", "compute", "d2h")


@dataclass(frozen=True)
class Summary:
    """Milliseconds per call: mean, median, p90, p99 (linear interpolation), min, max."""

    mean: float
    median: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "Summary":
        if not samples_ms:
            raise ValueError("no latency samples to summarise")
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(float(values.mean()), float(p50), float(p90), float(p99),
                   float(values.min()), float(values.max()))


@dataclass
class LatencyRecorder:
    """Collects one sample per timed call: its wall time, batch size and per-stage times."""

    total_ms: list[float] = field(default_factory=list)
    images: list[int] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def add(self, total_ms: float, images: int, stages: dict[str, float] | None = None) -> None:
        """``images`` counts the real images of the call (padding excluded)."""
        self.total_ms.append(total_ms)
        self.images.append(images)
        for stage, value in (stages or {}).items():
            self.stages_ms[stage].append(value)

    def report(self) -> "LatencyReport":
        seconds = sum(self.total_ms) / 1000.0
        stages = {stage: Summary.of(values) for stage, values in self.stages_ms.items()
                  if values and len(values) == len(self.total_ms)}
        return LatencyReport(
            calls=len(self.total_ms),
            images=sum(self.images),
            total=Summary.of(self.total_ms),
            throughput=sum(self.images) / seconds if seconds > 0 else float("inf"),
            stages=stages,
        )


@dataclass(frozen=True)
class LatencyReport:
    calls: int
    images: int
    total: Summary
    throughput: float  # images per second over the timed calls
    stages: dict[str, Summary]

    def to_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "images": self.images,
            "latency_ms": asdict(self.total),
            "throughput_images_per_s": self.throughput,
            "stages_ms": {name: asdict(summary) for name, summary in self.stages.items()},
        }

    def table(self) -> str:
        """A fixed-width table: one row per measured quantity, one column per statistic."""
        header = f"{'latency (ms)':<14}{'mean':>10}{'median':>10}{'p90':>10}{'p99':>10}{'min':>10}{'max':>10}"
        rows = [("per call", self.total)] + [(name, self.stages[name]) for name in STAGES
                                             if name in self.stages]
        lines = [header, "-" * len(header)]
        for name, s in rows:
            lines.append(f"{name:<14}{s.mean:>10.3f}{s.median:>10.3f}{s.p90:>10.3f}"
                         f"{s.p99:>10.3f}{s.min:>10.3f}{s.max:>10.3f}")
        lines.append("-" * len(header))
        lines.append(f"{self.calls} timed calls, {self.images} images, "
                     f"throughput {self.throughput:.2f} images/s")
        return "\n".join(lines)
