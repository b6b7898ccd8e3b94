"""``--report DIR``: image panels, the latency picture, the JSON and a static ``index.html`` showing them."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from ttsr.report.accuracy import ImageResult
from ttsr.report.outputs import Outputs
from ttsr.report.panels import draw_panel, image_tiles
from ttsr.report.plots import latency_plot
from ttsr.runtime.stats import LatencyReport

PANELS = "panels"
LATENCY_PNG = "latency.png"
JSON_NAME = "report.json"
INDEX = "index.html"
STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:80em}pre{background:#f4f4f4;padding:.6em;"
         "overflow-x:auto}img{max-width:100%;image-rendering:pixelated}.FAILED{color:#b00}.PASSED{color:#070}")


def panel_name(name: str) -> str:
    """A file name for the panel of image ``name`` (the pair's name, which may hold any character)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".png"


def write_panels(outputs: Outputs, folder: Path, results: Sequence[ImageResult],
                 rows: Sequence[dict[str, Any]]) -> None:
    """One panel per image under ``folder/panels``; each row gets ``panel``: its file and tile boxes."""
    outputs.folder(folder / PANELS, "--report")
    for result, row in zip(results, rows):
        tiles = image_tiles(result.bicubic, result.image, result.reference_image, result.hr)
        picture, boxes = draw_panel(result.name, tiles)
        relative = f"{PANELS}/{panel_name(result.name)}"
        outputs.png(folder / relative, picture)
        row["panel"] = {"file": relative, "tiles": boxes}


def index_html(report: dict[str, Any], tables: dict[str, str]) -> str:
    """The page: run facts, the tables as printed, the latency picture and every panel, linked by
    relative paths so that the folder can be moved or archived whole."""
    esc = html.escape
    gate = report.get("gate")
    verdict = "" if gate is None else ("PASSED" if gate["passed"] else "FAILED")
    machine = report.get("machine", {})
    facts = [("backend", report.get("backend")), ("model", report.get("model")),
             ("engine", report.get("engine")), ("onnx", report.get("onnx")),
             ("CPU", machine.get("cpu", {}).get("model")), ("GPU", (machine.get("gpu") or {}).get("name")),
             ("time (UTC)", machine.get("time_utc"))]
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>ttsr infer report{(' - ' + verdict) if verdict else ''}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>ttsr infer report</h1>",
        "<ul>" + "".join(f"<li><b>{esc(k)}</b>: {esc(str(v))}</li>" for k, v in facts if v) + "</ul>",
        f"<p>Everything below is also in <a href=\"{JSON_NAME}\">{JSON_NAME}</a>.</p>",
    ]
    if gate is not None:
        parts += [f"<h2 class=\"{verdict}\">Gate: {verdict}</h2>", f"<pre>{esc(tables['gate'])}</pre>"]
    parts += ["<h2>Latency</h2>", f"<pre>{esc(tables['latency'])}</pre>",
              f"<img src=\"{LATENCY_PNG}\" alt=\"latency per call and histogram\">",
              "<h2>Accuracy</h2>", f"<pre>{esc(tables['accuracy'])}</pre>",
              "<h2>Images</h2>",
              "<p>Heat maps: per pixel, the largest channel difference in 8-bit levels; black is none, "
              "the scale under each map gives the level its brightest colour stands for.</p>"]
    for row in report["images"]:
        parts += [f"<h3>{esc(row['name'])}</h3>",
                  f"<img src=\"{quote(row['panel']['file'])}\" alt=\"{esc(row['name'])}\">"]
    parts += ["</body></html>", ""]
    return "\n".join(parts)


def write_report_folder(outputs: Outputs, folder: Path, report: dict[str, Any], latency: LatencyReport,
                        tables: dict[str, str]) -> None:
    """``latency.png``, ``report.json`` and ``index.html`` (the panels were written by :func:`write_panels`)."""
    outputs.png(folder / LATENCY_PNG, latency_plot(latency))
    outputs.json(folder / JSON_NAME, report)
    outputs.text(folder / INDEX, index_html(report, tables))
