"""Real GPU outputs (tests/fixtures/gpu/h100, recorded on an NVIDIA H100 80GB HBM3 by
benchmarks/gpu_traces.py and a gpu_validation sweep) checked on the CPU: ONNX Runtime's own CUDA
Chrome trace, torch.profiler's CUDA module trace, and the sweep's results and report."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import re
from pathlib import Path

import pytest

from scaleprof.engines.base import LayerEvent, LayerTrace, ShapePoint
from scaleprof.engines.torch_profile import ROOT, merge_folded_norms
from scaleprof.sweep.result import PointResult

H100 = Path(__file__).resolve().parents[1] / "fixtures" / "gpu" / "h100"


def _trace(name: str) -> LayerTrace:
    data = json.loads((H100 / name).read_text())
    events = tuple(LayerEvent(e["name"], e["op_type"], tuple(e["times_ms"]), tuple(e["onnx_nodes"]), e["opaque"])
                   for e in data["events"])
    return LayerTrace(events, data["iterations"], data["profiler"])


def _total(events) -> float:
    return math.fsum(t for e in events for t in e.times_ms)


def _mapped_share(events) -> float:
    """Share of the time in events that name exported ONNX nodes."""
    return math.fsum(t for e in events if e.onnx_nodes for t in e.times_ms) / _total(events)


@pytest.fixture(scope="module")
def b0_graph(b0_onnx):
    from scaleprof.engines.anchors import OnnxGraph

    return OnnxGraph(b0_onnx)


@pytest.fixture(scope="module")
def b0_counts(b0_onnx):
    from scaleprof.complexity import count_onnx
    from scaleprof.profile.layers import node_counts

    return node_counts(count_onnx(b0_onnx, 1, 224))


# -- ONNX Runtime's CUDA trace ----------------------------------------------------------------------
def test_parse_profile_reproduces_the_recorded_ort_cuda_layers():
    from scaleprof.engines.ort_profile import parse_profile

    raw = json.loads(gzip.decompress((H100 / "ort_cuda_trace.json.gz").read_bytes()))
    recorded = json.loads((H100 / "ort_cuda_layers.json").read_text())
    nodes = [e for e in raw if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    assert nodes and {e["args"]["provider"] for e in nodes} == {"CUDAExecutionProvider"}
    runs = [e for e in raw if e.get("cat") == "Session" and e.get("name") == "model_run"]
    assert len(runs) == recorded["iterations"] + 3                  # 3 warm-up runs are skipped

    parsed = parse_profile(raw, recorded["iterations"])
    assert json.loads(json.dumps([dataclasses.asdict(e) for e in parsed])) == recorded["events"]
    assert len(parsed) == 190 and all(len(e.times_ms) == 10 for e in parsed)


# -- GPU layer names map onto our export ----------------------------------------------------------
def test_torch_cuda_modules_and_nodes_are_those_of_our_model_and_export(b0_onnx, b0_graph):
    import onnx

    from scaleprof.engines.torch_profile import onnx_node_map
    from scaleprof.models import base_spec, build_model

    trace = _trace("torch_cuda_layers.json")
    model = build_model(base_spec("efficientnet_b0"), device="meta")
    modules = dict(model.named_modules())
    assert trace.profiler == "torch.profiler" and len(trace.events) == 235
    assert all(e.name == ROOT or e.name in modules for e in trace.events)
    assert all(e.op_type == type(modules.get("" if e.name == ROOT else e.name)).__name__ for e in trace.events)

    recorded = [n for e in trace.events for n in e.onnx_nodes]
    assert recorded and set(recorded) <= set(b0_graph.nodes) and len(recorded) == len(set(recorded))
    node_map = onnx_node_map(onnx.load(str(b0_onnx), load_external_data=False), model)
    for e in trace.events:                                           # the same module -> nodes map as the GPU host's
        assert e.onnx_nodes == tuple(node_map.get("" if e.name == ROOT else e.name, ())), e.name


def test_ort_cuda_node_names_resolve_to_our_export(b0_graph, b0_counts):
    from scaleprof.engines.ort_profile import OrtResolver
    from scaleprof.profile.layers import build_report

    trace = _trace("ort_cuda_layers.json")
    resolver = OrtResolver(b0_graph)          # the recorded run kept no optimised model
    assert all(resolver.resolve(e).anchors for e in trace.events)   # Conv, QuickGelu fusions, SE ops, Gemm
    report = build_report(trace, b0_graph, resolver, b0_counts, ShapePoint(1, 224))
    owned = [n for r in report.layers if r.status == "measured" for n in r.onnx_nodes]
    assert sorted(owned) == sorted(b0_graph.order) and report.coverage == pytest.approx(1.0)


# -- folded BatchNorms on the real torch CUDA trace -------------------------------------------------
def test_folded_norms_merge_into_their_convs_on_the_h100_trace(b0_graph):
    trace = _trace("torch_cuda_layers.json")
    before = trace.events
    unmapped = [e for e in before if not e.onnx_nodes and any(e.times_ms)]
    assert unmapped and {e.op_type for e in unmapped} == {"BatchNormAct2d"}
    assert _mapped_share(before) < 0.85                              # ~81%: what the H100 sweep reported

    after = merge_folded_norms(before)
    assert _mapped_share(after) == 1.0
    assert _total(after) == pytest.approx(_total(before), rel=1e-12)
    for i in range(trace.iterations):                                # every iteration's total kept
        assert math.fsum(e.times_ms[i] for e in after) == pytest.approx(math.fsum(e.times_ms[i] for e in before),
                                                                        rel=1e-12)
    assert all(not any(e.times_ms) for e in after if not e.onnx_nodes)   # only empty containers stay

    by_name = {e.name: e for e in before}
    merged = [e for e in after if " + " in e.name]
    assert len(merged) == len(unmapped) == 49
    stem = next(e for e in after if e.name.startswith("conv_stem"))
    assert (stem.name, stem.op_type, stem.onnx_nodes) == ("conv_stem + bn1", "Conv2d + BatchNormAct2d",
                                                         ("/conv_stem/Conv",))
    for e in merged:
        conv, norm = e.name.split(" + ")
        assert conv.rpartition(".")[0] == norm.rpartition(".")[0]   # siblings
        assert e.onnx_nodes == by_name[conv].onnx_nodes and len(e.onnx_nodes) == 1
        assert e.times_ms == tuple(a + b for a, b in zip(by_name[conv].times_ms, by_name[norm].times_ms))
        # The export agrees: the folded Conv's output feeds the norm's activation, where it has one.
        act = by_name.get(f"{norm}.act")
        if act is not None and act.onnx_nodes:
            consumers = {c for t in b0_graph.outputs(e.onnx_nodes[0]) for c in b0_graph.consumers[t]}
            assert consumers and consumers <= set(act.onnx_nodes), e.name
    assert sum(1 for e in merged if by_name.get(e.name.split(" + ")[1] + ".act")) == 33


def test_torch_resolver_covers_the_h100_trace_after_the_merge(b0_graph, b0_counts):
    from scaleprof.engines.anchors import LayerResolver
    from scaleprof.profile.layers import build_report

    trace = _trace("torch_cuda_layers.json")
    resolver = LayerResolver(b0_graph)        # what a torch engine's layer_resolver gives
    before = build_report(trace, b0_graph, resolver, b0_counts, ShapePoint(1, 224))
    merged = LayerTrace(merge_folded_norms(trace.events), trace.iterations, trace.profiler)
    after = build_report(merged, b0_graph, resolver, b0_counts, ShapePoint(1, 224))
    assert before.coverage < 0.85 and after.coverage == pytest.approx(1.0)
    owned = [n for r in after.layers if r.status == "measured" for n in r.onnx_nodes]
    assert sorted(owned) == sorted(b0_graph.order)                   # every exported node once
    assert after.totals == before.totals


# -- the sweep's analysis on the H100 rows ----------------------------------------------------------
def _report_table() -> dict[tuple[str, str], dict]:
    """The 'Which metric predicts latency' rows of the committed report.md."""
    rows = {}
    text = (H100 / "gpu_validation_report.md").read_text()
    for line in text.splitlines():
        m = re.match(r"\| (gpu-[\w-]+) \| (\d) \| (flops|params|acts) \| ([\d.-]+) \| [^|]+ \| [^|]+ \| ([\d.-]+) "
                     r"\| [^|]+ \| [^|]+ \| (\d+) \|$", line)
        if m:
            target, rank, metric, r, r_log, n = m.groups()
            rows[(target, metric)] = {"rank": int(rank), "r": r, "r_log": r_log, "n": int(n)}
    return rows


def test_analysis_of_the_h100_sweep_pooled_matches_its_recorded_report():
    # The recorded report pooled batch 1 and 64 per target; those figures are the 'pooled' slices now.
    from scaleprof.report.analysis import analyze

    points = json.loads((H100 / "gpu_validation_results.json").read_text())["points"]
    assert len(points) == 96
    analysis = analyze([PointResult.from_flat(p) for p in points])
    table = _report_table()
    assert {t for t, _ in table} == {t for t, b in analysis.ranking if b == "pooled"} == {"gpu-torch", "gpu-ort-cuda"}
    for target in ("gpu-torch", "gpu-ort-cuda"):
        ranked = analysis.ranking[(target, "pooled")]
        assert [m.metric for m in ranked] == ["acts", "flops", "params", "layers"]   # layers: not in these rows
        assert ranked[-1].r is None
        for rank, m in enumerate(ranked[:3], 1):
            row = table[(target, m.metric)]
            assert (rank, f"{m.r:.3f}", f"{m.r_log:.3f}", m.linear.n) == (row["rank"], row["r"], row["r_log"], row["n"])
    torch_r = {m.metric: round(m.r, 3) for m in analysis.ranking[("gpu-torch", "pooled")][:3]}
    ort_r = {m.metric: round(m.r, 3) for m in analysis.ranking[("gpu-ort-cuda", "pooled")][:3]}
    assert torch_r == {"acts": 0.991, "flops": 0.969, "params": 0.284}
    assert ort_r == {"acts": 0.953, "flops": 0.927, "params": 0.361}


def _points_with_layer_counts() -> list[PointResult]:
    counts = json.loads((H100 / "layer_counts.json").read_text())
    points = json.loads((H100 / "gpu_validation_results.json").read_text())["points"]
    return [PointResult.from_flat({**p, "layer_count": counts[f"{p['model']}|{p['strategy']}|{p['alpha']}|"
                                                               f"{float(p['scale']):g}"]}) for p in points]


def test_per_batch_verdicts_of_the_h100_sweep():
    # Per batch size: at 64 acts beats flops clearly (Dollar et al.'s claim); at 1 every work metric is
    # weak and the layer count (kernels launched) predicts latency.
    from scaleprof.report.analysis import analyze

    analysis = analyze(_points_with_layer_counts())
    r = {key: {m.metric: round(m.r, 3) for m in ranked} for key, ranked in analysis.ranking.items()}
    assert r[("gpu-torch", 64)] == {"acts": 0.978, "flops": 0.919, "layers": 0.658, "params": 0.620}
    assert r[("gpu-ort-cuda", 64)] == {"acts": 0.979, "flops": 0.899, "layers": 0.676, "params": 0.589}
    assert r[("gpu-torch", 1)] == {"layers": 0.973, "acts": 0.661, "params": 0.655, "flops": 0.610}
    assert r[("gpu-ort-cuda", 1)] == {"layers": 0.928, "params": 0.518, "acts": 0.372, "flops": 0.323}
    for target in ("gpu-torch", "gpu-ort-cuda"):
        assert analysis.best_metric((target, 64)).metric == "acts"
        assert analysis.best_metric((target, 1)).metric == "layers"
    assert set(analysis.verdicts()) == {("gpu-torch", 1), ("gpu-torch", 64), ("gpu-ort-cuda", 1), ("gpu-ort-cuda", 64)}
    # the derived report beside the fixtures says the same (benchmarks/h100_report.py wrote it)
    text = (H100 / "gpu_validation_report_per_batch.md").read_text()
    for verdict in analysis.verdicts().values():
        assert verdict in text
    assert "| gpu-torch | pooled | 1 | acts | 0.991 |" in text


@pytest.mark.slow
def test_h100_layer_counts_are_the_networks():
    from scaleprof.complexity import count_spec
    from scaleprof.models import scale_spec

    counts = json.loads((H100 / "layer_counts.json").read_text())
    assert len(counts) == 24 and counts["efficientnet_b0|d|None|1"] == count_spec("efficientnet_b0").layer_count
    assert counts["efficientnet_b0|d|None|2"] == count_spec(scale_spec("efficientnet_b0", "d", 2.0)).layer_count
    assert counts["efficientnet_b0|w|None|4"] == counts["efficientnet_b0|r|None|4"] == 189     # no depth added
