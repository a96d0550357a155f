"""The engine inspector's layer JSON without TensorRT (TensorRT 10, 11 and names-only schemas).
The fixtures are hand-made in the documented formats (tests/fixtures/tensorrt/README.md)."""

from __future__ import annotations

import pytest
from tests.engines.tensorrt_fixtures import DW, FIXTURES, NODE_ORDER, SE, STEM

from scaleprof.engines.tensorrt.inspector import (metadata_nodes, parse_inspector, read_inspector, strip_profile,
                                                  unsupported_nodes)
from scaleprof.engines.tensorrt.origins import InspectorLayerMap
from scaleprof.errors import BadInput


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


def test_unsupported_nodes_are_named():
    nodes = [("/a/Conv", "Conv"), ("/b/Weird", "WeirdOp"), ("/c/Weird", "WeirdOp"), ("/d/Relu", "Relu")]
    assert unsupported_nodes(nodes, lambda op: op != "WeirdOp") == [("/b/Weird", "WeirdOp"), ("/c/Weird", "WeirdOp")]
