"""int8 and fp8 engines from QDQ files: ONNX Runtime runs int8 on the CPU; TensorRT-RTX builds int8
and fp8 plans of B0 and of a scaled network without a GPU; every manifest names the precision and
what each layer runs in, memory is predicted at the right bytes per element, and a precision the
backend or the file cannot give is one line."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from scaleprof.engines.base import BuildSpec, ShapePoint
from scaleprof.engines.cache import build_engine
from scaleprof.errors import BadInput

RES = 64


def export(tmp_path_factory, precision: str, scaled: bool = False):
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec
    from scaleprof.models.scaling import scale_spec

    spec = scale_spec("efficientnet_b0", "dWr", 2.0) if scaled else base_spec("efficientnet_b0")
    spec = dataclasses.replace(spec, resolution=RES)
    path = tmp_path_factory.mktemp(precision) / f"b0{'-dWr2' if scaled else ''}-{precision}.onnx"
    export_onnx(spec, path, ExportOptions(precision=precision, check_parity=False))
    return path


@pytest.fixture(scope="module")
def b0_int8(tmp_path_factory):
    return export(tmp_path_factory, "int8")


@pytest.fixture(scope="module")
def b0_fp8(tmp_path_factory):
    return export(tmp_path_factory, "fp8")


def build(path, tmp_path, backend="ort", precision="int8", device=None):
    device = device or ("cuda" if backend.startswith("tensorrt") else "cpu")
    spec = BuildSpec(backend=backend, device=device, precision=precision, shapes=(ShapePoint(1, RES),))
    return build_engine(path, spec, tmp_path / "engines").engine


def test_ort_runs_int8_on_the_cpu_and_says_which_nodes_are_int8(b0_int8, tmp_path):
    import numpy as np

    engine = build(b0_int8, tmp_path)
    m = engine.manifest
    assert m.precision == "int8" and m.extras["model_precision"] == "int8"
    assert m.extras["conv_precisions"].get("int8", 0) > 0        # QLinearConv kernels
    assert m.extras["layer_precisions"].get("qdq", 0) > 0         # conversions left as their own kernels
    engine.load()
    try:
        out = engine.run(engine.make_inputs(ShapePoint(1, RES)))
        assert all(np.all(np.isfinite(v)) and v.shape[0] == 1 for v in out.values())
        assert engine.runner(ShapePoint(1, RES))() > 0
    finally:
        engine.release()


@pytest.fixture(scope="module")
def b0_u8s8(tmp_path_factory):
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    path = tmp_path_factory.mktemp("u8s8") / "b0-u8s8.onnx"
    spec = dataclasses.replace(base_spec("efficientnet_b0"), resolution=RES)
    export_onnx(spec, path, ExportOptions(precision="int8", int8_activations="uint8", check_parity=False))
    return path


def test_uint8_activations_let_ort_fuse_every_convolution(b0_u8s8, b0_int8, tmp_path):
    from scaleprof.export import read_metadata

    assert read_metadata(b0_u8s8).export["quantization"]["activations"] == "asymmetric uint8"
    unsigned, signed = (build(p, tmp_path).manifest.extras for p in (b0_u8s8, b0_int8))
    assert unsigned["conv_precisions"] == {"int8": 81}                # ONNX Runtime 1.32's CPU EP on x86
    assert signed["conv_precisions"].get("fp32", 0) > 0
    assert unsigned["layer_precisions"]["qdq"] < signed["layer_precisions"]["qdq"]
    assert (unsigned["int8_activations"], signed["int8_activations"]) == ("uint8", "int8")   # the manifest says


@pytest.mark.parametrize("backend,precision,message", [
    ("ort", "fp32", "is an int8 QDQ file: it builds int8 engines only"),
    ("ort", "fp8", "the ort backend does not build fp8 engines"),
    ("torch", "int8", "the torch backend does not build int8 engines"),
])
def test_precisions_the_file_or_backend_cannot_give_are_refused(b0_int8, tmp_path, backend, precision, message):
    with pytest.raises(BadInput, match=message):
        build(b0_int8, tmp_path, backend, precision)


def test_a_float_file_does_not_build_int8(b0_onnx, tmp_path):
    with pytest.raises(BadInput, match="is not quantized: an int8 engine is built from an int8 QDQ file"):
        build(b0_onnx, tmp_path)


def test_build_cli_takes_the_files_own_precision(b0_int8, tmp_path, capsys):
    from scaleprof import cli

    assert cli.main(["build", str(b0_int8), "--resolution", str(RES), "-o", str(tmp_path), "--json"]) == 0
    assert '"precision": "int8"' in capsys.readouterr().out
    assert cli.main(["build", str(b0_int8), "--precision", "fp16", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "builds int8 engines only" in err


def test_memory_is_predicted_at_the_precisions_bytes():
    from scaleprof.core.limits import inference_bytes
    from scaleprof.engines.tensorrt.network import predicted_activation_bytes

    assert [predicted_activation_bytes(1000, 2, p) for p in ("fp32", "fp16", "int8", "fp8")] == [8000, 4000, 2000, 2000]
    assert inference_bytes(100, 10, 1, 1, "int8") * 4 == inference_bytes(100, 10, 1, 1, "fp32")


def test_qdq_files_count_like_their_float_network(b0_int8, b0_onnx):
    from scaleprof.complexity import count_onnx

    q, f = count_onnx(b0_int8, 1, RES), count_onnx(b0_onnx, 1, RES)
    assert (q.flops, q.params, q.acts) == (f.flops, f.params, f.acts)
    assert q.layer_kinds == f.layer_kinds          # Quantize/DequantizeLinear fuse into the op: no layers


def test_qdq_layers_fall_in_the_float_networks_categories(b0_int8, b0_onnx):
    from collections import Counter

    import onnx

    from scaleprof.engines.anchors import OnnxGraph
    from scaleprof.profile.categories import categorise, se_nodes

    def categories(path, ops=("Conv", "Mul", "Sigmoid", "QuantizeLinear", "DequantizeLinear")):
        graph = OnnxGraph(onnx.load(str(path), load_external_data=False))
        se = se_nodes(graph)
        return Counter((graph.nodes[n].op_type, categorise(graph, [n], se)) for n in graph.order
                       if graph.nodes[n].op_type in ops)

    quantized, plain = categories(b0_int8), categories(b0_onnx)
    assert {k: v for k, v in quantized.items() if "Linear" not in k[0]} == plain     # depthwise, SE, swish found
    assert {k[1] for k in quantized if "Linear" in k[0]} <= {"reformat/copy", "SE"}


# --- TensorRT-RTX: ahead-of-time plans without a GPU ------------------------------------------

needs_rtx = pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None,
                               reason="tensorrt-rtx has no wheel for this platform (x86-64 only)")


@needs_rtx
@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_tensorrt_rtx_builds_quantized_b0_and_labels_every_convolution(precision, b0_int8, b0_fp8, tmp_path):
    from scaleprof.engines.tensorrt.network import read_layers

    path = {"int8": b0_int8, "fp8": b0_fp8}[precision]
    engine = build(path, tmp_path, "tensorrt-rtx", precision)
    m = engine.manifest
    assert m.precision == precision
    assert m.extras["precision_mode"] == "explicit-quantization" and m.extras["onnx_precision"] == precision
    assert m.extras["conv_precisions"] == {precision: 81}          # every convolution of B0 reads int8/fp8
    assert m.extras["layer_precisions"]["qdq"] > 0
    layers = read_layers(engine.directory / m.extras["layers_json"])
    assert {row["runs_in"] for row in layers if row["type"] == "CONVOLUTION"} == {precision}
    assert (engine.directory / m.artifact).stat().st_size > 0


@needs_rtx
def test_an_fp8_plan_holds_only_the_targets_with_fp8(b0_int8, b0_fp8, tmp_path):
    fp8 = build(b0_fp8, tmp_path, "tensorrt-rtx", "fp8").manifest.extras
    int8 = build(b0_int8, tmp_path, "tensorrt-rtx", "int8").manifest.extras
    assert fp8["built_targets"] and all(float(t) >= 8.9 for t in fp8["built_targets"])    # Ada and later
    assert {"8.0", "8.6"} <= set(fp8["dropped_targets"])
    assert "8.0" in int8["built_targets"]                                                  # Ampere on
    spec = BuildSpec(backend="tensorrt-rtx", device="cuda", precision="fp8", shapes=(ShapePoint(1, RES),),
                     options=(("compute_capabilities", "8.6,8.9"),))
    with pytest.raises(BadInput, match="cannot build b0-fp8.onnx for compute capability 8.6"):
        build_engine(b0_fp8, spec, tmp_path / "engines")


@needs_rtx
def test_tensorrt_rtx_builds_a_scaled_int8_network(tmp_path_factory, tmp_path):
    path = export(tmp_path_factory, "int8", scaled=True)
    m = build(path, tmp_path, "tensorrt-rtx", "int8").manifest
    assert m.precision == "int8" and set(m.extras["conv_precisions"]) == {"int8"}


@needs_rtx
def test_tensorrt_rtx_refuses_uint8_activations(b0_u8s8, tmp_path):
    with pytest.raises(BadInput, match="quantizes activations to uint8"):
        build(b0_u8s8, tmp_path, "tensorrt-rtx", "int8")


@needs_rtx
def test_tensorrt_rtx_refuses_another_precision_of_a_qdq_file(b0_fp8, tmp_path):
    with pytest.raises(BadInput, match="is an fp8 QDQ file: it builds fp8 engines only"):
        build(b0_fp8, tmp_path, "tensorrt-rtx", "int8")
