"""The sweep, `recommend --verify` and `profile --per-layer` go through one export -> build -> time
chain: the same point names the same export file, is checked at the same parity shapes and builds
the same engine (so the same cache key) whichever of them asks. The export, the build and the
timing are recorded here, not run."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import scaleprof.profile
from scaleprof.engines.base import ShapePoint
from scaleprof.export import onnx_export
from scaleprof.profile.types import LatencyStats, TimingSettings
from scaleprof.sweep.config import Point, Target
from scaleprof.sweep import stages as stages_module
from scaleprof.sweep.stages import UpstreamStages
from scaleprof.tools import profile as profile_tool
from scaleprof.tools import recommend

TARGET = Target("cpu-ort-2", "ort", "cpu", 2, (("graph_optimization", "all"),))


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALEPROF_CACHE_DIR", str(tmp_path / "cache"))
    calls = {"export": [], "build": []}

    def fake_export(spec, path, options):
        Path(path).write_bytes(b"onnx")
        calls["export"].append((Path(path).name, options))

    def fake_build(onnx_path, spec, cache_dir, **kw):
        calls["build"].append((Path(onnx_path).name, spec))
        engine = SimpleNamespace(release=lambda: None)
        return SimpleNamespace(engine=engine, key=f"key-of-{hash(spec)}", cached=False)

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    monkeypatch.setattr(stages_module, "build_engine", fake_build)       # where the chain calls them
    monkeypatch.setattr(stages_module, "time_engine", lambda *a, **kw: LatencyStats(median=1.0, batch=1,
                                                                                    ci95=(0.9, 1.1), cv=0.01))
    return calls


def test_recommend_verify_and_the_sweep_export_and_build_the_same_point_alike(recorded, tmp_path):
    point = Point("resnet18", "none", None, 1.0, None, 2, "fp32", TARGET.name)
    stages = UpstreamStages(roofline=False)
    spec = stages.spec(point)
    onnx_path = stages.export(spec, point.precision, point.flavour, tmp_path / "sweep" / "onnx")
    stages.build(onnx_path, spec, TARGET, point.precision, [(point.batch, spec.resolution)],
                 tmp_path / "sweep" / "engines")

    query = SimpleNamespace(model="resnet18", strategy=None, scale=1.0, alpha=None, batch=2, precision="fp32")
    candidate = SimpleNamespace(query=query, resolution=spec.resolution)
    measured = recommend.measure(candidate, TARGET.to_dict(), tmp_path / "verify")

    assert measured["measured_ms"] == 1.0
    (sweep_file, sweep_options), (verify_file, verify_options) = recorded["export"]
    assert sweep_file == verify_file == f"resnet18-{spec.key}-fp32.onnx"
    assert sweep_options == verify_options and sweep_options.parity_batches == (1,)
    (sweep_onnx, sweep_build), (verify_onnx, verify_build) = recorded["build"]
    assert sweep_onnx == verify_onnx == sweep_file
    assert sweep_build == verify_build                          # the engine cache key follows from these
    assert (verify_build.backend, verify_build.threads, verify_build.options) == ("ort", 2, TARGET.options)


def test_profile_per_layer_and_the_sweep_give_the_layer_profiler_the_same_counts(monkeypatch, tmp_path):
    given = []

    def profiler(engine, shape, counts, *a, **kw):
        given.append(counts)
        return "report"
    monkeypatch.setattr(scaleprof.profile, "profile_layers", profiler)       # as the profile tool finds it
    monkeypatch.setattr(stages_module, "profile_layers", profiler)           # as the sweep's stages hold it
    onnx_path = _two_convs(tmp_path / "convs.onnx")
    engine = SimpleNamespace(directory=tmp_path, manifest=SimpleNamespace(onnx_path=str(onnx_path)))
    args = argparse.Namespace(no_roofline=True, cache_dir=None, out=str(tmp_path))
    settings = TimingSettings(layer_iters=3)

    assert profile_tool._layers(engine, ShapePoint(2, 224), 1.0, settings, args) == "report"
    stages = UpstreamStages(roofline=False)
    stages.open(tmp_path / "sweep")
    stages.layers(engine, None, 2, 224, settings, LatencyStats(median=1.0, batch=2))
    from_profile, from_sweep = (scaleprof.profile.node_counts(counts) for counts in given)
    assert from_profile == from_sweep and set(from_sweep) == {"conv1", "conv2"}   # per image, whichever batch
    assert from_sweep["conv1"][0] == 8 * 3 * 9 * 224 * 224                      # counted them


def _two_convs(path: Path) -> Path:
    """A dynamic-shape ONNX file of two 3x3 convolutions (what count_onnx counts)."""
    weights = [numpy_helper.from_array(np.zeros(shape, np.float32), name)
               for name, shape in (("w1", (8, 3, 3, 3)), ("w2", (8, 8, 3, 3)))]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["t1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["t1", "w2"], ["output"], name="conv2", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "convs",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 8, "h", "w"])],
                              weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path
