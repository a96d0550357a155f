"""The kernel model against measured networks: the network-level correction (fit, leave-one-network-out,
storage, applied by predict) and `predict FILE.onnx --per-layer --measure`."""

import json

import pytest

from scaleprof.errors import BadInput

from scaleprof.predict import KernelCalibration, KernelModel, predict_kernels
from scaleprof.predict.calibration_store import kernels_from_json, kernels_to_json
from scaleprof.predict.network_check import NetworkCorrection, PointCheck, correction_summary, fit_correction
from scaleprof.predict.onnx_kernels import Kernel

from tests.predict.test_kernel_prediction import _conv, one_line_error, scaleprof, small_net
from tests.predict.test_kernel_prediction import calibration  # noqa: F401  (the module's fixture)


def _checks(offset, scale, predictions):
    return [PointCheck(f"net{i}", offset + scale * p, p, ()) for i, p in enumerate(predictions)]


def test_correction_recovers_a_run_overhead_and_a_scale():
    correction = fit_correction(_checks(0.4, 1.15, [2.0, 5.0, 9.0, 20.0, 40.0]))
    assert correction.offset_ms == pytest.approx(0.4, rel=1e-6) and correction.scale == pytest.approx(1.15)
    assert len(correction.loo_errors) == 5
    for label, before, after in correction.loo_errors:
        assert before < -0.1 and abs(after) < 1e-6, label
    assert "leave one network out" in correction_summary(correction)


def test_correction_with_few_networks_is_a_scale_and_never_negative():
    two = fit_correction(_checks(0.0, 0.8, [3.0, 7.0]))
    assert two.offset_ms == 0.0 and two.scale == pytest.approx(0.8)
    # measured falls with prediction at the small end: a negative offset would fit; it is refused
    bent = fit_correction([PointCheck("a", 1.0, 3.0, ()), PointCheck("b", 5.0, 6.0, ()), PointCheck("c", 10.0, 11.0, ())])
    assert bent.offset_ms >= 0 and bent.scale > 0


def test_predict_applies_the_stored_correction():
    from scaleprof.predict.kernel_model import fit_key

    kernels = [_conv(16, 32, 16 * 16), _conv(32, 32, 8 * 8)]
    model = KernelModel({kernels[0].key: fit_key([_conv(c, c, 256) for c in (8, 16, 32, 64)],
                                                 [0.01 * c for c in (8, 16, 32, 64)])})
    plain = predict_kernels(model, kernels)
    correction = NetworkCorrection(0.2, 1.5, ("a", "b", "c"), source="out/zoo")
    fixed = predict_kernels(model, kernels, correction=correction)
    assert fixed.latency_ms == pytest.approx(0.2 + 1.5 * plain.latency_ms)
    assert fixed.uncorrected_ms == pytest.approx(plain.latency_ms) and plain.uncorrected_ms is None
    assert sum(fixed.groups.values()) == pytest.approx(fixed.latency_ms)
    cal = KernelCalibration("cpu-ort-1t", "env", model, correction=correction)
    again = kernels_from_json(kernels_to_json(cal))
    assert again.correction == correction and again.correction.source == "out/zoo"
    assert kernels_from_json(kernels_to_json(KernelCalibration("cpu-ort-1t", "env", model))).correction is None
    damaged = json.loads(kernels_to_json(cal))
    damaged["correction"]["scale"] = -1.0
    with pytest.raises(BadInput, match="damaged kernel calibration"):
        kernels_from_json(json.dumps(damaged))


def test_cli_measures_each_kernel_beside_its_prediction(calibration, tmp_path):  # noqa: F811
    _, path = calibration
    net = small_net(tmp_path / "n.onnx")
    done = scaleprof("predict", net, "--target", "cpu-ort-1t", "--calibration", path, "--per-layer", "--measure",
                     "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    measured = {row["kind"]: row["measured_ms"] for row in data["per_layer"]}
    assert measured["conv"] > 0 and measured["linear"] > 0 and data["measured_run_ms"] > 0
    text = scaleprof("predict", net, "--target", "cpu-ort-1t", "--calibration", path, "--per-layer", "--measure")
    assert text.returncode == 0 and "measured here:" in text.stdout
    header = next(line for line in text.stdout.splitlines() if line.split()[:2] == ["kernel", "op"])
    assert header.split()[-2:] == ["measured", "error"]
    one_line_error(scaleprof("predict", net, "--target", "cpu-ort-1t", "--calibration", path, "--measure"),
                   "--measure applies to --per-layer")


def test_zoo_mix_is_a_per_layer_cpu_ort_1t_sweep_over_the_zoo_families():
    from scaleprof.models import family_of
    from scaleprof.predict import target_definition
    from scaleprof.sweep.config_file import resolve_config

    config = resolve_config("zoo_mix")
    families = {family_of(m).name for m in config.models}
    assert len(families) >= 4 and config.layers and config.batch_sizes == (1,)
    (target,) = config.targets
    wanted = target_definition("cpu-ort-1t")
    assert (target.name, target.backend, target.device, target.threads) == ("cpu-ort-1t", "ort", "cpu", wanted["threads"])
    judged = {"mobilenet", "shufflenet", "mnasnet", "densenet", "squeezenet", "googlenet", "convnext", "vgg",
              "resnext", "alexnet"}
    assert not any(name in m for m in config.models for name in judged)
