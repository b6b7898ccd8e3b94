"""One infer run's report: scored rows, gate, JSON, tables, the files, and the text printed at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ttsr.report import accuracy, gate, site
from ttsr.report.accuracy import ImageResult
from ttsr.report.outputs import Outputs, is_stdout
from ttsr.runtime.stats import LatencyReport


@dataclass(frozen=True)
class Settings:
    """How the run was made, as the JSON records it."""

    backend: str
    backend_choice: str  # "asked", "implied" (by --engine/--onnx) or "default"
    model: str
    checkpoint: str | None
    seed: int | None
    engine: str | None
    onnx: str | None
    batch: int
    warmup: int
    iterations: int
    cuda_graph: bool
    torch_device: str
    search_transfer: str | None  # torch backend: "torch" or "kernels" (the plugin's CUDA kernels)
    convention: str
    crop_border: int


@dataclass
class RunReport:
    settings: Settings
    results: list[ImageResult]
    latency: LatencyReport
    limits: gate.Limits | None
    rows: list[dict[str, Any]]
    checks: list[gate.Check]
    data: dict[str, Any]

    @classmethod
    def make(cls, settings: Settings, results: Sequence[ImageResult], latency: LatencyReport,
             limits: gate.Limits | None, machine: dict[str, Any], tool_version: str) -> "RunReport":
        """Raises ValueError (naming the image) when an output cannot be scored."""
        rows = []
        for result in results:
            try:
                rows.append(accuracy.score_image(result, settings.convention, settings.crop_border))
            except ValueError as exc:
                raise ValueError(f"pair {result.name}: {exc}") from None
        means = accuracy.aggregate(rows)
        checks = gate.checks(rows, latency, limits) if limits is not None else []
        recorded = asdict(settings)
        metrics = {"convention": recorded.pop("convention"), "crop_border": recorded.pop("crop_border")}
        data: dict[str, Any] = {
            "tool_version": tool_version, **recorded, "machine": machine, "metrics": metrics,
            "latency": latency.to_dict(), "images": rows, "aggregate": means,
            "gate": gate.gate_json(checks, limits) if limits is not None else None,
        }
        return cls(settings, list(results), latency, limits, rows, checks, data)

    @property
    def failing(self) -> list[gate.Check]:
        return [check for check in self.checks if not check.passed]

    def tables(self) -> dict[str, str]:
        return {"latency": self.latency.table(),
                "accuracy": accuracy.accuracy_table(self.rows, self.data["aggregate"]),
                "gate": gate.gate_table(self.checks)}

    def write(self, files: Outputs, out_dir: Path | None, json_path: Path | None, report_dir: Path | None) -> None:
        """SR images, the report folder and the JSON, each through ``files`` (undone on failure)."""
        if out_dir is not None:
            for result, row in zip(self.results, self.rows):
                row["output"] = str(out_dir / f"{result.name}.png")
                files.png(Path(row["output"]), result.image)
        if report_dir is not None:
            site.write_panels(files, report_dir, self.results, self.rows)
            site.write_report_folder(files, report_dir, self.data, self.latency, self.tables())
        if json_path is not None:
            files.json(json_path, self.data)

    def text(self, out_dir: Path | None, json_path: Path | None, report_dir: Path | None) -> str:
        """The tables and where the files went, as the command prints them."""
        s, tables = self.settings, self.tables()
        reference = "checkpoint" if s.checkpoint else f"seeded model {s.seed}"
        lines = [f"\n=== Latency ({s.backend}, batch {s.batch}, {s.warmup} warm-up call(s) per shape, "
                 f"{s.iterations} timed pass(es)) ===", tables["latency"],
                 f"\n=== Accuracy ({s.convention}, crop border {s.crop_border}; reference = PyTorch {reference}) ===",
                 tables["accuracy"]]
        if out_dir is not None:
            lines.append(f"\nSR images: {out_dir}/")
        if report_dir is not None:
            lines.append(f"Report: {report_dir / site.INDEX}")
        if json_path is not None and not is_stdout(json_path):
            lines.append(f"JSON report: {json_path}")
        if self.limits is not None:
            failing = self.failing
            lines += [f"\n=== Gate ({self.limits.text()}; accuracy vs the PyTorch reference) ===", tables["gate"],
                      f"[{'FAILED' if failing else 'PASSED'}] {len(self.checks) - len(failing)} of "
                      f"{len(self.checks)} check(s) pass"
                      + (f"; failing: {', '.join(self.data['gate']['failing'])}" if failing else "") + "."]
        return "\n".join(lines)
