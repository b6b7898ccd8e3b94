"""``ttsr compare``: two infer reports (say, last release and this build), per image and aggregate
deltas of PSNR/SSIM and of latency per shape, with the changes beyond the limits flagged."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttsr.report.table import number, render

LATENCY_STATISTICS = ("mean", "median", "p99")
SCORE_TITLES = {"vs_reference": "vs reference", "vs_hr": "vs HR"}


class CompareError(ValueError):
    """A report that cannot be compared; the message names the file and the problem."""


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CompareError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompareError(f"{path} is not JSON ({exc}); give the --json file of an infer run") from None
    if not isinstance(data, dict) or not {"images", "latency"} <= set(data) or "shapes" not in data["latency"]:
        raise CompareError(f"{path} is not an infer report of this version (no images / latency per shape); "
                           f"make it with infer.py --json")
    return data


@dataclass(frozen=True)
class Delta:
    quantity: str
    subject: str
    a: float | None
    b: float | None
    relative: bool  # change in % of A (latency) instead of B - A (scores)
    limit: float | None  # the largest allowed regression, in the change's unit
    digits: int = 2

    @property
    def change(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        if self.relative:
            return (self.b - self.a) / self.a * 100.0 if self.a > 0 else math.nan
        if math.isinf(self.a) and self.a == self.b:
            return 0.0  # identical images in both runs
        return self.b - self.a

    @property
    def regression(self) -> float | None:
        """How much worse B is than A: slower (latency %) or lower (score)."""
        change = self.change
        return None if change is None else (change if self.relative else -change)

    @property
    def failed(self) -> bool:
        regression = self.regression
        return self.limit is not None and regression is not None and regression > self.limit

    def cells(self) -> list[str]:
        change = self.change
        if change is None:
            shown = "-"
        elif self.relative:
            shown = f"{change:+.1f} %"
        else:
            shown = number(change, self.digits) if math.isinf(change) else f"{change:+.{self.digits}f}"
        limit = "" if self.limit is None else (f"+{self.limit:g} %" if self.relative else f"-{self.limit:g}")
        return [self.quantity, self.subject, number(self.a, self.digits), number(self.b, self.digits), shown,
                limit, "" if self.limit is None else ("FAIL" if self.failed else "pass")]

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "subject": self.subject, "a": self.a, "b": self.b,
                "change": self.change, "unit": "%" if self.relative else "absolute", "limit": self.limit,
                "failed": self.failed}


def _value(value: Any) -> float | None:
    return None if value is None else float(value)


def _score_deltas(subject: str, a: dict[str, Any], b: dict[str, Any], max_psnr_drop: float | None) -> list[Delta]:
    deltas = []
    for key, title in SCORE_TITLES.items():
        if key in a and key in b:
            deltas.append(Delta(f"PSNR {title} (dB)", subject, _value(a[key]["psnr"]), _value(b[key]["psnr"]),
                                False, max_psnr_drop))
            deltas.append(Delta(f"SSIM {title}", subject, _value(a[key]["ssim"]), _value(b[key]["ssim"]),
                                False, None, 4))
    return deltas


def _latency_groups(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = {group["label"]: group for group in report["latency"]["shapes"]}
    if len(groups) > 1:
        groups["all shapes"] = report["latency"]["all"]
    return groups


@dataclass(frozen=True)
class Comparison:
    deltas: list[Delta]
    notes: list[str]

    @property
    def failed(self) -> list[Delta]:
        return [delta for delta in self.deltas if delta.failed]

    def table(self) -> str:
        return render(["quantity", "image / shape", "A", "B", "change", "limit", "result"],
                      [delta.cells() for delta in self.deltas])

    def to_dict(self) -> dict[str, Any]:
        return {"passed": not self.failed, "notes": self.notes, "deltas": [d.to_dict() for d in self.deltas]}


def compare(a: dict[str, Any], b: dict[str, Any], *, max_latency_regression: float | None = None,
            max_psnr_drop: float | None = None) -> Comparison:
    """Per image (matched by name) and mean PSNR/SSIM deltas, then per shape the latency change in %."""
    notes = []
    for key in ("backend", "metrics"):
        if a.get(key) != b.get(key):
            notes.append(f"{key} differs: A {json.dumps(a.get(key))}, B {json.dumps(b.get(key))}")
    images_a = {row["name"]: row for row in a["images"]}
    images_b = {row["name"]: row for row in b["images"]}
    common = [name for name in images_a if name in images_b]
    for label, only in (("A", set(images_a) - set(images_b)), ("B", set(images_b) - set(images_a))):
        if only:
            notes.append(f"only in {label} (not compared): {', '.join(sorted(only))}")
    if not common:
        raise CompareError("the two reports have no image in common (matched by name); compare runs over the "
                           "same pairs")
    deltas = [delta for name in common for delta in _score_deltas(name, images_a[name], images_b[name],
                                                                  max_psnr_drop)]
    deltas += _score_deltas("mean", a.get("aggregate", {}), b.get("aggregate", {}), max_psnr_drop)

    groups_a, groups_b = _latency_groups(a), _latency_groups(b)
    shared = [label for label in groups_a if label in groups_b]
    if not shared and max_latency_regression is not None:
        raise CompareError(f"no latency shape in common (A: {', '.join(groups_a)}; B: {', '.join(groups_b)}); "
                           f"compare runs of the same shapes and batch size")
    for label in shared:
        host_a, host_b = groups_a[label]["host_latency_ms"], groups_b[label]["host_latency_ms"]
        for statistic in LATENCY_STATISTICS:
            delta = Delta(f"{statistic} Host Latency (ms)", label, _value(host_a.get(statistic)),
                          _value(host_b.get(statistic)), True, max_latency_regression, 3)
            if delta.change is None and statistic.startswith("p"):
                notes.append(f"{label}: {statistic} missing in a report (too few calls), not compared")
                continue
            deltas.append(delta)
    return Comparison(deltas, notes)
