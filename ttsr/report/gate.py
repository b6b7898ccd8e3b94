"""The release gate of one run: accuracy against the PyTorch reference and latency, in one table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ttsr.runtime.stats import LatencyReport
from ttsr.report.table import number, render


@dataclass(frozen=True)
class Limits:
    min_psnr: float | None = None
    min_ssim: float | None = None
    max_p99_ms: float | None = None
    max_mean_ms: float | None = None

    def any(self) -> bool:
        return any(value is not None for value in asdict(self).values())

    def text(self) -> str:
        parts = [f"PSNR >= {self.min_psnr:g} dB" if self.min_psnr is not None else "",
                 f"SSIM >= {self.min_ssim:g}" if self.min_ssim is not None else "",
                 f"p99 <= {self.max_p99_ms:g} ms" if self.max_p99_ms is not None else "",
                 f"mean <= {self.max_mean_ms:g} ms" if self.max_mean_ms is not None else ""]
        return ", ".join(part for part in parts if part)


@dataclass(frozen=True)
class Check:
    """One measured value against one limit; a value that could not be measured fails."""

    quantity: str
    subject: str
    measured: float | None
    limit: float
    at_least: bool  # True: measured must be >= limit; False: <= limit
    digits: int = 2

    @property
    def passed(self) -> bool:
        if self.measured is None:
            return False
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def cells(self) -> list[str]:
        bound = f"{'>=' if self.at_least else '<='} {self.limit:g}"
        return [self.quantity, self.subject, number(self.measured, self.digits), bound,
                "pass" if self.passed else "FAIL"]

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "subject": self.subject, "measured": self.measured,
                "limit": self.limit, "at_least": self.at_least, "passed": self.passed}


def checks(rows: Sequence[dict[str, Any]], latency: LatencyReport, limits: Limits) -> list[Check]:
    """Every image's PSNR/SSIM against the reference, then every shape's p99 and mean Host Latency.

    Latency is checked per shape: a limit on a pool of small and large images would say nothing
    about either.
    """
    result = []
    for row in rows:
        scores = row["vs_reference"]
        if limits.min_psnr is not None:
            result.append(Check("PSNR vs reference (dB)", row["name"], float(scores["psnr"]), limits.min_psnr, True))
        if limits.min_ssim is not None:
            result.append(Check("SSIM vs reference", row["name"], float(scores["ssim"]), limits.min_ssim, True, 4))
    for group in latency.shapes:
        if limits.max_p99_ms is not None:
            result.append(Check("p99 Host Latency (ms)", group.label, group.host.value("p99"),
                                limits.max_p99_ms, False, 3))
        if limits.max_mean_ms is not None:
            result.append(Check("mean Host Latency (ms)", group.label, group.host.mean, limits.max_mean_ms,
                                False, 3))
    return result


def gate_table(results: Sequence[Check]) -> str:
    return render(["check", "image / shape", "measured", "limit", "result"], [c.cells() for c in results])


def gate_json(results: Sequence[Check], limits: Limits) -> dict[str, Any]:
    failing = [check for check in results if not check.passed]
    return {**asdict(limits), "passed": not failing,
            "failing": list(dict.fromkeys(check.subject for check in failing)),
            "checks": [check.to_dict() for check in results]}
