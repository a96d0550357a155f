"""calibrate, predict and recommend through the real CLI, in subprocesses, on synthetic stores whose specs and
features are seeded in a private user cache (nothing is counted, exported or run)."""

import json
import os
import subprocess
import sys

import pytest
from tests.predict.synthetic import bisection_scales, fill_store, seed_caches

STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr")


def scaleprof(*args, cache):
    env = {**os.environ, "SCALEPROF_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "scaleprof.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def one_line_error(done, code: int, *phrases):
    assert done.returncode == code, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A synthetic store calibrated into a private cache: (store dir, cache dir, calibrate's stdout)."""
    root = tmp_path_factory.mktemp("predict-cli")
    cache, store = root / "cache", root / "sweep"
    old = os.environ.get("SCALEPROF_CACHE_DIR")
    os.environ["SCALEPROF_CACHE_DIR"] = str(cache)
    try:
        seed_caches(STRATEGIES, sorted(bisection_scales()))
    finally:
        if old is None:
            os.environ.pop("SCALEPROF_CACHE_DIR")
        else:
            os.environ["SCALEPROF_CACHE_DIR"] = old
    fill_store(store)
    done = scaleprof("calibrate", store, cache=cache)
    assert done.returncode == 0, done.stderr
    return store, cache, done.stdout


def test_calibrate_prints_held_out_accuracy_and_where_it_saved(calibrated):
    _store, cache, out = calibrated
    assert "leave one strategy out" in out and "best single-metric fit" in out
    assert "at most 8 calibration networks" in out and "leave largest scale out" in out
    assert f"saved: {cache / 'calibrations'}" in out


def test_predict_answers_with_an_interval_and_flags_extrapolation(calibrated):
    _store, cache, _ = calibrated
    done = scaleprof("predict", "efficientnet_b0", "--strategy", "w", "--scale", "2", "--target", "cpu-ort",
                     "--any-environment", "--json", cache=cache)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    low, high = answer["interval_ms"]
    assert low < answer["latency_ms"] < high and answer["extrapolation"] == []
    far = scaleprof("predict", "efficientnet_b0", "--strategy", "d", "--scale", "16", "--target", "cpu-ort",
                    "--any-environment", cache=cache)
    assert far.returncode == 0, far.stderr
    assert "EXTRAPOLATION: flops" in far.stdout and "largest calibrated" in far.stdout


def test_a_sweep_directory_can_stand_for_the_calibration(calibrated):
    store, cache, _ = calibrated
    done = scaleprof("predict", "efficientnet_b0", "--strategy", "dw", "--scale", "2", "--target", "cpu-ort",
                     "--calibration", store, "--any-environment", "--json", cache=cache)
    stored = scaleprof("predict", "efficientnet_b0", "--strategy", "dw", "--scale", "2", "--target", "cpu-ort",
                       "--any-environment", "--json", cache=cache)
    assert done.returncode == 0 and stored.returncode == 0, done.stderr + stored.stderr
    assert json.loads(done.stdout)["latency_ms"] == pytest.approx(json.loads(stored.stdout)["latency_ms"])


def test_recommend_lists_the_most_flops_within_the_budget(calibrated):
    _store, cache, _ = calibrated
    done = scaleprof("recommend", "efficientnet_b0", "--target", "cpu-ort", "--budget-ms", "40",
                     "--strategies", *STRATEGIES, "--any-environment", "--json", cache=cache)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["capacity_proxy"] == "flops"
    flops = [c["flops"] for c in answer["candidates"]]
    assert flops == sorted(flops, reverse=True) and len(flops) == len(STRATEGIES)
    assert all(c["interval_ms"][1] <= 40 for c in answer["candidates"])          # the whole interval fits
    bold = scaleprof("recommend", "efficientnet_b0", "--target", "cpu-ort", "--budget-ms", "40", "--optimistic",
                     "--strategies", *STRATEGIES, "--any-environment", "--json", cache=cache)
    optimistic = json.loads(bold.stdout)["candidates"]
    assert all(c["latency_ms"] <= 40 for c in optimistic) and optimistic[0]["flops"] >= flops[0]
    text = scaleprof("recommend", "efficientnet_b0", "--target", "cpu-ort", "--budget-ms", "40",
                     "--strategies", "d", "w", "--any-environment", cache=cache)
    assert "capacity proxy of the scaling papers" in text.stdout


def test_too_few_points(tmp_path, calibrated):
    _store, cache, _ = calibrated
    fill_store(tmp_path / "few", strategies=("d",), scales=(1, 2, 4))
    one_line_error(scaleprof("calibrate", tmp_path / "few", cache=cache), 2, "too few points to calibrate 'cpu-ort'")


def test_target_missing_from_the_store(calibrated):
    store, cache, _ = calibrated
    one_line_error(scaleprof("calibrate", store, "--target", "cpu-ortt", cache=cache), 2,
                   "target 'cpu-ortt' is not in", "did you mean 'cpu-ort'")


def test_calibration_from_another_environment(calibrated):
    # the synthetic calibration says ORT on this CPU, in environment env0: this machine's key differs
    _store, cache, _ = calibrated
    one_line_error(scaleprof("predict", "efficientnet_b0", "--target", "cpu-ort", cache=cache), 2,
                   "comes from another environment (env0", "--any-environment")


def test_unreachable_budget(calibrated):
    _store, cache, _ = calibrated
    one_line_error(scaleprof("recommend", "efficientnet_b0", "--target", "cpu-ort", "--budget-ms", "0.01",
                             "--strategies", "d", "w", "--any-environment", cache=cache), 2,
                   "budget 0.01 ms is out of reach on 'cpu-ort'")


def test_model_family_the_calibration_never_saw(calibrated):
    _store, cache, _ = calibrated
    one_line_error(scaleprof("predict", "resnet50", "--target", "cpu-ort", "--any-environment", cache=cache), 2,
                   "resnet50 is a resnet network", "saw only efficientnet")


def test_target_never_calibrated(calibrated):
    _store, cache, _ = calibrated
    one_line_error(scaleprof("predict", "efficientnet_b0", "--target", "h100-trt-fp16", cache=cache), 2,
                   "no calibration of target 'h100-trt-fp16'")


def test_the_group_model_answers_where_the_kernel_model_cannot(calibrated, tmp_path):
    """A CPU target without a kernel calibration, and a GPU target: the group model answers and says why;
    the kernel model's flags are refused in one line; a target with neither calibration names both commands."""
    _store, cache, _ = calibrated
    done = scaleprof("predict", "efficientnet_b0", "--strategy", "w", "--scale", "2", "--target", "cpu-ort",
                     "--any-environment", cache=cache)
    assert done.returncode == 0, done.stderr
    assert "predictor: group model: cpu-ort has no kernel calibration" in done.stdout
    assert "scaleprof calibrate --kernels --target cpu-ort" in done.stdout
    one_line_error(scaleprof("predict", "efficientnet_b0", "--strategy", "w", "--scale", "2", "--target", "cpu-ort",
                             "--any-environment", "--per-layer", cache=cache), 2,
                   "--per-layer, --measure and --strict need the kernel model", "no kernel calibration")
    data = json.loads(next((cache / "calibrations").glob("cpu-ort-*.json")).read_text())
    data["target"] = "h100-trt-fp16"
    data["target_config"] = {"name": "h100-trt-fp16", "backend": "tensorrt", "device": "cuda"}
    (tmp_path / "gpu.json").write_text(json.dumps(data))
    gpu = scaleprof("predict", "efficientnet_b0", "--strategy", "w", "--scale", "2", "--target", "h100-trt-fp16",
                    "--precision", "fp32", "--calibration", tmp_path / "gpu.json", "--json", cache=cache)
    assert gpu.returncode == 0, gpu.stderr
    answer = json.loads(gpu.stdout)
    assert answer["predictor"] == "group model" and answer["latency_ms"] > 0
    assert "cannot be calibrated on h100-trt-fp16" in answer["predictor_reason"]
    assert "tensorrt on cuda" in answer["predictor_reason"]
    one_line_error(scaleprof("predict", "efficientnet_b0", "--target", "cpu-ort-2t", cache=cache), 2,
                   "no calibration of target 'cpu-ort-2t'", "calibrate --kernels --target cpu-ort-2t")
