"""The report stage's pieces on made-up inputs: heat maps, panels, the latency picture, error
statistics, the gate's checks and the comparison of two reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ttsr.report import accuracy, compare, gate, panels, plots
from ttsr.runtime.stats import LatencyRecorder, Shape

SHAPE = Shape(1, (12, 16), (48, 64))


def latency(samples_ms, warmup_ms=()):
    recorder = LatencyRecorder()
    for value in warmup_ms:
        recorder.add(SHAPE, value, 1, warmup=True)
    for value in samples_ms:
        recorder.add(SHAPE, value, 1)
    return recorder.report()


def test_heat_map_is_black_where_images_agree_and_lit_where_they_differ():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    same = panels.heat_tile("same", image, image.copy())
    assert same.scale_max == 0 and (same.image == panels.RAMP[0]).all()
    changed = image.copy()
    changed[10:20, 5:15, 1] ^= 0x40  # channel 1 changes by 64 levels inside the square only
    heat = panels.heat_tile("changed", image, changed)
    assert heat.scale_max == 64
    lit = (heat.image != panels.RAMP[0].astype(np.uint8)).any(axis=2)
    assert lit[10:20, 5:15].all() and lit.sum() == 100
    assert (heat.image[10:20, 5:15] == panels.RAMP[-1]).all()  # the largest difference gets the top colour


def test_panel_places_each_tile_where_its_box_says():
    rng = np.random.default_rng(1)
    tiles = panels.image_tiles(*(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(4)))
    assert [t.title for t in tiles] == ["bicubic LR x4", "ours", "reference", "HR", "|ours - reference|",
                                        "|ours - HR|"]
    picture, boxes = panels.draw_panel("cat", tiles)
    assert picture.mode == "RGB"
    zoom = -(-panels.MIN_TILE_SIDE // 32)  # small tiles are enlarged by a whole factor
    pixels = np.asarray(picture)
    for tile in tiles:
        left, top, right, bottom = boxes[tile.title]
        assert (right - left, bottom - top) == (40 * zoom, 32 * zoom)
        assert right <= picture.size[0] and bottom <= picture.size[1]
        np.testing.assert_array_equal(pixels[top:bottom:zoom, left:right:zoom], tile.image)
    no_hr = panels.image_tiles(*(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(3)), None)
    assert [t.title for t in no_hr] == ["bicubic LR x4", "ours", "reference", "|ours - reference|"]


@pytest.mark.parametrize("warmup_ms", [(), (50.0, 40.0)])
def test_latency_picture_marks_warm_up_calls(warmup_ms):
    picture = plots.latency_plot(latency([10.0, 12.0, 11.0, 30.0], warmup_ms))
    assert picture.mode == "RGB" and picture.size == (plots.WIDTH, plots.HEIGHT)
    pixels = np.asarray(picture)
    plot_area = pixels[plots.MARGIN[1]:, : plots.WIDTH // 2]  # below the title row, which holds the legend
    warm_pixels = (plot_area == plots.WARMUP).all(axis=2).sum()
    assert ((plot_area == plots.WARMUP_BAND).all(axis=2).sum() > 0) == bool(warmup_ms)
    assert (warm_pixels > 0) == bool(warmup_ms)
    assert (pixels == plots.TIMED).all(axis=2).sum() > 0


def test_nice_ticks_cover_the_range_in_round_steps():
    ticks = plots.nice_ticks(0.0, 87.0)
    assert ticks[0] == 0 and ticks[-1] >= 87 and len(set(np.diff(ticks).round(9))) == 1
    assert np.diff(ticks)[0] in (10.0, 20.0)


def test_error_statistics_on_a_known_difference():
    reference = np.zeros((3, 8, 8), dtype=np.float32)  # 0.5 on the [0, 1] scale
    output = reference.copy()
    output[0, 0, 0] = 0.02   # +0.01 on the [0, 1] scale: 2.55 levels
    output[2, 4, 4] = -0.004  # -0.002: 0.51 levels
    stats = accuracy.error_stats(output, reference)
    assert stats["abs"]["max"] == pytest.approx(0.01)
    assert stats["abs"]["mean"] == pytest.approx(0.012 / 192)
    assert stats["abs"]["median"] == 0.0
    assert stats["rel"]["max"] == pytest.approx(0.02)  # 0.01 / 0.5
    over = stats["share_of_pixels_over"]
    assert over["0.5/255"] == pytest.approx(2 / 64) and over["2/255"] == pytest.approx(1 / 64)
    assert over["4/255"] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        accuracy.error_stats(output, reference[:, :4])


def test_smallest_lr_that_can_be_scored():
    assert accuracy.min_lr_side(4) == 5  # 4 * 5 - 2 * 4 = 12 >= 11, 4 * 4 - 8 = 8 < 11
    assert accuracy.min_lr_side(0) == 3
    accuracy.check_lr_size((5, 7), 4)
    with pytest.raises(ValueError, match="LR is 1x1: its 4x4 SR output"):
        accuracy.check_lr_size((1, 1), 4)


def test_latency_gate_fails_below_the_measured_value_and_passes_above_it():
    report = latency(list(np.linspace(10.0, 20.0, 100)))
    mean, p99 = report.shapes[0].host.mean, report.shapes[0].host.value("p99")
    assert p99 == pytest.approx(np.percentile(np.linspace(10.0, 20.0, 100), 99, method="inverted_cdf"))
    rows = [{"name": "cat", "vs_reference": {"psnr": 45.0, "ssim": 0.995}}]
    below = gate.checks(rows, report, gate.Limits(max_p99_ms=p99 - 0.01, max_mean_ms=mean - 0.01))
    above = gate.checks(rows, report, gate.Limits(max_p99_ms=p99 + 0.01, max_mean_ms=mean + 0.01))
    assert [c.passed for c in below] == [False, False] and [c.passed for c in above] == [True, True]
    table = gate.gate_table(below + gate.checks(rows, report, gate.Limits(min_psnr=40.0, min_ssim=0.999)))
    lines = table.splitlines()[2:]
    assert [line.split()[-1] for line in lines] == ["FAIL", "FAIL", "pass", "FAIL"]
    assert gate.gate_json(below, gate.Limits(max_p99_ms=1.0))["failing"] == ["b1 12x16/48x64"]


def test_p99_gate_on_too_few_calls_fails_instead_of_passing():
    (check,) = gate.checks([], latency([1.0] * 99), gate.Limits(max_p99_ms=1e9))
    assert check.measured is None and not check.passed


def report(psnr, mean_ms, p99_ms=None, name="cat"):
    host = {"mean": mean_ms, "median": mean_ms, "p99": p99_ms}
    return {"backend": "ort", "metrics": {"convention": "rgb"},
            "images": [{"name": name, "vs_reference": {"psnr": psnr, "ssim": 0.99}}],
            "aggregate": {"vs_reference": {"psnr": psnr, "ssim": 0.99}},
            "latency": {"shapes": [{"label": "b1 12x16/48x64", "host_latency_ms": host}], "all": {}}}


@pytest.mark.parametrize("a, b, failed", [
    ("inf", 45.0, True),   # identical before, now 45 dB: an infinite drop
    (45.0, "inf", False),
    ("inf", "inf", False),
    (45.0, 44.5, False),
    (45.0, 43.9, True),
])
def test_psnr_drop(a, b, failed):
    result = compare.compare(report(a, 10.0), report(b, 10.0), max_psnr_drop=1.0)
    assert bool(result.failed) == failed
    assert {d.subject for d in result.failed} == ({"cat", "mean"} if failed else set())


def test_latency_regression_in_percent_of_a_and_p99_only_where_both_have_it():
    result = compare.compare(report(45.0, 10.0, 12.0), report(45.0, 11.5, None), max_latency_regression=10.0)
    changes = {d.quantity: d.change for d in result.deltas if "Latency" in d.quantity}
    assert changes == {"mean Host Latency (ms)": pytest.approx(15.0), "median Host Latency (ms)": pytest.approx(15.0)}
    assert len(result.failed) == 2 and any("p99 missing" in note for note in result.notes)
    faster = compare.compare(report(45.0, 11.5), report(45.0, 10.0), max_latency_regression=10.0)
    assert not faster.failed and math.isclose(faster.deltas[-1].change, -100 * 1.5 / 11.5)


def test_reports_without_common_images_or_shapes_are_refused():
    with pytest.raises(compare.CompareError, match="no image in common"):
        compare.compare(report(45.0, 10.0, name="cat"), report(45.0, 10.0, name="dog"))
    other = report(45.0, 10.0)
    other["latency"]["shapes"][0]["label"] = "b2 12x16/48x64"
    with pytest.raises(compare.CompareError, match="no latency shape in common"):
        compare.compare(report(45.0, 10.0), other, max_latency_regression=5.0)
