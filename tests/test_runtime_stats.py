import numpy as np
import pytest

from ttsr.runtime.stats import LatencyRecorder, Summary


def test_summary_statistics_against_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 100.0]
    s = Summary.of(samples)
    assert s.mean == pytest.approx(np.mean(samples))
    assert s.median == pytest.approx(3.5)
    assert s.min == 1.0 and s.max == 100.0
    # linear interpolation between the 5th (5.0) and 6th (100.0) sorted samples
    assert s.p90 == pytest.approx(5.0 + 0.5 * 95.0)
    assert s.p99 == pytest.approx(5.0 + 0.95 * 95.0)
    with pytest.raises(ValueError):
        Summary.of([])


def test_throughput_counts_real_images_over_total_time():
    recorder = LatencyRecorder()
    recorder.add(100.0, 2, {"h2d": 10.0, "compute": 80.0, "d2h": 10.0})
    recorder.add(300.0, 1, {"h2d": 20.0, "compute": 260.0, "d2h": 20.0})
    report = recorder.report()
    assert report.calls == 2 and report.images == 3
    assert report.throughput == pytest.approx(3 / 0.4)
    assert report.stages["compute"].mean == pytest.approx(170.0)
    data = report.to_dict()
    assert data["latency_ms"]["max"] == 300.0
    assert set(data["stages_ms"]) == {"h2d", "compute", "d2h"}
    table = report.table()
    assert "per call" in table and "compute" in table and "7.50 images/s" in table


def test_stages_left_out_when_the_backend_has_none():
    recorder = LatencyRecorder()
    recorder.add(50.0, 1)
    report = recorder.report()
    assert report.stages == {}
    assert "h2d" not in report.table()
