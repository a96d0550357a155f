"""Kernel-level prediction of any ONNX file: shapes through ORT's optimised graph, kernel features, the
kernel model, the network sum, kernel calibration and the CLI (small generated graphs, short budgets)."""

import json
import math
import os
import subprocess
import sys

import pytest

from scaleprof.errors import BadInput
from scaleprof.predict import (KernelCalibration, KernelModel, calibrate_kernels, file_kernels, fit_kernels,
                               load_kernels, predict_kernels, save_kernels)
from scaleprof.predict.graph_shapes import propagate
from scaleprof.predict.kernel_model import FAR, fit_key
from scaleprof.predict.onnx_kernels import Kernel

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def small_net(path, channels=16, op_tail=None, input_shape=(1, 3, 32, 32)):
    """conv 3x3 s2 + ReLU -> conv 1x1 + residual add + ReLU -> maxpool -> flatten -> gemm (+ an op_tail)."""
    rng = np.random.default_rng(0)
    c = channels
    w = {"w1": rng.standard_normal((c, 3, 3, 3)), "b1": rng.standard_normal(c), "w2": rng.standard_normal((c, c, 1, 1)),
         "wg": rng.standard_normal((c * 8 * 8, 10)), "bg": rng.standard_normal(10)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["a"]), helper.make_node("Relu", ["a"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "wg", "bg"], ["y"])]
    out = "y"
    if op_tail:
        nodes.append(helper.make_node(op_tail, ["y"], ["z"]))
        out = "z"
    for i, n in enumerate(nodes):
        n.name = f"n{i}_{n.op_type}"
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [input_shape[0], 10])],
                              [numpy_helper.from_array(v.astype("float32"), k) for k, v in w.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_shapes_agree_with_onnx_shape_inference(tmp_path):
    model = onnx.load(str(small_net(tmp_path / "n.onnx")))
    ours = propagate(model, (2, 3, 32, 32))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    inferred = onnx.shape_inference.infer_shapes(model)
    theirs = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in inferred.graph.value_info}
    assert theirs and all(ours[name] == shape for name, shape in theirs.items()), (ours, theirs)


def test_kernels_are_what_onnx_runtime_runs(tmp_path):
    graph = file_kernels(small_net(tmp_path / "n.onnx"), threads=1)
    convs = [k for k in graph.kernels if k.kind == "conv"]
    assert len(convs) == 2                                  # the ReLUs and the residual add were fused in
    first, second = convs
    assert (first.kernel, first.stride, first.channels_out, first.size_out) == (3, 2, 16, 256)
    assert first.flops == 16 * 256 * 3 * 9 and "Relu" in first.fused
    assert "Add" in second.fused and first.intensity > 0
    assert not any(k.op == "Relu" for k in graph.kernels)
    assert {k.kind for k in graph.kernels} >= {"conv", "pooling", "linear"}
    assert graph.input_shape == (1, 3, 32, 32)
    bigger = file_kernels(tmp_path / "n.onnx", threads=1, batch=4)
    assert bigger.flops == 4 * graph.flops


def _conv(cin, cout, size, k=3):
    return Kernel(name=f"c{cin}-{cout}-{size}", op="nchwc.Conv", kind="conv", kernel=k, channels_in=cin,
                  channels_out=cout, size_in=size, size_out=size, flops=cin * cout * size * k * k,
                  bytes_read=4 * (cin * size + cin * cout * k * k), bytes_written=4 * cout * size)


def test_kernel_model_learns_a_trend_and_flags_what_it_never_saw():
    kernels = [_conv(c, c * 2, s) for c in (16, 32, 64, 128) for s in (196, 784, 3136)]
    times = [0.002 + 1e-8 * k.flops for k in kernels]
    model = fit_key(kernels, times)
    held = _conv(48, 96, 1568)
    ms, distance = model.predict(held)
    assert abs(ms / (0.002 + 1e-8 * held.flops) - 1) < 0.1 and distance < FAR
    assert model.predict(_conv(2048, 2048, 50176 * 4))[1] > FAR
    full = fit_kernels(list(zip(kernels, times)), [])
    pool = Kernel(name="p", op="MaxPool", kind="pooling", kernel=3, flops=1000, bytes_read=4000, bytes_written=1000)
    estimate = full.estimate(pool)
    assert not estimate.covered and estimate.far


def test_network_sum_groups_shares_and_strict():
    kernels = [_conv(c, c, 784) for c in (16, 32, 64, 128)]
    model = KernelModel(keys={"conv/nchwc": fit_key(kernels, [0.001 * (i + 1) for i in range(4)])},
                        per_run_ms=0.01, per_kernel_ms=0.0)
    pool = Kernel(name="pool1", op="MaxPool", kind="pooling", kernel=3, flops=10 ** 6, bytes_read=4000,
                  bytes_written=1000)
    prediction = predict_kernels(model, kernels + [pool])
    assert math.isclose(prediction.latency_ms, sum(prediction.groups.values()))
    assert prediction.low_ms < prediction.latency_ms < prediction.high_ms
    assert prediction.groups["run overhead"] == pytest.approx(0.01)
    shares = sum(row["share"] for row in prediction.per_layer())
    assert shares == pytest.approx(1 - 0.01 / prediction.latency_ms)
    assert any("pooling/nchw" in w and "never timed" in w and "pool1" in w for w in prediction.warnings)
    assert 0 < prediction.uncovered_share < 1
    with pytest.raises(BadInput, match="--strict: 1 pooling/nchw"):
        predict_kernels(model, kernels + [pool], strict=True)
    assert not predict_kernels(model, kernels, strict=True).uncovered_share


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """A nine-second kernel calibration of cpu-ort-1t, saved."""
    directory = tmp_path_factory.mktemp("kernels")
    cal = calibrate_kernels("cpu-ort-1t", budget_min=0.15, seed=1)
    return cal, save_kernels(cal, directory)


def test_calibration_times_kernels_and_round_trips(calibration, tmp_path):
    cal, path = calibration
    assert isinstance(cal, KernelCalibration) and cal.graphs >= 3 and cal.target_config["threads"] == 1
    assert any(key.startswith("conv/") for key in cal.model.keys)
    assert all(ms > 0 for _, ms in cal.rows)
    again = load_kernels(path)
    net = file_kernels(small_net(tmp_path / "n.onnx"), threads=1)
    assert predict_kernels(again.model, net.kernels).latency_ms == pytest.approx(
        predict_kernels(cal.model, net.kernels).latency_ms)
    assert len(again.rows) == len(cal.rows)
    # every timed kernel is kept: an 8-minute calibration's file is megabytes, and is read back whole
    import dataclasses

    big = save_kernels(dataclasses.replace(cal, rows=cal.rows * (1 + (3 << 20) // len(path.read_bytes()))), tmp_path)
    assert big.stat().st_size > 1 << 20 and len(load_kernels(big).rows) > len(cal.rows)


@pytest.mark.parametrize("target, phrase", [("cpu-torch", "ONNX Runtime's CPU kernels only"),
                                            ("gpu-x", "unknown target")])
def test_calibration_refuses_other_targets(target, phrase):
    with pytest.raises(BadInput, match=phrase):
        calibrate_kernels(target, budget_min=0.05)


def scaleprof(*args):
    return subprocess.run([sys.executable, "-m", "scaleprof.cli", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


def one_line_error(done, *phrases):
    assert done.returncode == 2, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_cli_predicts_an_onnx_file_per_layer(calibration, tmp_path):
    _, path = calibration
    done = scaleprof("predict", small_net(tmp_path / "n.onnx"), "--target", "cpu-ort-1t", "--calibration", path,
                     "--json", "--per-layer", "--batch", "2")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["batch"] == 2 and data["latency_ms"] > 0 and data["interval_ms"][0] < data["latency_ms"]
    assert {row["kind"] for row in data["per_layer"]} >= {"conv", "linear"}
    summed = sum(row["predicted_ms"] for row in data["per_layer"]) + data["groups_ms"].get("run overhead", 0)
    assert summed == pytest.approx(data["latency_ms"])
    text = scaleprof("predict", tmp_path / "n.onnx", "--target", "cpu-ort-1t", "--calibration", path)
    assert text.returncode == 0 and "kernels after" in text.stdout, text.stderr
    groups = next(line for line in text.stdout.splitlines() if line.strip().startswith("per group:"))
    assert " conv " in groups and " ms (" in groups    # ordered by time, so conv need not come first


def test_cli_bad_input_is_one_line(calibration, tmp_path):
    _, path = calibration
    (tmp_path / "junk.onnx").write_text("not a model")
    one_line_error(scaleprof("predict", tmp_path / "junk.onnx", "--target", "cpu-ort-1t", "--calibration", path),
                   "not a readable ONNX model")
    flat = small_net(tmp_path / "flat.onnx", input_shape=(1, 3072))
    one_line_error(scaleprof("predict", flat, "--target", "cpu-ort-1t", "--calibration", path), "fixed rank")
    tail = small_net(tmp_path / "tail.onnx", op_tail="Abs")     # ORT fuses no Abs into the Gemm (it fuses a Softplus)
    one_line_error(scaleprof("predict", tail, "--target", "cpu-ort-1t", "--calibration", path, "--strict"),
                   "--strict", "never timed")
    data = json.loads(path.read_text())
    data["env_key"] = "0000another"
    (tmp_path / "other.json").write_text(json.dumps(data))
    one_line_error(scaleprof("predict", tail, "--target", "cpu-ort-1t", "--calibration", tmp_path / "other.json"),
                   "another environment")
    one_line_error(scaleprof("predict", tail, "--target", "cpu-ort", "--calibration", path), "not of 'cpu-ort'")
    one_line_error(scaleprof("calibrate", "--kernels", "--target", "cpu-torch", "--budget", "0.1"),
                   "ONNX Runtime's CPU kernels only")


def test_zoo_queries_go_through_the_kernel_model_where_the_target_has_one(calibration, tmp_path):
    """A kernel calibration (with a sweep's network correction) and a sweep calibration of the target in the
    store: `predict MODEL --strategy` exports the configuration once and the kernel model answers, saying so;
    --per-layer, --measure and --strict work as for a file."""
    from scaleprof.predict import calibrate, save
    from tests.predict.synthetic import samples

    _, path = calibration
    cache = tmp_path / "cache"
    (cache / "calibrations").mkdir(parents=True)
    data = json.loads(path.read_text())
    data["correction"] = {"offset_ms": 0.05, "scale": 1.1, "networks": ["a", "b", "c"], "source": "out/zoo"}
    (cache / "calibrations" / path.name).write_text(json.dumps(data))
    save(calibrate(samples(target="cpu-ort-1t"), "cpu-ort-1t", "env0", with_evaluation=False), cache / "calibrations")
    env = {**os.environ, "SCALEPROF_CACHE_DIR": str(cache)}

    def predict(*flags):
        return subprocess.run([sys.executable, "-m", "scaleprof.cli", "predict", "efficientnet_b0", "--strategy", "w",
                               "--scale", "2", "--resolution", "64", "--target", "cpu-ort-1t", *flags],
                              capture_output=True, text=True, env=env, timeout=600)

    done = predict("--json", "--per-layer", "--measure")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["predictor"] == "kernel model + correction from sweep out/zoo"
    assert "sweep calibration (group model) is not used" in answer["predictor_reason"]
    assert (answer["strategy"], answer["scale"], answer["resolution"]) == ("w", 2.0, [64, 64])
    assert answer["latency_ms"] == pytest.approx(0.05 + 1.1 * answer["uncorrected_ms"])
    assert any(row["kind"] == "depthwise conv" for row in answer["per_layer"])
    assert answer["measured_run_ms"] > 0 and any(row["measured_ms"] for row in answer["per_layer"])
    assert list((cache / "onnx").glob("efficientnet_b0-*.onnx"))
    text = predict()
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("efficientnet_b0 w x2 @64x64 b1 fp32 on cpu-ort-1t")
    assert "predictor: kernel model + correction from sweep out/zoo: cpu-ort-1t has a kernel calibration" in text.stdout
    strict = predict("--strict")
    if answer["uncovered_work_share"] > 0:                   # a kernel kind this short calibration never timed
        one_line_error(strict, "--strict", "never timed")
    else:
        assert strict.returncode == 0 and "kernel model" in strict.stdout, strict.stderr


def test_a_sweeps_layer_profiles_join_the_kernel_data(calibration, tmp_path):
    """A one-point sweep profiled per layer here: its layers become timed kernels of the calibration."""
    import shutil

    _, path = calibration
    store = tmp_path / "kernels"
    store.mkdir()
    shutil.copy(path, store / path.name)
    (tmp_path / "sweep.yaml").write_text(
        "models: [efficientnet_b0]\nstrategies: [w]\nscales: [1]\nresolutions: [64]\n"
        "targets:\n  - {name: cpu-ort-1t, backend: ort, device: cpu, threads: 1}\n"
        "timing: {min_time_s: 0.2, max_time_s: 1.0, layers: true}\n")
    env = {**os.environ, "SCALEPROF_CACHE_DIR": str(tmp_path / "cache")}
    swept = subprocess.run([sys.executable, "-m", "scaleprof.cli", "sweep", str(tmp_path / "sweep.yaml"), "-o",
                            str(tmp_path / "sweep")], capture_output=True, text=True, env=env, timeout=900)
    assert swept.returncode == 0, swept.stderr
    done = subprocess.run([sys.executable, "-m", "scaleprof.cli", "calibrate", "--kernels", "--target", "cpu-ort-1t",
                           str(tmp_path / "sweep"), "-o", str(store)], capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    added = int(done.stdout.split("added ")[1].split()[0])
    assert added > 10
    assert len(load_kernels(store / path.name).rows) == len(load_kernels(path).rows) + added
    correction = load_kernels(store / path.name).correction
    assert "network correction:" in done.stdout and correction.networks and correction.scale > 0
    assert correction.source == str(tmp_path / "sweep")
    # the report: nothing about the kernel model without a kernel calibration, a per-layer table with one
    report = tmp_path / "sweep" / "report.md"
    assert "Kernel model against the layer profiles" not in report.read_text()
    (tmp_path / "cache" / "calibrations").mkdir(parents=True)
    shutil.copy(store / path.name, tmp_path / "cache" / "calibrations" / path.name)
    reported = subprocess.run([sys.executable, "-m", "scaleprof.cli", "report", str(tmp_path / "sweep")],
                              capture_output=True, text=True, env=env, timeout=600)
    assert reported.returncode == 0, reported.stderr
    text = report.read_text().split("Kernel model against the layer profiles")[1]
    assert "with network correction ms" in text and text.count("w x1 @64 b1") >= 1 + 3
    refused = subprocess.run([sys.executable, "-m", "scaleprof.cli", "calibrate", "--kernels", "--target", "cpu-ort",
                              str(tmp_path / "sweep"), "-o", str(store)], capture_output=True, text=True, env=env)
    one_line_error(refused, "no kernel calibration of target 'cpu-ort'")


def test_kernels_do_not_depend_on_where_the_weights_lie(tmp_path):
    """Embedded weights are read as references into the file, external ones from their own file: ORT
    optimises the same graph either way, at the file's own batch and at another."""
    import dataclasses

    path = small_net(tmp_path / "n.onnx", channels=64)          # the gemm's 160 KB weight stays in the file
    (tmp_path / "ext").mkdir()
    onnx.save(onnx.load(str(path)), str(tmp_path / "ext" / "n.onnx"), save_as_external_data=True, location="w.bin",
              size_threshold=0)
    for batch in (None, 3):
        embedded, external = (sorted(repr(dataclasses.replace(k, name=""))
                                     for k in file_kernels(p, 1, batch=batch).kernels)
                              for p in (path, tmp_path / "ext" / "n.onnx"))
        assert embedded == external and any("Gemm" in k for k in embedded)


def test_a_long_calibration_is_read_back_and_an_unreadable_one_is_named(calibration, tmp_path):
    """An 8-minute calibration keeps ~9,000 timed kernels (4 MB): `predict` must read what `calibrate` wrote;
    a file of the store it cannot read is named, not passed over as if there were none."""
    import dataclasses

    from scaleprof.predict import find_kernels

    cal, _ = calibration
    long = dataclasses.replace(cal, rows=cal.rows * (4_000_000 // (200 * len(cal.rows)) + 1))
    path = save_kernels(long, tmp_path / "store")
    assert path.stat().st_size > 4_000_000
    assert len(find_kernels("cpu-ort-1t", tmp_path / "store").rows) == len(long.rows)
    path.write_text('{"format": "scaleprof-kernel-calibration", "version": 0}')
    with pytest.raises(BadInput, match=f"no readable kernel calibration of target 'cpu-ort-1t': {path}"):
        find_kernels("cpu-ort-1t", tmp_path / "store")
