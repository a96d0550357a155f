"""The TensorRT layer -> ONNX node mapping without TensorRT: the engine's InspectorLayerMap and the
profile stage's TensorRTLayerResolver (tests/fixtures/tensorrt/README.md)."""

from __future__ import annotations

from tests.engines.tensorrt_fixtures import DW, HEAD, NODE_ORDER, SE, SE_NODES, STEM

from scaleprof.engines.tensorrt.inspector import InspectorLayer
from scaleprof.engines.tensorrt.origins import (InspectorLayerMap, foreign_node_span, resolve_layer,
                                                  summarize_graph)


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


def test_tensorrt_engine_hands_the_profile_stage_its_resolver(tmp_path):
    """A TensorRT engine gives the profile stage TensorRT's naming rules (no import side effects)."""
    from scaleprof.engines.base import EngineManifest, LayerEvent, ShapePoint
    from scaleprof.engines.anchors import OnnxGraph
    from scaleprof.engines.tensorrt.engine import TensorRTEngine
    from tests.engines.tensorrt_fixtures import toy_onnx

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
