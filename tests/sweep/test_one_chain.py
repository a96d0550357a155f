"""The sweep, `recommend --verify` and `profile --per-layer` go through one export -> build -> time
chain: the same point names the same export file, is checked at the same parity shapes and builds
the same engine (so the same cache key) whichever of them asks. The export, the build and the
timing are recorded here, not run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from scaleprof.engines import cache as engine_cache
from scaleprof.export import onnx_export
from scaleprof.profile import timing
from scaleprof.profile.types import LatencyStats
from scaleprof.sweep.grid import Point, Target
from scaleprof.sweep.stages import UpstreamStages
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
    monkeypatch.setattr(engine_cache, "build_engine", fake_build)
    monkeypatch.setattr(timing, "time_engine", lambda *a, **kw: LatencyStats(median=1.0, batch=1, ci95=(0.9, 1.1),
                                                                               cv=0.01))
    return calls


def test_recommend_verify_and_the_sweep_export_and_build_the_same_point_alike(recorded, tmp_path):
    point = Point("resnet18", "none", None, 1.0, None, 2, "fp32", TARGET.name)
    stages = UpstreamStages(roofline=False)
    spec = stages.spec(point)
    onnx_path = stages.export(spec, point.precision, tmp_path / "sweep" / "onnx")
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
