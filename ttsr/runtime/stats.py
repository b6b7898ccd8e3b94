"""Latency statistics over inference calls, per input shape and batch size, with trtexec's names.

A p-th percentile is reported only when at least one sample lies above it, i.e. with
``n >= 100 / (100 - p)`` samples: p90 needs 10 calls, p95 20, p99 100.  Below that the
"percentile" would be the maximum under another name.  The median is reported from one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

PERCENTILES = (90, 95, 99)
# Stage keys a backend reports in ``last_stages``, and trtexec's names for them and for the whole call.
STAGES = ("h2d", "compute", "d2h")
TRTEXEC_NAMES = {"host": "Host Latency", "h2d": "H2D Latency", "compute": "GPU Compute Time",
                 "d2h": "D2H Latency"}
JSON_KEYS = {"host": "host_latency_ms", "h2d": "h2d_latency_ms", "compute": "gpu_compute_time_ms",
             "d2h": "d2h_latency_ms"}
PERCENTILE_RULE = ("p-th percentiles are nearest-rank and need n >= 100/(100-p) samples (p90: 10, p95: 20, p99: 100); "
                   "with fewer it is not reported")


def min_samples(percentile: float) -> int:
    """The fewest samples for which the ``percentile``-th percentile has a sample above it."""
    return math.ceil(100.0 / (100.0 - percentile) - 1e-9)


@dataclass(frozen=True)
class Summary:
    """Milliseconds per call: count, mean, median, min, max, and the percentiles enough samples allow.

    Percentiles are nearest-rank (numpy's ``inverted_cdf``: the smallest sample with at least p % of
    the samples at or below it), so that a reported p99 is a measured call, never the maximum
    blended with its neighbour; ``percentiles[p]`` is None when ``count`` is too small."""

    count: int
    mean: float
    median: float
    min: float
    max: float
    percentiles: dict[int, float | None]

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "Summary":
        if not samples_ms:
            raise ValueError("no latency samples to summarise")
        values = np.asarray(samples_ms, dtype=np.float64)
        percentiles = {p: (float(np.percentile(values, p, method="inverted_cdf")) if len(values) >= min_samples(p) else None)
                       for p in PERCENTILES}
        return cls(len(values), float(values.mean()), float(np.median(values)), float(values.min()),
                   float(values.max()), percentiles)

    def value(self, statistic: str) -> float | None:
        """``mean``, ``median``, ``min``, ``max`` or ``p90``/``p95``/``p99`` (None when too few samples)."""
        if statistic.startswith("p") and statistic[1:].isdigit():
            return self.percentiles.get(int(statistic[1:]))
        return float(getattr(self, statistic))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "median": self.median,
                **{f"p{p}": value for p, value in self.percentiles.items()}, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class Shape:
    """What one call ran: batch size (padding included), LR size and Ref size."""

    batch: int
    lr_size: tuple[int, int]
    ref_size: tuple[int, int]

    @property
    def label(self) -> str:
        """Also the key under which ``ttsr compare`` matches the shapes of two reports."""
        return (f"b{self.batch} {self.lr_size[0]}x{self.lr_size[1]}"
                f"/{self.ref_size[0]}x{self.ref_size[1]}")


@dataclass(frozen=True)
class Call:
    shape: Shape
    total_ms: float
    images: int  # real images, padding excluded
    stages: dict[str, float]
    warmup: bool
    start_ms: float  # since the first call began


@dataclass
class LatencyRecorder:
    """Collects every call, warm-up included (kept for the timeline, left out of the statistics)."""

    calls: list[Call] = field(default_factory=list)

    def add(self, shape: Shape, total_ms: float, images: int, stages: dict[str, float] | None = None,
            warmup: bool = False, start_ms: float = 0.0) -> None:
        self.calls.append(Call(shape, total_ms, images, dict(stages or {}), warmup, start_ms))

    def report(self) -> "LatencyReport":
        timed = [call for call in self.calls if not call.warmup]
        if not timed:
            raise ValueError("no timed calls to report")
        shapes = list(dict.fromkeys(call.shape for call in timed))
        groups = [Group.of(shape.label, shape, [c for c in timed if c.shape == shape]) for shape in shapes]
        return LatencyReport(groups, Group.of("all shapes", None, timed), list(self.calls))


@dataclass(frozen=True)
class Group:
    """The timed calls of one shape (or of all): host latency, the stages every call has, throughput."""

    label: str
    shape: Shape | None
    calls: int
    images: int
    host: Summary
    stages: dict[str, Summary]
    throughput_qps: float  # calls per second of summed call time, as trtexec counts queries
    throughput_images: float

    @classmethod
    def of(cls, label: str, shape: Shape | None, calls: Sequence[Call]) -> "Group":
        seconds = sum(call.total_ms for call in calls) / 1000.0
        images = sum(call.images for call in calls)
        stages = {stage: Summary.of([call.stages[stage] for call in calls]) for stage in STAGES
                  if all(stage in call.stages for call in calls)}
        return cls(label, shape, len(calls), images, Summary.of([call.total_ms for call in calls]), stages,
                   len(calls) / seconds if seconds > 0 else math.inf,
                   images / seconds if seconds > 0 else math.inf)

    def summaries(self) -> list[tuple[str, Summary]]:
        """(quantity key, summary): host latency first, then the stages in pipeline order."""
        return [("host", self.host)] + [(stage, self.stages[stage]) for stage in STAGES if stage in self.stages]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label}
        if self.shape is not None:
            data.update(batch=self.shape.batch, lr_size=list(self.shape.lr_size),
                        ref_size=list(self.shape.ref_size))
        data.update(calls=self.calls, images=self.images, throughput_qps=self.throughput_qps,
                    throughput_images_per_s=self.throughput_images)
        data.update({JSON_KEYS[key]: summary.to_dict() for key, summary in self.summaries()})
        return data


@dataclass(frozen=True)
class LatencyReport:
    shapes: list[Group]
    all: Group
    samples: list[Call]

    @property
    def calls(self) -> int:
        return self.all.calls

    @property
    def images(self) -> int:
        return self.all.images

    def groups(self) -> list[Group]:
        """One group per shape, then all shapes together when there is more than one shape."""
        return self.shapes + ([self.all] if len(self.shapes) > 1 else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "images": self.images,
            "warmup_calls": sum(call.warmup for call in self.samples),
            "percentile_rule": PERCENTILE_RULE,
            "names": "trtexec's: " + ", ".join(TRTEXEC_NAMES.values()),
            "all": self.all.to_dict(),
            "shapes": [group.to_dict() for group in self.shapes],
            "samples": [{"shape": call.shape.label, "ms": call.total_ms, "images": call.images,
                         "warmup": call.warmup, "start_ms": call.start_ms, **call.stages}
                        for call in self.samples],
        }

    def table(self) -> str:
        """One block of rows per shape (Host Latency, then the stages the backend times), calls counted."""
        stats = ["mean", "median"] + [f"p{p}" for p in PERCENTILES] + ["min", "max"]
        width = max(len(group.label) for group in self.groups())
        header = (f"{'shape (batch LR/Ref)':<{max(width, 20)}}  {'quantity (ms)':<17}{'calls':>6}"
                  + "".join(f"{s:>10}" for s in stats))
        lines = [header, "-" * len(header)]
        for group in self.groups():
            for index, (key, summary) in enumerate(group.summaries()):
                label = group.label if index == 0 else ""
                cells = "".join(_cell(summary.value(s)) for s in stats)
                lines.append(f"{label:<{max(width, 20)}}  {TRTEXEC_NAMES[key]:<17}{summary.count:>6}{cells}")
        lines.append("-" * len(header))
        for group in self.groups():
            lines.append(f"Throughput {group.label}: {group.throughput_qps:.2f} qps, "
                         f"{group.throughput_images:.2f} images/s ({group.images} images)")
        lines.append(f"'-': too few calls; {PERCENTILE_RULE}.")
        return "\n".join(lines)


def _cell(value: float | None) -> str:
    return f"{'-':>10}" if value is None else f"{value:>10.3f}"
