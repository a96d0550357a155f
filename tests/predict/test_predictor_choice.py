"""Which predictor answers a zoo query, from what the calibration store (or --calibration) holds: in-process,
on a kernel calibration with no timed kernel and a synthetic sweep calibration (nothing is timed or counted)."""

import json

import pytest

from scaleprof.errors import BadInput
from scaleprof.predict import KernelCalibration, KernelModel, calibrate, save, save_kernels
from scaleprof.predict.network_check import NetworkCorrection
from scaleprof.predict.predictor_choice import GROUP_MODEL, KERNEL_MODEL, choose_predictor
from tests.predict.synthetic import samples


def kernels(correction=None):
    return KernelCalibration("cpu-ort-1t", "env0", KernelModel(), graphs=7, correction=correction,
                             target_config={"name": "cpu-ort-1t", "backend": "ort", "device": "cpu", "threads": 1})


def sweep(target="cpu-ort-1t"):
    return calibrate(samples(target=target), target, "env0", source="out/sweep", with_evaluation=False)


def test_the_kernel_model_answers_beside_a_sweep_calibration(user_cache):
    store = user_cache / "calibrations"
    save(sweep(), store)
    save_kernels(kernels(), store)
    choice = choose_predictor("cpu-ort-1t")
    assert choice.predictor == KERNEL_MODEL and choice.label == "kernel model"
    assert "sweep calibration (group model) is not used" in choice.reason
    assert "scaleprof calibrate --kernels --target cpu-ort-1t out/sweep" in choice.reason   # fit its correction
    save_kernels(kernels(NetworkCorrection(0.1, 1.2, ("a", "b", "c"), source="out/zoo")), store)
    choice = choose_predictor("cpu-ort-1t")
    assert choice.label == "kernel model + correction from sweep out/zoo" and "calibrate --kernels" not in choice.reason


def test_the_group_model_answers_without_a_kernel_calibration(user_cache, tmp_path):
    store = user_cache / "calibrations"
    path = save(sweep(), store)
    choice = choose_predictor("cpu-ort-1t")
    assert choice.predictor == GROUP_MODEL and "cpu-ort-1t has no kernel calibration" in choice.reason
    save_kernels(kernels(), store)                 # a file named by --calibration wins over the store
    choice = choose_predictor("cpu-ort-1t", path)
    assert choice.predictor == GROUP_MODEL and f"{path} holds no kernel calibration" in choice.reason
    gpu = json.loads(path.read_text())
    gpu.update(target="h100-torch-fp16", target_config={"name": "h100-torch-fp16", "backend": "torch",
                                                        "device": "cuda"})
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    choice = choose_predictor("h100-torch-fp16", tmp_path / "gpu.json")
    assert choice.predictor == GROUP_MODEL and "it runs torch on cuda" in choice.reason


def test_neither_calibration_names_both_commands(user_cache):
    with pytest.raises(BadInput, match=r"no calibration of target 'cpu-ort-2t'.*calibrate --kernels --target cpu-ort-2t"):
        choose_predictor("cpu-ort-2t")
    with pytest.raises(BadInput, match="no calibration of target 'h100-trt-fp16'") as err:
        choose_predictor("h100-trt-fp16")
    assert "--kernels" not in str(err.value)                 # the kernel model cannot be calibrated there


def test_an_unreadable_kernel_calibration_is_named(user_cache):
    store = user_cache / "calibrations"
    store.mkdir(parents=True)
    (store / "kernels-cpu-ort-1t-env0.json").write_text("{\"format\": \"scaleprof-kernel-calibration\", \"version\": 0}")
    with pytest.raises(BadInput, match="no readable kernel calibration of target 'cpu-ort-1t'.*format version 0"):
        choose_predictor("cpu-ort-1t")
    save(sweep(), store)
    choice = choose_predictor("cpu-ort-1t")                     # the group model answers, and says why
    assert choice.predictor == GROUP_MODEL and "no readable kernel calibration" in choice.reason
    save(sweep("h100-trt-fp16"), store)
    assert "cannot be calibrated on h100-trt-fp16" in choose_predictor("h100-trt-fp16").reason
