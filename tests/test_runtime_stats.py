import numpy as np
import pytest

from ttsr.runtime.stats import LatencyRecorder, Shape, Summary, min_samples

SMALL = Shape(1, (12, 16), (48, 64))
LARGE = Shape(2, (24, 32), (48, 64))


def test_summary_statistics_against_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 100.0, 7.0, 8.0, 9.0, 6.0]
    s = Summary.of(samples)
    assert s.count == 10 and s.mean == pytest.approx(np.mean(samples))
    assert s.median == pytest.approx(5.5)
    assert s.min == 1.0 and s.max == 100.0
    assert s.value("p90") == 9.0  # nearest rank: the 9th of 10 sorted samples
    assert s.value("p90") == np.percentile(samples, 90, method="inverted_cdf")
    assert s.value("p95") is None and s.value("p99") is None
    with pytest.raises(ValueError):
        Summary.of([])


@pytest.mark.parametrize("percentile, needed", [(90, 10), (95, 20), (99, 100)])
def test_percentiles_only_with_a_sample_above_them(percentile, needed):
    assert min_samples(percentile) == needed
    # nearest rank: from n = needed on, p-th percentile lies below the maximum; with one sample fewer it is the maximum
    enough, short = np.arange(needed, dtype=float), np.arange(needed - 1, dtype=float)
    assert np.percentile(enough, percentile, method="inverted_cdf") < enough.max()
    assert np.percentile(short, percentile, method="inverted_cdf") == short.max()
    assert Summary.of(list(np.arange(needed, dtype=float))).percentiles[percentile] is not None
    assert Summary.of(list(np.arange(needed - 1, dtype=float))).percentiles[percentile] is None


def test_a_row_per_shape_and_batch_with_counts_and_trtexec_names():
    recorder = LatencyRecorder()
    recorder.add(SMALL, 999.0, 1, {"h2d": 1.0, "compute": 990.0, "d2h": 8.0}, warmup=True)
    recorder.add(SMALL, 100.0, 1, {"h2d": 10.0, "compute": 80.0, "d2h": 10.0})
    recorder.add(LARGE, 300.0, 2, {"h2d": 20.0, "compute": 260.0, "d2h": 20.0})
    recorder.add(SMALL, 200.0, 1, {"h2d": 10.0, "compute": 180.0, "d2h": 10.0})
    report = recorder.report()
    assert [group.label for group in report.groups()] == ["b1 12x16/48x64", "b2 24x32/48x64", "all shapes"]
    small, large = report.shapes
    assert small.calls == 2 and small.host.mean == pytest.approx(150.0)  # the warm-up call left out
    assert large.calls == 1 and large.throughput_images == pytest.approx(2 / 0.3)
    assert report.calls == 3 and report.images == 4
    assert report.all.throughput_qps == pytest.approx(3 / 0.6)
    assert report.all.stages["compute"].mean == pytest.approx((80 + 260 + 180) / 3)
    data = report.to_dict()
    assert data["warmup_calls"] == 1 and len(data["samples"]) == 4 and data["samples"][0]["warmup"]
    assert data["shapes"][0]["host_latency_ms"]["count"] == 2
    assert data["shapes"][0]["host_latency_ms"]["p90"] is None
    assert set(data["all"]) >= {"h2d_latency_ms", "gpu_compute_time_ms", "d2h_latency_ms", "throughput_qps"}
    table = report.table()
    for text in ("Host Latency", "GPU Compute Time", "H2D Latency", "D2H Latency", "b2 24x32/48x64",
                 "all shapes", "p99: 100", "6.67 images/s"):
        assert text in table


def test_stages_left_out_when_the_backend_has_none():
    recorder = LatencyRecorder()
    recorder.add(SMALL, 50.0, 1)
    report = recorder.report()
    assert report.all.stages == {}
    assert "H2D" not in report.table() and "all shapes" not in report.table()
    with pytest.raises(ValueError, match="no timed calls"):
        warm_only = LatencyRecorder()
        warm_only.add(SMALL, 1.0, 1, warmup=True)
        warm_only.report()
