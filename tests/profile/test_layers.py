"""Layer profiles of a real ORT engine (the trace file is ORT's own, written by running the model),
mapped to the exported ONNX nodes and their counts."""

from collections import Counter

import pytest

from scaleprof.complexity import count_onnx
from scaleprof.engines.base import LayerEvent, LayerTrace, ShapePoint
from scaleprof.errors import BadInput, EnvironmentProblem
from scaleprof.profile.layers import NOT_EXECUTED, build_report, profile_layers
from scaleprof.engines.anchors import LayerResolver, OnnxGraph
from scaleprof.profile.roofline import DevicePeaks


def _peaks():
    return DevicePeaks("test cpu", "cpu", "fp32", 1, macs_per_s=1e9, bytes_per_s=1e9, method="fixed", measured_at=0)


@pytest.fixture(scope="module")
def report(tiny_engine):
    counts = count_onnx(tiny_engine.manifest.onnx_path, 2, 32)
    with tiny_engine:
        return profile_layers(tiny_engine, ShapePoint(2, 32), counts, end_to_end_ms=1.0, iterations=5,
                              peaks=_peaks()), counts


def test_every_exported_node_once_and_counts_sum_to_totals(report, tiny_engine):
    rep, counts = report
    graph = OnnxGraph(tiny_engine.manifest.onnx_path)
    owned = [n for r in rep.layers if r.status != "helper" for n in r.onnx_nodes]
    assert sorted(owned) == sorted(graph.order)                     # none lost, none twice
    assert sum(r.flops for r in rep.layers) == counts.flops * counts.batch == rep.totals["flops"]
    assert sum(r.params for r in rep.layers) == counts.params == rep.totals["params"]
    assert sum(r.acts for r in rep.layers) == counts.acts * counts.batch == rep.totals["acts"]
    assert sum(c["flops"] for c in rep.by_category.values()) == rep.totals["flops"]
    assert all(r.flops == r.params == r.acts == 0 for r in rep.layers if r.status == "helper")


def test_fused_and_unfused_layers(report, tiny_engine):
    rep, _ = report
    graph = OnnxGraph(tiny_engine.manifest.onnx_path)
    ops = {r.name: tuple(sorted(graph.nodes[n].op_type for n in r.onnx_nodes)) for r in rep.layers
           if r.status == "measured"}
    shapes = Counter(ops.values())
    # ORT fuses conv + residual add + relu into one NCHWc convolution, conv + relu, and x*sigmoid(x)
    assert shapes[("Add", "Conv", "Relu")] == 2
    assert shapes[("Conv", "Relu")] >= 3
    assert shapes[("Mul", "Sigmoid")] == 2                           # SiLU -> QuickGelu
    assert shapes[("Gemm",)] == 1                                    # unfused: one node
    assert all(Counter(o)["Conv"] <= 1 for o in ops.values())
    cats = {r.category for r in rep.layers}
    assert {"conv", "depthwise conv", "SE", "activation", "linear"} <= cats
    assert rep.coverage >= 0.95
    assert rep.overhead_ratio == pytest.approx(rep.iteration_ms / 1.0)   # end_to_end_ms=1.0 was passed in
    assert rep.iteration_ms >= min(r.time_ms for r in rep.layers if r.time_ms > 0)


def test_roofline_columns(report):
    rep, _ = report
    convs = [r for r in rep.layers if r.category == "conv" and r.status == "measured"]
    for r in convs:
        assert r.flops_per_s == pytest.approx(r.flops / (r.time_ms / 1e3))
        assert r.bytes > 0 and r.bound in ("compute", "memory")
        assert 0 < r.attainment <= 1.0 + 1e-9      # peaks are raised to what a layer achieved
    assert rep.device_peaks["macs_per_s"] >= 1e9


def test_unoptimised_engine_maps_one_to_one(tiny_onnx, tmp_path):
    from scaleprof.engines.base import BuildSpec
    from scaleprof.engines.cache import build_engine

    spec = BuildSpec(backend="ort", threads=1, shapes=(ShapePoint(1, 32),), options=(("opt_level", "disable"),))
    engine = build_engine(tiny_onnx, spec, tmp_path).engine
    with engine:
        rep = profile_layers(engine, ShapePoint(1, 32), count_onnx(tiny_onnx, 1, 32), iterations=3)
    measured = [r for r in rep.layers if r.status == "measured"]
    assert all(len(r.onnx_nodes) == 1 and r.onnx_nodes[0] == r.name for r in measured)
    assert rep.coverage == pytest.approx(1.0)


def test_constant_nodes_are_reported_not_executed(tiny_engine):
    graph = OnnxGraph(tiny_engine.manifest.onnx_path)
    trace = LayerTrace((), 1, "test")
    rep = build_report(trace, graph, LayerResolver(graph), {n: (1, 1, 1) for n in graph.order}, ShapePoint(1, 32))
    row, = rep.layers
    assert row.name == NOT_EXECUTED and row.status == "not-executed" and len(row.onnx_nodes) == len(graph.order)
    assert rep.coverage == 0.0


def test_generic_resolver_splits_fused_names(tiny_engine):
    """TensorRT-style 'A + B' names and ForeignNode regions resolve through the generic resolver."""
    graph = OnnxGraph(tiny_engine.manifest.onnx_path)
    convs = [n for n in graph.order if graph.nodes[n].op_type == "Conv"]
    relu = next(n for n in graph.order if graph.nodes[n].op_type == "Relu")
    resolver = LayerResolver(graph)
    assert resolver.resolve(LayerEvent(f"{convs[0]} + {relu}", "CaskConvolution", (1.0,))).anchors == [convs[0], relu]
    assert resolver.resolve(LayerEvent("{ForeignNode[" + convs[1] + "]}", "Myelin", (1.0,))).anchors == [convs[1]]
    meta = LayerEvent("opaque", "Myelin", (1.0,), onnx_nodes=(convs[2], convs[3]), opaque=True)
    assert resolver.resolve(meta).anchors == [convs[2], convs[3]]


def test_no_layer_events_is_one_clear_error(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine, "profile_layers", lambda shape, iterations: LayerTrace((), iterations, "onnxruntime"))
    with pytest.raises(EnvironmentProblem, match="no layer events"):
        profile_layers(tiny_engine, ShapePoint(1, 32), iterations=2)


@pytest.mark.parametrize("shape, iterations, words", [
    (ShapePoint(3, 32), 2, "outside"), (ShapePoint(1, 64), 2, "outside"), (ShapePoint(1, 32), 0, "positive"),
    (ShapePoint(1, 32), -4, "positive")])
def test_bad_layer_profile_inputs(tiny_engine, shape, iterations, words):
    with pytest.raises(BadInput, match=words):
        profile_layers(tiny_engine, shape, iterations=iterations)


def test_overhead_ratio_uses_whole_profiled_iterations():
    """A stall lands in a different layer each iteration: every per-layer median drops it, but every
    iteration contains one, so the profiled iteration (and the overhead ratio) must keep it."""
    from scaleprof.engines.base import LayerEvent, LayerTrace
    from scaleprof.profile.layers import iteration_median
    from scaleprof.profile.types import LayerReport

    events = tuple(LayerEvent(f"l{i}", "Conv", tuple(5.0 if j == i else 1.0 for j in range(4))) for i in range(4))
    trace = LayerTrace(events, iterations=4, profiler="test")
    assert iteration_median(trace) == 8.0                        # 3 x 1 ms + one 5 ms stall, every iteration
    report = LayerReport(layers=(), layer_sum_ms=4.0, end_to_end_ms=8.0, coverage=1.0, profiler="test",
                         iterations=4, iteration_ms=iteration_median(trace))
    assert report.overhead_ratio == 1.0 and report.layer_sum_ms / report.end_to_end_ms == 0.5
