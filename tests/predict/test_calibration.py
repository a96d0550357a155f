"""Calibrations: intervals, extrapolation flags, refusals, and the versioned file."""

import json

import pytest
from tests.predict.synthetic import network, samples, true_latency

from scaleprof.errors import BadInput
from scaleprof.predict import calibrate, find, load, save
from scaleprof.predict.calibration_store import FORMAT_VERSION, to_json


@pytest.fixture
def cal():
    return calibrate(samples(scales=(1, 2, 4)) + samples(scales=(1, 2, 4), batch=8), "cpu-ort", "env0",
                     {"device_name": "Synthetic"}, {"name": "cpu-ort", "backend": "ort", "device": "cpu"},
                     "synthetic", with_evaluation=False)


def test_one_fit_per_batch_and_one_for_all(cal):
    assert set(cal.fits) == {"fp32 b1", "fp32 b8", "fp32 all batches"}
    assert cal.families == ("efficientnet",) and cal.models == ("efficientnet_b0",)


def test_prediction_inside_the_calibrated_region_is_not_flagged(cal):
    probe = network(1.5, 1.2, 1.1)
    p = cal.predict(probe, 1, "fp32", "efficientnet_b0")
    assert p.extrapolation == ()
    assert p.low_ms < p.latency_ms < p.high_ms
    assert p.latency_ms == pytest.approx(true_latency(probe), rel=1e-4)
    assert p.batch_fit == "fp32 b1"


def test_extrapolation_is_flagged_and_widens_the_interval(cal):
    inside = cal.predict(network(2, 1, 1), 1, "fp32", "efficientnet_b0")
    outside = cal.predict(network(8, 1, 1), 1, "fp32", "efficientnet_b0")
    assert any("flops" in note and "largest calibrated" in note for note in outside.extrapolation)
    assert outside.high_ms / outside.latency_ms > inside.high_ms / inside.latency_ms
    other_batch = cal.predict(network(2, 1, 1), 4, "fp32", "efficientnet_b0")
    assert other_batch.batch_fit == "fp32 all batches"
    assert any("batch 4 was not calibrated" in note for note in other_batch.extrapolation)
    other_model = cal.predict(network(1, 1, 1), 1, "fp32", "efficientnet_b1")
    assert any("efficientnet_b1 was not measured" in note for note in other_model.extrapolation)


def test_refuses_a_family_or_precision_it_never_saw(cal):
    with pytest.raises(BadInput, match="resnet network; the calibration of 'cpu-ort' saw only efficientnet"):
        cal.predict(network(), 1, "fp32", "resnet50")
    with pytest.raises(BadInput, match="precision fp32, not fp16"):
        cal.predict(network(), 1, "fp16", "efficientnet_b0")


def test_too_few_networks_is_one_line():
    few = [s for s in samples() if s.strategy == "d"]            # 3 networks
    with pytest.raises(BadInput, match="too few points to calibrate 'cpu-ort': 3 distinct"):
        calibrate(few, "cpu-ort", "env0")


def test_file_round_trip_and_version(cal, tmp_path, user_cache):
    path = save(cal)
    assert path.parent == user_cache / "calibrations"
    again = find("cpu-ort")
    probe = network(1.5, 1.5, 1.5)
    assert again.predict(probe, 8, "fp32", "efficientnet_b0") == cal.predict(probe, 8, "fp32", "efficientnet_b0")
    assert load(path).env_key == "env0"
    data = json.loads(to_json(cal))
    data["version"] = FORMAT_VERSION + 1
    other = tmp_path / "future.json"
    other.write_text(json.dumps(data))
    with pytest.raises(BadInput, match="calibration format version 2 is not the version"):
        load(other)
    with pytest.raises(BadInput, match="no calibration of target 'gpu-x'"):
        find("gpu-x")
