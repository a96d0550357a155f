"""Inspector JSON, per-layer times and the TensorRT layer -> ONNX node mapping (no TensorRT).
The fixtures are hand-made in the documented formats (tests/fixtures/tensorrt/README.md)."""

from __future__ import annotations

import json

import pytest
from tensorrt_fixtures import FIXTURES, NODE_ORDER, SE_NODES

from scaleprof.engines.tensorrt.inspector import (InspectorLayer, metadata_nodes, parse_inspector, read_inspector,
                                                  strip_profile, unsupported_nodes)
from scaleprof.engines.tensorrt.layer_map import (InspectorLayerMap, foreign_node_span, resolve_layer,
                                                  summarize_graph)
from scaleprof.engines.tensorrt.layer_times import (LayerTimes, parse_profile, profile_records, profile_trace,
                                                    write_profile)
from scaleprof.errors import BadInput

STEM = "/conv_stem/Conv + PWN(/act1/Sigmoid, /act1/Mul)"
DW = "/blocks/0/conv_dw/Conv + PWN(/blocks/0/act/Sigmoid, /blocks/0/act/Mul)"
SE = "{ForeignNode[/blocks/0/se/GlobalAveragePool.../blocks/0/se/Mul]}"
HEAD = "{ForeignNode[/Flatten.../classifier/Gemm]}"


@pytest.fixture
def trt10():
    return read_inspector(FIXTURES / "efficientnet_toy.trt10.graph.json")


def test_trt10_inspector_json(trt10):
    assert trt10.schema == "trt10" and trt10.detailed
    assert trt10.io_tensors == ("input", "output", "input [profile 1]", "output [profile 1]")
    names = [layer.name for layer in trt10.profile_layers(0)]
    assert names[1:5] == [STEM, DW, SE, "/blocks/0/conv_pw/Conv"]
    assert len(trt10.profile_layers(1)) == 2
    stem = trt10.by_name()[STEM]
    assert stem.layer_type == "CaskConvolution" and stem.parameter_type == "Convolution"
    assert stem.metadata_nodes == ("/conv_stem/Conv", "/act1/Sigmoid", "/act1/Mul")
    assert stem.inputs[0]["DataType"] == "Row major linear FP32 format (kLINEAR)"   # from Format/Datatype
    assert "sm80_xmma_fprop" in stem.tactic


def test_trt11_inspector_json_has_io_tensors_and_split_format():
    g = read_inspector(FIXTURES / "efficientnet_toy.trt11.graph.json")
    assert g.schema == "trt11"
    assert g.io_tensors == ("input", "output")
    stem = g.by_name()[STEM]
    assert stem.inputs[0]["DataType"] == "Float"
    assert stem.inputs[0]["Format"].endswith("(kLINEAR)")


def test_names_only_inspector_json_is_read_but_flagged():
    g = read_inspector(FIXTURES / "efficientnet_toy.names_only.graph.json")
    assert not g.detailed
    assert g.layers[1].name == STEM and g.layers[1].metadata_nodes == ()
    # without Metadata the mapping falls back on the fused name
    assert InspectorLayerMap(g, NODE_ORDER)(STEM) == (("/conv_stem/Conv", "/act1/Sigmoid", "/act1/Mul"), False)


def test_bad_inspector_json_is_one_clear_error(tmp_path):
    with pytest.raises(BadInput, match="no 'Layers'"):
        parse_inspector('{"Bindings": []}')
    with pytest.raises(BadInput, match="not JSON"):
        parse_inspector("{oops")
    with pytest.raises(BadInput, match="no such"):
        read_inspector(tmp_path / "missing.json")


def test_metadata_entries_and_separators():
    assert metadata_nodes("[ONNX Layer: /a/Conv]\x1f[ONNX Layer: /a/Relu]") == ("/a/Conv", "/a/Relu")
    assert metadata_nodes("[ONNX Layer: a]\x1e[ONNX Layer: b]\x1f[ONNX Layer: a]") == ("a", "b")
    assert metadata_nodes("[ONNX Layer: q][ONNX Layer: k][ONNX Layer: v]") == ("q", "k", "v")
    assert metadata_nodes("[ONNX Layer: x[0]]\x1f[ONNX Layer: y]") == ("x[0]", "y")
    assert metadata_nodes("") == () and metadata_nodes(None) == ()


def test_profile_suffix():
    assert strip_profile("a + b [profile 2]") == ("a + b", 2)
    assert strip_profile("a + b") == ("a + b", 0)


# --- the mapping ---------------------------------------------------------------------------

def test_fused_layer_maps_to_all_its_nodes(trt10):
    r = InspectorLayerMap(trt10, NODE_ORDER)
    assert r.origin(STEM).onnx_nodes == ("/conv_stem/Conv", "/act1/Sigmoid", "/act1/Mul")
    assert r.origin(STEM).how == "metadata"
    # no Metadata on this layer: the 'A + PWN(B, C)' name is split
    dw = r.origin(DW)
    assert dw.onnx_nodes == ("/blocks/0/conv_dw/Conv", "/blocks/0/act/Sigmoid", "/blocks/0/act/Mul")
    assert (dw.how, dw.opaque) == ("name", False)


def test_myelin_layer_maps_to_every_node_it_covers_and_is_opaque(trt10):
    r = InspectorLayerMap(trt10, NODE_ORDER)
    se = r.origin(SE)                     # Metadata names only the ends: expanded over the graph
    assert se.onnx_nodes[:1] == ("/blocks/0/se/GlobalAveragePool",)
    assert set(se.onnx_nodes) == set(SE_NODES) and se.opaque
    head = r.origin(HEAD)                 # no Metadata at all: the ForeignNode name decides
    assert head.onnx_nodes == ("/Flatten", "/classifier/Gemm") and head.opaque
    assert head.how == "foreign-node"


def test_foreign_node_span_edge_cases():
    order = ("a", "b.", "c", "d")
    assert foreign_node_span("{ForeignNode[a...c]}", order) == ("a", "b.", "c")
    assert foreign_node_span("{ForeignNode[b....d]}", order) == ("b.", "c", "d")   # '...' after 'b.'
    assert foreign_node_span("{ForeignNode[c]}", order) == ("c",)
    assert foreign_node_span("{ForeignNode[x...y]}", order) == ()
    assert foreign_node_span("a + b", order) is None
    # without the ONNX graph the ends are all that is known
    assert resolve_layer("{ForeignNode[a...c]}").onnx_nodes == ("a", "c")


def test_profile_suffixed_layers_resolve_like_profile_0(trt10):
    r = InspectorLayerMap(trt10, NODE_ORDER)
    assert r(f"{STEM} [profile 1]") == r(STEM)
    assert r(f"{HEAD} [profile 3]") == r(HEAD)             # not in the graph JSON: the name decides


def test_reformat_layers_map_to_no_node(trt10):
    r = InspectorLayerMap(trt10, NODE_ORDER)
    reformat = trt10.profile_layers(0)[0].name
    assert r(reformat) == ((), False)
    bare = InspectorLayer(name="Reformatting CopyNode for Output Tensor 0 to x", layer_type="Reformat")
    assert resolve_layer(bare.name, bare).onnx_nodes == ()


def test_unknown_parts_of_a_fused_name_are_dropped_when_the_graph_is_known():
    r = resolve_layer("/conv_stem/Conv + (Unnamed Layer* 12) [Shuffle]", None, NODE_ORDER)
    assert r.onnx_nodes == ("/conv_stem/Conv",)


def test_summarize_graph(trt10):
    s = summarize_graph(trt10, NODE_ORDER)
    assert s["layers"] == 7
    assert s["by_type"]["CaskConvolution"] == 3 and s["by_type"]["Myelin"] == 2
    assert s["opaque_layers"] == 2
    assert s["onnx_nodes_covered"] == len(NODE_ORDER) == s["onnx_nodes"]


def test_unsupported_nodes_are_named():
    nodes = [("/a/Conv", "Conv"), ("/b/Weird", "WeirdOp"), ("/c/Weird", "WeirdOp"), ("/d/Relu", "Relu")]
    assert unsupported_nodes(nodes, lambda op: op != "WeirdOp") == [("/b/Weird", "WeirdOp"), ("/c/Weird", "WeirdOp")]


# --- per-layer times -----------------------------------------------------------------------

def test_layer_times_per_iteration_with_warmup_and_loops(trt10):
    times = LayerTimes()
    for it in range(4):                       # iteration 0 is warm-up
        times.next_iteration()
        times.report(STEM, 1.0 + it)
        times.report(SE, 0.5)
        times.report(SE, 0.25)                # reported twice in one iteration: summed
    trace = times.trace(InspectorLayerMap(trt10, NODE_ORDER), skip=1)
    assert trace.iterations == 3 and trace.profiler == "tensorrt.IProfiler"
    stem, se = trace.events
    assert stem.times_ms == (2.0, 3.0, 4.0)
    assert stem.op_type == "CaskConvolution"
    assert stem.onnx_nodes == ("/conv_stem/Conv", "/act1/Sigmoid", "/act1/Mul") and not stem.opaque
    assert se.times_ms == (0.75, 0.75, 0.75) and se.opaque and set(se.onnx_nodes) == set(SE_NODES)


def test_profile_json_round_trip_in_trtexec_format(tmp_path):
    times = LayerTimes()
    for t in (1.0, 3.0, 2.0):
        times.next_iteration()
        times.report("a", t)
        times.report("b", 1.0)
    trace = times.trace()
    records = profile_records(trace)
    assert records[0] == {"count": 3}
    assert records[1] == {"name": "a", "timeMs": 6.0, "averageMs": 2.0, "medianMs": 2.0, "percentage": 66.66666666666666}
    path = write_profile(trace, tmp_path / "engine.plan.profile.json")
    count, parsed = parse_profile(path.read_text())
    assert count == 3 and [r.name for r in parsed] == ["a", "b"]
    assert parsed[0].median_ms == 2.0 and parsed[1].total_ms == 3.0


def test_trtexec_profile_fixture_becomes_a_trace(trt10):
    text = (FIXTURES / "efficientnet_toy.profile.json").read_text()
    count, records = parse_profile(text)
    assert count == 20 and len(records) == 7
    assert abs(sum(r.percentage for r in records) - 100.0) < 1e-3
    trace = profile_trace(text, InspectorLayerMap(trt10, NODE_ORDER))
    assert trace.iterations == 20 and trace.profiler == "trtexec"
    by_name = {e.name: e for e in trace.events}
    assert by_name[STEM].times_ms == (records[1].median_ms,) * 20
    assert by_name[SE].opaque and by_name[HEAD].onnx_nodes == ("/Flatten", "/classifier/Gemm")


def test_profile_without_median_and_with_raw_control_characters():
    raw = '[{ "count" : 2 }, { "name" : "a\x1fb", "timeMs" : 4, "averageMs" : 2, "percentage" : 100 }]'
    count, records = parse_profile(raw)
    assert count == 2 and records[0].name == "a\x1fb" and records[0].median_ms is None
    assert profile_trace(raw).events[0].times_ms == (2.0, 2.0)         # the average stands in


def test_profile_json_errors():
    with pytest.raises(BadInput, match="count"):
        parse_profile(json.dumps([{"name": "a", "timeMs": 1}]))
    with pytest.raises(BadInput, match="list"):
        parse_profile(json.dumps({"count": 1}))
    with pytest.raises(BadInput, match="name/timeMs"):
        parse_profile(json.dumps([{"count": 1}, {"name": "a"}]))


def test_tensorrt_engine_hands_the_profile_stage_its_resolver(tmp_path):
    """A TensorRT engine gives the profile stage TensorRT's naming rules (no import side effects)."""
    from scaleprof.engines.base import EngineManifest, LayerEvent, ShapePoint
    from scaleprof.engines.layer_map import OnnxGraph
    from scaleprof.engines.tensorrt.engine import TensorRTEngine
    from tensorrt_fixtures import toy_onnx

    graph = OnnxGraph(str(toy_onnx(tmp_path / "toy.onnx")))
    manifest = EngineManifest(backend="tensorrt", backend_version="10.8.0", device="cuda", device_name="GPU",
                              precision="fp32", threads=None, key="k", onnx_sha256="", onnx_path="toy.onnx",
                              artifact="engine.plan", shapes=(ShapePoint(1, 224),))
    resolver = TensorRTEngine(tmp_path, manifest).layer_resolver(graph)
    assert resolver.name == "tensorrt"
    ev = lambda name, nodes=(): LayerEvent(name, "", (1.0,), nodes)          # noqa: E731
    assert resolver.resolve(ev(HEAD)).anchors == ["/Flatten", "/classifier/Gemm"]
    assert resolver.resolve(ev(f"{DW} [profile 1]")).anchors == [
        "/blocks/0/conv_dw/Conv", "/blocks/0/act/Sigmoid", "/blocks/0/act/Mul"]
    assert resolver.resolve(ev("whatever", ("/conv_stem/Conv",))).anchors == ["/conv_stem/Conv"]
