"""The run's latency picture: every call in order (warm-up marked) and a histogram of the timed calls."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ttsr.report.panels import BACKGROUND, TEXT, font
from ttsr.runtime.stats import LatencyReport

WIDTH, HEIGHT = 920, 320
MARGIN = (62, 34, 16, 44)  # left, top, right, bottom of each plot area
WARMUP = (230, 120, 20)
WARMUP_BAND = (253, 236, 216)
TIMED = (31, 100, 180)
AXIS = (90, 90, 90)
GRID = (225, 225, 225)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    span = high - low if high > low else max(abs(high), 1.0)
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


@dataclass(frozen=True)
class Axes:
    """Maps data (x, y) into the pixel box [left, top, right, bottom], y upwards."""

    box: tuple[int, int, int, int]
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def point(self, x: float, y: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))

    def frame(self, draw: ImageDraw.ImageDraw, title: str, x_label: str, x_ticks: list[float],
              y_ticks: list[float]) -> None:
        """Grid, tick labels, border, ``title`` above (it names the y unit) and ``x_label`` below."""
        left, top, right, bottom = self.box
        small = font(11)
        for y in y_ticks:
            _, py = self.point(self.x_range[0], y)
            draw.line([(left, py), (right, py)], fill=GRID)
            text = f"{y:g}"
            draw.text((left - 6 - draw.textlength(text, font=small), py - 6), text, fill=TEXT, font=small)
        for x in x_ticks:
            px, _ = self.point(x, self.y_range[0])
            draw.line([(px, bottom), (px, bottom + 4)], fill=AXIS)
            text = f"{x:g}"
            draw.text((px - draw.textlength(text, font=small) / 2, bottom + 6), text, fill=TEXT, font=small)
        draw.rectangle(self.box, outline=AXIS)
        draw.text((left, top - 22), title, fill=TEXT, font=font(13))
        draw.text((left + (right - left - draw.textlength(x_label, font=small)) / 2, bottom + 22), x_label,
                  fill=TEXT, font=small)


def _timeline(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], report: LatencyReport) -> None:
    values = [call.total_ms for call in report.samples]
    warm = [call.warmup for call in report.samples]
    y_ticks = nice_ticks(0.0, max(values))
    axes = Axes(box, (-0.5, len(values) - 0.5), (0.0, y_ticks[-1]))
    axes.frame(draw, "Host Latency per call (ms)", "call (in run order)",
               [t for t in nice_ticks(0, max(len(values) - 1, 1)) if t <= len(values) - 1], y_ticks)
    if any(warm):
        # warm-up calls come first in a run: shade their stretch of the axis
        x_end, _ = axes.point(max(i for i, is_warm in enumerate(warm) if is_warm) + 0.5, 0)
        draw.rectangle([box[0] + 1, box[1] + 1, x_end, box[3] - 1], fill=WARMUP_BAND)
    for index, (value, is_warm) in enumerate(zip(values, warm)):
        x, y = axes.point(index, value)
        colour = WARMUP if is_warm else TIMED
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    legend = [(WARMUP, f"warm-up ({sum(warm)})"), (TIMED, f"timed ({len(warm) - sum(warm)})")]
    x = box[2]
    for colour, text in reversed(legend):  # right-aligned in the title row, clear of the data
        x -= draw.textlength(text, font=font(11)) + 14
        draw.ellipse([x, box[1] - 15, x + 6, box[1] - 9], fill=colour)
        draw.text((x + 9, box[1] - 19), text, fill=TEXT, font=font(11))
        x -= 10


def _histogram(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], report: LatencyReport) -> None:
    values = np.array([call.total_ms for call in report.samples if not call.warmup])
    bins = int(np.clip(math.ceil(math.sqrt(len(values))), 5, 40))
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low * 0.95, high * 1.05 + 1e-6
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    y_ticks = [t for t in nice_ticks(0, float(counts.max())) if t == int(t)]
    axes = Axes(box, (low, high), (0.0, y_ticks[-1]))
    axes.frame(draw, "Timed calls (count) by Host Latency", "Host Latency (ms)",
               [t for t in nice_ticks(low, high) if low <= t <= high], y_ticks)
    for count, left, right in zip(counts, edges[:-1], edges[1:]):
        if count:
            x0, y0 = axes.point(left, count)
            x1, y1 = axes.point(right, 0)
            draw.rectangle([x0 + 1, y0, max(x0 + 1, x1 - 1), y1], fill=TIMED)
    for name, value in (("mean", report.all.host.mean), ("p99", report.all.host.value("p99"))):
        if value is not None:
            x, _ = axes.point(value, 0)
            draw.line([(x, box[1]), (x, box[3])], fill=WARMUP if name == "p99" else TEXT, width=1)
            draw.text((x + 3, box[1] + 4 + (14 if name == "p99" else 0)), name, fill=TEXT, font=font(11))


def latency_plot(report: LatencyReport) -> Image.Image:
    """Left: every call in run order, warm-up calls in orange; right: histogram of the timed calls."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN
    half = WIDTH // 2
    _timeline(draw, (left, top, half - right, HEIGHT - bottom), report)
    _histogram(draw, (half + left, top, WIDTH - right, HEIGHT - bottom), report)
    return image
