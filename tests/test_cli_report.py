"""``infer --report``, the latency gates and ``ttsr compare`` on real CPU runs over small bundled pairs.

Two ORT runs of the same graph are shared by the tests: A is scored against the model the graph
was exported from, B against the same model with one conv weight doubled (a deliberately wrong
reference, so that its heat maps must light up and its PSNR must drop).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from test_cli_infer import artefacts, folders, make_pairs  # noqa: F401  (artefacts is a fixture)
from ttsr.cli import main
from ttsr.onnx_io import record_source
from ttsr.provenance import Source
from ttsr.report import panels, plots

HEAT = "|ours - reference|"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(artefacts, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("report")
    pairs = make_pairs(root / "pairs")
    # B's graph records no weights: infer refuses a graph recorded as made from other weights than
    # the reference's, and B's reference is deliberately other weights.
    unrecorded = Path(shutil.copy(artefacts["onnx"], root / "unrecorded.onnx"))
    record_source(unrecorded, Source())
    result = {}
    for key, checkpoint, graph in (("A", "base", artefacts["onnx"]), ("B", "perturbed", unrecorded)):
        folder = root / key
        outcome = run("infer", *folders(pairs), "--backend", "ort", "--onnx", str(graph),
                      "--threads", "1", "--checkpoint", str(artefacts[checkpoint]), "--warmup", "1",
                      "--report", str(folder), "--json", str(root / f"{key}.json"), "--no-progress")
        assert outcome.exit_code == 0, outcome.output
        assert f"Report: {folder / 'index.html'}" in outcome.stdout
        result[key] = folder
    return root


def heat_share(folder: Path, row: dict) -> float:
    """Share of the |ours - reference| heat map's pixels that are not the colour of zero difference."""
    left, top, right, bottom = row["panel"]["tiles"][HEAT]
    with Image.open(folder / row["panel"]["file"]) as picture:
        tile = np.asarray(picture.convert("RGB"))[top:bottom, left:right]
    return float((tile != panels.RAMP[0].astype(np.uint8)).any(axis=2).mean())


def test_panels_show_a_wrong_reference_in_the_heat_map(runs):
    reports = {key: json.loads((runs / f"{key}.json").read_text()) for key in "AB"}
    for key, report in reports.items():
        for row, name in zip(report["images"], ("cat", "coffee")):
            assert row["name"] == name and row["panel"]["file"] == f"panels/{name}.png"
            with Image.open(runs / key / row["panel"]["file"]) as picture:
                assert picture.mode == "RGB" and picture.format == "PNG"
                width, height = picture.size
            assert set(row["panel"]["tiles"]) == {"bicubic LR x4", "ours", "reference", "HR", HEAT, "|ours - HR|"}
            assert all(box[2] <= width and box[3] <= height for box in row["panel"]["tiles"].values())
    for good, bad in zip(reports["A"]["images"], reports["B"]["images"]):
        assert heat_share(runs / "B", bad) > 0.5
        assert bad["error_stats"]["sr"]["share_of_pixels_over"]["1/255"] > 0.5
        # the graph against its own model: the CPU twin differs by rounding at most
        assert good["error_stats"]["sr"]["share_of_pixels_over"]["1/255"] < 0.01
        assert good["error_stats"]["sr"]["abs"]["max"] < bad["error_stats"]["sr"]["abs"]["max"]


def test_latency_picture_and_an_index_that_references_every_file_it_shows(runs):
    for key in "AB":
        folder = runs / key
        with Image.open(folder / "latency.png") as picture:
            assert picture.mode == "RGB" and picture.size == (plots.WIDTH, plots.HEIGHT)
            assert (np.asarray(picture) == plots.WARMUP).all(axis=2).sum() > 0
        page = (folder / "index.html").read_text()
        linked = set(re.findall(r'(?:src|href)="([^"]+)"', page))
        assert linked == {"report.json", "latency.png", "panels/cat.png", "panels/coffee.png"}
        assert all((folder / name).is_file() for name in linked)
        written = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
        assert written == linked | {"index.html"}
        assert json.loads((folder / "report.json").read_text())["images"][0]["panel"]["file"] == "panels/cat.png"
        assert "Host Latency" in page and "vs reference" in page


def test_compare_exits_1_on_a_psnr_drop_and_0_the_other_way(runs):
    a, b = str(runs / "A.json"), str(runs / "B.json")
    worse = run("compare", a, b, "--max-psnr-drop", "1")
    assert worse.exit_code == 1, worse.output
    assert "[FAILED]" in worse.stdout and "PSNR vs reference (dB) cat" in worse.stdout
    failing = [line.split() for line in worse.stdout.splitlines() if line.endswith("FAIL")]
    assert {row[4] for row in failing} >= {"cat", "coffee", "mean"}
    better = run("compare", b, a, "--max-psnr-drop", "1")
    assert better.exit_code == 0, better.output
    assert "[PASSED] no change beyond the limits" in better.stdout


def test_compare_exits_1_on_a_latency_regression_and_0_the_other_way(runs, tmp_path):
    base = json.loads((runs / "A.json").read_text())
    slow = json.loads((runs / "A.json").read_text())
    for group in [*slow["latency"]["shapes"], slow["latency"]["all"]]:
        for statistic in ("mean", "median"):
            group["host_latency_ms"][statistic] *= 1.5
    (tmp_path / "slow.json").write_text(json.dumps(slow))
    regressed = run("compare", str(runs / "A.json"), str(tmp_path / "slow.json"), "--max-latency-regression", "20")
    assert regressed.exit_code == 1, regressed.output
    assert "+50.0 %" in regressed.stdout
    recovered = run("compare", str(tmp_path / "slow.json"), str(runs / "A.json"), "--max-latency-regression", "20")
    assert recovered.exit_code == 0, recovered.output
    assert base["latency"]["shapes"][0]["label"] in recovered.stdout


def test_compare_refuses_what_is_not_an_infer_report(runs, tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"profiles": []}))
    result = run("compare", str(runs / "A.json"), str(tmp_path / "other.json"))
    assert result.exit_code == 2
    assert "is not an infer report" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_latency_gate_fails_below_the_measured_mean_and_passes_above_it(tmp_path):
    pairs = make_pairs(tmp_path / "pairs")
    for role in ("lr", "ref", "hr"):
        (pairs / role / "coffee.png").unlink()
    outcomes = {}
    for limit in ("0.001", "1e7"):
        report = tmp_path / f"{limit}.json"
        outcomes[limit] = run("infer", *folders(pairs, hr=False), "--backend", "torch", "--warmup", "0",
                              "--json", str(report), "--no-progress", "--check", "--max-mean-ms", limit)
    low, high = outcomes["0.001"], outcomes["1e7"]
    assert low.exit_code == 1 and high.exit_code == 0, low.output + high.output
    for outcome, verdict in ((low, "FAIL"), (high, "pass")):
        (row,) = [line.split() for line in outcome.stdout.splitlines() if line.startswith("mean Host Latency")]
        assert row[4] == "b1" and row[-1] == verdict
    measured = json.loads((tmp_path / "1e7.json").read_text())["gate"]["checks"][0]["measured"]
    assert 0.001 < measured < 1e7
    assert "[FAILED] 0 of 1 check(s) pass; failing: b1 12x16/48x64" in low.stdout
