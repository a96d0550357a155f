"""count_onnx: counts from any ONNX graph, and, for scaleprof's exports, agreement with the PyTorch-side
counts: acts exactly, flops and params exactly up to the folded-BatchNorm terms."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from scaleprof.complexity import compare_counts, count_model, count_onnx, node_modules
from scaleprof.complexity.onnx_count import module_of_node_name
from scaleprof.errors import BadInput

RES = 64
FAMILIES = ["efficientnet_b0", "efficientnetv2_rw_t", "regnetx_002", "regnety_002", "tresnet_m", "resnet50"]


def _export(model, scaled, directory):
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec, build_model
    from scaleprof.models.scaling import scale_spec

    spec = dataclasses.replace(scale_spec(model, "dWr", 2.0) if scaled else base_spec(model), resolution=RES)
    path = directory / f"{model}.onnx"
    export_onnx(spec, path, ExportOptions(check_parity=False))
    return spec, onnx.load(str(path)), build_model(spec, "meta")


@pytest.mark.slow
@pytest.mark.parametrize("scaled", [False, True], ids=["base", "dWr2"])
@pytest.mark.parametrize("model", FAMILIES)
def test_onnx_counts_match_pytorch(model, scaled, tmp_path):
    spec, proto, torch_model = _export(model, scaled, tmp_path)
    onnx_counts = count_onnx(proto, batch=1, resolution=RES)
    torch_counts = count_model(torch_model, RES)
    cmp = compare_counts(onnx_counts, torch_counts, node_modules(proto))
    assert cmp.exact, cmp.mismatches
    assert onnx_counts.acts == torch_counts.acts
    # the flops and params differences are exactly the folded terms, and those are non-trivial
    assert onnx_counts.flops - torch_counts.flops == cmp.bias_flops_added > 0
    assert (onnx_counts.params - torch_counts.params
            == cmp.bias_params_added - cmp.bn_params_removed + cmp.constant_filter_params)
    assert cmp.bn_params_removed == 2 * cmp.bias_params_added     # each folded BN: 2C params out, C bias in
    assert not cmp.unmapped_nodes
    # the metadata's predicted counts are the PyTorch ones
    meta = {p.key: p.value for p in proto.metadata_props}
    assert f'"acts": {torch_counts.acts}' in meta["scaleprof.counts"]


def test_counts_are_per_image_and_need_a_resolution_only_when_symbolic(tmp_path):
    spec, proto, _ = _export("regnetx_002", False, tmp_path)
    one, four = count_onnx(proto, 1, RES), count_onnx(proto, 4, RES)
    assert one.totals() == four.totals() and four.batch == 4 and four.batch_acts == 4 * one.acts
    # a scaleprof export knows its resolution
    assert count_onnx(proto).totals() == one.totals()
    # counts grow with resolution as conv outputs do
    assert count_onnx(proto, 1, 2 * RES).acts > 3.5 * one.acts


def _foreign_model(batch="N"):
    """Conv(bias) -> BN -> Relu -> MaxPool -> Flatten -> MatMul + Add, Gemm: by-hand numbers below."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in [
        ("w", (8, 3, 3, 3)), ("b", (8,)), ("scale", (8,)), ("bias", (8,)), ("mean", (8,)), ("var", (8,)),
        ("fc_w", (128, 10)), ("fc_b", (10,)), ("g_w", (5, 10)), ("g_b", (5,))]]
    inits.append(numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat_shape"))
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Shape", ["p"], ["ps"], name="shape"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc_w"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "fc_b"], ["fa"], name="fc_bias"),
        helper.make_node("Gemm", ["fa", "g_w", "g_b"], ["y"], transB=1, name="head"),
    ]
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_foreign_onnx_by_hand(tmp_path):
    path = tmp_path / "foreign.onnx"
    onnx.save(_foreign_model(), str(path))
    counts = count_onnx(path, batch=2, resolution=8)
    rows = {r.name: r for r in counts.layers}
    assert rows["conv"].flops == 3 * 3 * 3 * 8 * 8 * 8 + 8 * 8 * 8 and rows["conv"].params == 8 * 27 + 8
    assert rows["conv"].acts == 8 * 8 * 8 and rows["conv"].output_shape == (2, 8, 8, 8)
    assert (rows["bn"].flops, rows["bn"].params, rows["bn"].acts) == (0, 16, 0)        # 2*C, like PyTorch
    assert (rows["pool"].flops, rows["pool"].acts) == (0, 8 * 4 * 4)
    assert (rows["fc"].flops, rows["fc"].params, rows["fc"].acts) == (128 * 10, 1280, 10)
    assert (rows["fc_bias"].flops, rows["fc_bias"].params, rows["fc_bias"].acts) == (10, 10, 0)
    assert (rows["head"].flops, rows["head"].params, rows["head"].acts) == (10 * 5 + 5, 55, 5)
    assert set(rows) == {"conv", "bn", "pool", "fc", "fc_bias", "head"}     # relu, shape, flatten add nothing
    assert counts.acts == 512 + 128 + 10 + 5 and counts.batch == 2
    # layers executed: BN folds into the conv, Shape and Flatten run nothing
    assert counts.layer_kinds == {"conv": 1, "linear": 2, "elementwise": 2, "other": 1} and counts.layer_count == 6
    assert count_onnx(path).totals() == counts.totals()           # static spatial dims: no resolution needed

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    sym = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
                            opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(BadInput, match="give a resolution"):
        count_onnx(sym)
    assert count_onnx(sym, resolution=32).totals() == {"flops": 0, "params": 0, "acts": 0}


def test_static_foreign_model_rejects_other_shapes(tmp_path):
    proto = _foreign_model(batch=1)
    assert count_onnx(proto).resolution == 8
    with pytest.raises(BadInput, match="static"):
        count_onnx(proto, batch=1, resolution=16)


@pytest.mark.parametrize("name, module", [
    ("/blocks/blocks.0/blocks.0.0/conv_dw/Conv", "blocks.0.0.conv_dw"),
    ("/body/layer2/layer2.0/conv1/aa/Pad", "body.layer2.0.conv1.aa"),
    ("/conv_stem/Conv", "conv_stem"),
    ("/Flatten", ""),
    ("node_Conv_12", ""),
])
def test_module_of_node_name(name, module):
    assert module_of_node_name(name) == module
