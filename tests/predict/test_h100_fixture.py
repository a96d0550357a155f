"""The committed H100 results (tests/fixtures/gpu/h100): calibrate from the report's results.json (no
per-point layer profiles there: end-to-end fits), per target and batch. Counts the 17 distinct networks."""

import os
from pathlib import Path

import pytest

from scaleprof.predict import calibrate_source

RESULTS = Path(__file__).parents[1] / "fixtures" / "gpu" / "h100" / "gpu_validation_results.json"
SMALL = "at most 8 calibration networks"


@pytest.fixture(scope="module")
def calibrations(tmp_path_factory):
    old = os.environ.get("SCALEPROF_CACHE_DIR")
    os.environ["SCALEPROF_CACHE_DIR"] = str(tmp_path_factory.mktemp("h100-cache"))
    try:
        return {c.target: c for c in calibrate_source(RESULTS)}
    finally:
        os.environ.pop("SCALEPROF_CACHE_DIR")
        if old is not None:
            os.environ["SCALEPROF_CACHE_DIR"] = old


def splits(cal, batch):
    (ev,) = [e for e in cal.evaluation if e["batch"] == batch]
    return ev


@pytest.mark.slow
def test_both_targets_and_batches_are_calibrated(calibrations):
    assert set(calibrations) == {"gpu-torch", "gpu-ort-cuda"}
    for cal in calibrations.values():
        assert set(cal.fits) == {"fp32 b1", "fp32 b64", "fp32 all batches"}
        assert cal.device_name == "NVIDIA H100 80GB HBM3"
        assert all(cal.fits[k].model.method == "end-to-end" for k in cal.fits)     # no per-point profiles
        for batch in (1, 64):
            ev = splits(cal, batch)
            assert ev["networks"] == 17                                            # 8 strategies x 2 + the base
            assert ev["splits"][SMALL]["model"]["n"] == 17 - 8


@pytest.mark.slow
def test_at_batch_64_eight_networks_predict_the_rest_better_than_any_single_metric(calibrations):
    for cal in calibrations.values():
        small = splits(cal, 64)["splits"][SMALL]
        model, baseline = small["model"], small["baseline"]
        assert model["within_10"] >= baseline["within_10"]
        assert model["median_abs_error"] < baseline["median_abs_error"]
        assert abs(model["worst_error"]) < abs(baseline["worst_error"])
