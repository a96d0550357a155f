"""The torch backend's CPU layer profile of efficientnet_b0 maps (almost) all its time to exported
ONNX nodes: BatchNorms the export folded into convs are merged into them, and time between
operators (Python, the profiler's hooks) is no layer's."""

from __future__ import annotations

import dataclasses
import math

import pytest

from scaleprof.engines.base import ShapePoint
from scaleprof.engines.torch_profile import merge_folded_norms

RES = 64
SHAPE = ShapePoint(1, RES)


@pytest.fixture(scope="module")
def b0(tmp_path_factory):
    from scaleprof.engines import BuildSpec, build_engine
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.export.rebuild import rebuild_model
    from scaleprof.models import base_spec

    work = tmp_path_factory.mktemp("b0")
    spec = dataclasses.replace(base_spec("efficientnet_b0"), resolution=RES)
    path = work / "efficientnet_b0.onnx"
    export_onnx(spec, path, ExportOptions(check_parity=False))
    engine = build_engine(path, BuildSpec(backend="torch", shapes=(SHAPE,), threads=1), work / "engines",
                          model_source=rebuild_model).engine
    with engine:
        yield path, engine


def _total(events, i) -> float:
    return math.fsum(e.times_ms[i] for e in events)


def test_cpu_profile_merges_each_folded_norm_into_its_conv(b0):
    import torch

    _, engine = b0
    raw = engine.profile_modules(SHAPE, iterations=3)
    modules = dict(engine.model.named_modules())
    norms = {n for n, m in modules.items() if isinstance(m, torch.nn.BatchNorm2d)}
    convs = {n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)}
    folded = [e for e in raw.events if e.name in norms]
    assert len(folded) == len(norms) == 49 and all(not e.onnx_nodes and all(e.times_ms) for e in folded)
    assert not any(e.op_type == "Identity" for e in raw.events)      # no operators, no time

    merged = merge_folded_norms(raw.events, norms, convs)
    assert merged == merge_folded_norms(raw.events)                   # class names tell the same
    assert sum(" + " in e.name for e in merged) == 49
    assert all(e.onnx_nodes for e in merged if any(e.times_ms))      # all the time maps to nodes
    for i in range(3):
        assert _total(merged, i) == pytest.approx(_total(raw.events, i), rel=1e-12)
    by_name = {e.name: e for e in raw.events}
    first = next(e for e in merged if e.name.startswith("blocks.0.0.conv_dw"))
    assert first.name == "blocks.0.0.conv_dw + blocks.0.0.bn1"
    assert first.times_ms == tuple(a + b for a, b in zip(by_name["blocks.0.0.conv_dw"].times_ms,
                                                         by_name["blocks.0.0.bn1"].times_ms))
    assert first.onnx_nodes == ("/blocks/blocks.0/blocks.0.0/conv_dw/Conv",)

    layers = engine.profile_layers(SHAPE, iterations=2)               # the engine's own profile is merged
    assert [e.name for e in layers.events] == [e.name for e in merged]
    assert all(p in modules or p == "<model>" for e in layers.events for p in e.name.split(" + "))


def test_torch_layer_profile_covers_efficientnet_b0_on_cpu(b0):
    from scaleprof.complexity import count_onnx
    from scaleprof.profile.layers import profile_layers
    from scaleprof.engines.anchors import OnnxGraph

    path, engine = b0
    report = profile_layers(engine, SHAPE, count_onnx(path, 1, RES), iterations=3)
    assert report.coverage >= 0.95
    graph = OnnxGraph(path)
    owned = [n for r in report.layers if r.status == "measured" for n in r.onnx_nodes]
    assert sorted(owned) == sorted(graph.order)                       # every exported node once
    convs = [r for r in report.layers if r.name.startswith("conv_stem")]
    assert [r.name for r in convs] == ["conv_stem + bn1"] and convs[0].flops > 0 and convs[0].category == "conv"
