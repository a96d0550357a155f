"""The engine's own layers after fusion, read from a real TensorRT-RTX 1.7.1 build log (tests/fixtures/
tensorrt/efficientnet_b0.rtx-1.7.1.layers.jsonl: EfficientNet-B0 at 224 px, one profile), without
building: the layer report parsed into inspector JSON, and the layer mapper on the engine's fused
names, with and without that JSON."""

from __future__ import annotations

import json

import pytest
from tests.engines.tensorrt_fixtures import FIXTURES

from scaleprof.engines.tensorrt.build_log import BuildLog
from scaleprof.engines.tensorrt.engine_layers import layer_rows, layers_per_profile, parse_layer_report
from scaleprof.engines.tensorrt.inspector import parse_inspector, strip_profile
from scaleprof.engines.tensorrt.origins import InspectorLayerMap, resolve_layer, summarize_graph

RECORDED = FIXTURES / "efficientnet_b0.rtx-1.7.1.layers.jsonl"
NODE_ORDER = tuple(json.loads((FIXTURES / "efficientnet_b0.onnx_nodes.json").read_text()))


@pytest.fixture(scope="module")
def book() -> BuildLog:
    log = BuildLog()
    for severity, text in (json.loads(line) for line in RECORDED.read_text().splitlines()):
        log.record(severity, text)
    return log


@pytest.fixture(scope="module")
def report(book):
    return parse_layer_report(book.layer_report)


def test_the_build_log_keeps_the_layer_report_and_the_memory(book):
    assert book.layer_report.startswith("Layers:\n")
    assert book.activation_bytes() == [15015936] and book.weights_bytes == 20970368


def test_every_fused_layer_is_read_with_its_type_tactic_and_tensors(report):
    layers = report["Layers"]
    assert len(layers) == 116 and {layer["Profile"] for layer in layers} == {0}
    assert {layer["LayerType"] for layer in layers} == {"correlation", "kgen", "runtime_fusion"}
    first = layers[0]
    assert first["Name"] == "__myl_Move_myl0_0" and first["TacticName"].startswith("__myl_Move_0x")
    assert first["Inputs"][0]["Name"] == "input" and first["Inputs"][0]["Dimensions"] == [1, 3, 224, 224]
    assert first["Inputs"][0]["DataType"] == first["Inputs"][0]["Format/Datatype"] == "Float"
    assert report["Bindings"] == ["input", "logits"] and report["I/O Tensors"][1]["IOMode"] == "Output"


def test_manifest_rows_carry_origins_and_data_types(report):
    rows = layer_rows(parse_inspector(report))
    conv = next(r for r in rows if r["name"] == "/blocks/blocks.0/blocks.0.0/conv_dw/Conv_myl0_2")
    assert conv["type"] == "correlation" and conv["tactic"] == "__myelin_CASK_STUB"
    assert conv["onnx_nodes"] == ["/blocks/blocks.0/blocks.0.0/conv_dw/Conv"]
    assert conv["inputs"] == conv["outputs"] == ["fp32"]
    fused = next(r for r in rows if r["name"] == "__myl_SiluMean_myl0_3")
    assert fused["onnx_nodes"] == ["/blocks/blocks.0/blocks.0.0/bn1/act/Sigmoid",
                                   "/blocks/blocks.0/blocks.0.0/bn1/act/Mul",
                                   "/blocks/blocks.0/blocks.0.0/se/ReduceMean"]
    assert layers_per_profile(rows) == [116]


def test_the_mapper_covers_at_least_95_percent_of_b0s_nodes(report):
    summary = summarize_graph(parse_inspector(report), NODE_ORDER)
    assert summary["layers"] == 116 and summary["onnx_nodes"] == 239
    assert summary["onnx_nodes_covered"] / summary["onnx_nodes"] >= 0.95


def test_without_the_graph_the_kernel_names_still_map(report):
    """What a GPU run meets with no graph JSON: each 'NODE_mylK_N' layer maps to its node by name
    (before, none of the 116 names mapped)."""
    names = [layer["Name"] for layer in report["Layers"]]
    mapped = [n for n in names if resolve_layer(n, None, NODE_ORDER).onnx_nodes]
    assert len(mapped) == sum(layer["LayerType"] == "correlation" for layer in report["Layers"]) == 49
    with_graph = InspectorLayerMap(parse_inspector(report), NODE_ORDER)
    assert all(with_graph(n)[0] for n in names if not n.startswith("__myl_Move"))


def test_layers_of_later_profiles_are_told_apart():
    text = "\n".join([
        "Layers:",
        "Name: a/Conv_myl0_0, LayerType: correlation, Inputs: [ { Name: input, Dimensions: [1,3,64,64], "
        "Strides: [1], StrideOrder: [0], Datatype: Float, Format: (Linear) Row major linear format }], "
        "Constants: [], Outputs: [ { Name: t, Dimensions: [1,8,64,64], Strides: [1], StrideOrder: [0], "
        "Datatype: Half, Format: (Linear) Row major linear format }], TacticName: x, StreamId: 0, "
        "Metadata: [ONNX Layer: a/Conv]",
        "Name: a/Conv [profile 1]_myl1_0, LayerType: correlation, Inputs: [ { Name: input [profile 1], "
        "Dimensions: [2,3,96,96], Strides: [1], StrideOrder: [0], Datatype: Float, Format: (Linear) Row major "
        "linear format }], Constants: [], Outputs: [], TacticName: x, StreamId: 0, Metadata: [ONNX Layer: a/Conv]",
        "Name: __myl_Mul_myl1_1, LayerType: kgen, Inputs: [], Constants: [], Outputs: [], TacticName: y, "
        "StreamId: 0, Metadata: ",
    ])
    graph = parse_inspector(parse_layer_report(text))
    assert [layer.profile for layer in graph.layers] == [0, 1, 1]
    assert layer_rows(graph)[0]["outputs"] == ["fp16"]
    assert strip_profile("a/Conv [profile 1]_myl1_0") == ("a/Conv", 1)
