"""A scaled EfficientDet through the whole pipeline on the CPU: scale -> count -> export (ten outputs,
dynamic batch, parity in ONNX Runtime) -> build -> profile -> report; then the same file in the PyTorch
engine and, where the module is installed, TensorRT-RTX's parser. To keep it quick the detector is D0
scaled down by resolution alone (r, s = 1/16: 512 -> 128 px), so it is exported and timed at 128 px."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from scaleprof.complexity import compare_counts, count_onnx, count_spec, node_modules
from scaleprof.export import read_metadata
from scaleprof.models import scale_spec
from scaleprof.report import write_report
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.runner import run_sweep
from scaleprof.sweep.store import Store

MODEL, STRATEGY, SCALE, RES = "tf_efficientdet_d0", "r", 1 / 16, 128
OUTPUTS = [f"{kind}_p{level}" for kind in ("class", "box") for level in range(3, 8)]
CONFIG = f"""
name: detector-pipeline
models: [{MODEL}]
strategies: [{STRATEGY}]
scales: [{SCALE}]
batch_sizes: [1, 2]
resolutions: [auto]
targets: [cpu-ort]
timing: {{warmup_iters: 1, warmup_s: 0.0, min_iters: 3, min_time_s: 0.05, max_time_s: 0.3, layer_iters: 2, layers: true,
         retry_budget_s: 2}}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("detector")
    result = run_sweep(parse_config(CONFIG), out, progress=False, log=lambda msg: None)
    assert result.failed == 0 and result.measured == 2, result
    paths = write_report(out, plots=False)
    with Store(out, create=False) as store:
        points = store.points("ok", with_layers=True)
    onnx_path = next((out / "onnx").glob("*.onnx"))
    return out, points, onnx_path, paths


def test_scaled_detector_is_measured_with_full_layer_coverage(swept):
    _, points, _, _ = swept
    spec = scale_spec(MODEL, STRATEGY, SCALE)
    assert {p.batch for p in points} == {1, 2}
    assert spec.resolution == RES and spec.flops_ratio == pytest.approx(SCALE, rel=0.05)
    for point in points:
        assert point.spec["resolution"] == RES and point.resolution == RES
        assert point.layers.coverage == 1.0
        categories = {layer.category for layer in point.layer_rows}
        assert {"head", "fusion", "resample", "conv", "depthwise conv", "SE"} <= categories
        # layers carry ONNX-node counts: acts equal the PyTorch count exactly (flops add folded biases)
        assert sum(layer.acts for layer in point.layer_rows) == point.acts * point.batch


def test_export_has_ten_outputs_dynamic_batch_and_parity(swept):
    _, _, onnx_path, _ = swept
    model = onnx.load(str(onnx_path), load_external_data=False)
    assert [o.name for o in model.graph.output] == OUTPUTS
    assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in model.graph.output)
    meta = read_metadata(onnx_path)
    assert meta.export["outputs"] == OUTPUTS and meta.export["spatial_multiple"] == 128
    assert meta.export["parity"] and all(p["ok"] and p["max_rel"] < 1e-4 for p in meta.export["parity"])


def test_onnx_counts_explain_the_pytorch_counts_exactly(swept):
    _, _, onnx_path, _ = swept
    model = onnx.load(str(onnx_path))
    spec = read_metadata(onnx_path).spec
    onnx_counts, torch_counts = count_onnx(model, resolution=RES), count_spec(spec, RES)
    comparison = compare_counts(onnx_counts, torch_counts, node_modules(model))
    assert onnx_counts.acts == torch_counts.acts
    assert comparison.exact, comparison.mismatches[:5]
    assert len(comparison.constants_folded) == 24           # 3 BiFPN layers x 8 fusion nodes
    assert comparison.per_call_weights                      # class/box nets: one weight copy per level


def test_report_separates_the_detector_and_names_its_layer_categories(swept):
    _, _, _, paths = swept
    text = paths.markdown.read_text()
    assert MODEL.replace("_", r"\_") in text and "head" in text and "fusion" in text and "resample" in text
    assert len(json.loads(paths.json.read_text())["points"]) == 2


def test_the_pytorch_engine_runs_the_file_and_matches_ort(swept, tmp_path):
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine
    from scaleprof.export.rebuild import rebuild_model

    _, _, onnx_path, _ = swept
    shape = ShapePoint(2, RES)
    x = np.random.default_rng(0).standard_normal(shape.dims()).astype(np.float32)
    outputs = {}
    for backend in ("ort", "torch"):
        engine = build_engine(onnx_path, BuildSpec(backend=backend, shapes=(shape,)), tmp_path,
                              model_source=rebuild_model).engine
        engine.load()
        outputs[backend] = engine.run({"input": x})
        engine.release()
    assert list(outputs["torch"]) == OUTPUTS
    for name in OUTPUTS:
        ort, torch = outputs["ort"][name], outputs["torch"][name]
        assert ort.shape == torch.shape and ort.shape[0] == 2
        assert np.max(np.abs(ort - torch)) <= 1e-4 * max(1.0, float(np.max(np.abs(torch))))


def test_tensorrt_rtx_builds_the_detector_and_maps_its_layers(swept, tmp_path):
    """The tensorrt-rtx backend builds the detector ahead of time (no GPU needed; the plan is finished
    on the user's GPU): two optimisation profiles, and a network layer for every exported node, whose
    predicted counts add up to the file's."""
    trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine
    from scaleprof.engines.tensorrt.network import layer_counts, read_layers
    from scaleprof.profile import node_counts

    _, _, onnx_path, _ = swept
    spec = BuildSpec(backend="tensorrt-rtx", device="cuda", shapes=(ShapePoint(1, RES), ShapePoint(2, 2 * RES)))
    engine = build_engine(onnx_path, spec, tmp_path).engine
    extras = engine.manifest.extras
    assert extras["library"] == "tensorrt_rtx" and extras["strongly_typed"] and len(extras["profiles"]) == 2
    layers = read_layers(engine.directory / extras["layers_json"])
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    assert {n.name for n in graph.node} <= {n for layer in layers for n in layer["onnx_nodes"]}
    counts = count_onnx(onnx_path, 1, RES)
    rows = layer_counts(layers, node_counts(counts))
    assert sum(r["flops"] for r in rows) == counts.flops and sum(r["acts"] for r in rows) == counts.acts
    assert trt.__version__ == engine.manifest.backend_version


def test_report_ranks_detectors_and_classifiers_apart():
    """A target that measured both gets one group per task, and a sentence comparing their predictors."""
    from scaleprof.report.analysis import analyze, grouped
    from scaleprof.sweep.result import LATENCY_MS, PointResult

    def row(model, strategy, scale, flops, acts, latency):
        return PointResult.from_flat({"model": model, "strategy": strategy, "alpha": None, "scale": scale,
                                      "resolution": 512, "batch": 1, "precision": "fp32", "target": "cpu-ort",
                                      "flops": flops, "params": 1e6, "acts": acts, LATENCY_MS: latency})

    rows = [row(MODEL, s, k, 2.5e9 * k, a, 100 * k) for s, k, a in (("d", 2, 9e7), ("w", 2, 6e7), ("r", 4, 2e8))]
    rows += [row("tf_efficientnet_b0", s, k, 4e8 * k, a, a / 1e6) for s, k, a in
             (("d", 2, 1.3e7), ("w", 2, 9e6), ("r", 4, 2.7e7))]
    assert list(grouped(rows)) == ["cpu-ort (classifiers)", "cpu-ort (detectors)"]
    verdicts = analyze(rows).verdicts()
    assert verdicts[("cpu-ort", 1, "tasks")] == (
        "On cpu-ort at batch 1, detector latency follows flops best (r=1.000), while the classifiers' alone "
        "follows acts best (r=1.000).")
    assert list(grouped(rows[:3])) == ["cpu-ort"]        # one task on a target: named as before
