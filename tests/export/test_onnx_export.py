"""export_onnx: every family exports with parity at two batches and two resolutions, scoped node names,
constant pads and its spec in the metadata; failures leave nothing behind."""

from __future__ import annotations

import dataclasses

import onnx
import pytest

from scaleprof.errors import BadInput, EnvironmentProblem, ScaleprofError
from scaleprof.export import ExportOptions, export_onnx, read_metadata
from scaleprof.export.passes import dynamic_pads

RES = 64                      # small, multiple of 32: fast, and every family's strides divide it
FAMILIES = ["efficientnet_b0", "efficientnetv2_rw_t", "regnetx_002", "regnety_002", "tresnet_m", "resnet50"]


def small_spec(model, scaled=False):
    from scaleprof.models import base_spec
    from scaleprof.models.scaling import scale_spec

    spec = scale_spec(model, "dWr", 2.0) if scaled else base_spec(model)
    return dataclasses.replace(spec, resolution=RES)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.slow
@pytest.mark.parametrize("scaled", [False, True], ids=["base", "dWr2"])
@pytest.mark.parametrize("model", FAMILIES)
def test_family_exports_with_parity(model, scaled, tmp_path):
    from scaleprof.complexity.onnx_count import node_modules
    from scaleprof.models import build_model

    spec = small_spec(model, scaled)
    path = tmp_path / "m.onnx"
    result = export_onnx(spec, path, ExportOptions())
    # two batches x two resolutions from one dynamic export
    assert {(p.batch, p.resolution) for p in result.parity} == {(1, 64), (2, 64), (1, 96), (2, 96)}
    assert all(p.ok for p in result.parity), result.parity
    assert result.max_rel < 1e-3
    assert result.input_shape == ("batch", 3, "height", "width")
    assert result.output_shape[0] == "batch"

    proto = onnx.load(str(path))
    assert not dynamic_pads(proto)
    meta = read_metadata(path)
    assert meta.spec == spec
    assert meta.counts["acts"] > 0 and meta.counts["resolution"] == RES
    assert meta.export["opset"] == 17 and meta.export["dynamic"] is True
    assert len(meta.export["parity"]) == 4
    # every computing node maps onto a module of the PyTorch model it came from
    modules = dict(build_model(spec, "meta").named_modules())
    mapping = node_modules(proto)
    convs = [n.name for n in proto.graph.node if n.op_type in ("Conv", "Gemm")]
    assert convs and all(mapping[n] in modules and mapping[n] for n in convs)
    assert not leftovers(tmp_path)


@pytest.mark.slow
def test_same_padding_variant_gets_constant_pads(tmp_path):
    import timm

    from scaleprof.models.spec import ModelSpec

    model = timm.create_model("tf_efficientnet_b0", pretrained=False)
    spec = ModelSpec(model="tf_efficientnet_b0", family="efficientnet", resolution=RES)
    result = export_onnx(spec, tmp_path / "tf.onnx", ExportOptions(), model=model)
    proto = onnx.load(str(tmp_path / "tf.onnx"))
    pads = [n for n in proto.graph.node if n.op_type == "Pad"]
    assert pads and not dynamic_pads(proto)
    assert not any(n.op_type in ("Shape", "Ceil") for n in proto.graph.node)   # no pad arithmetic
    assert result.spatial_multiple == 32 and all(p.ok for p in result.parity)
    assert {p.resolution for p in result.parity} == {64, 96}


def test_static_export(tmp_path):
    spec = small_spec("regnetx_002")
    result = export_onnx(spec, tmp_path / "s.onnx", ExportOptions(dynamic=False, static_batch=2))
    assert result.input_shape == (2, 3, RES, RES)
    assert [(p.batch, p.resolution) for p in result.parity] == [(2, RES)]
    assert read_metadata(tmp_path / "s.onnx").export["dynamic"] is False


def test_fp16_export_is_fp16_throughout(tmp_path):
    spec = dataclasses.replace(small_spec("regnetx_002"), resolution=32)
    result = export_onnx(spec, tmp_path / "h.onnx", ExportOptions(precision="fp16", parity_resolutions=(32, 64)))
    proto = onnx.load(str(tmp_path / "h.onnx"))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    floats = [i for i in proto.graph.initializer if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
    assert all(i.data_type == onnx.TensorProto.FLOAT16 for i in floats)
    assert all(p.ok for p in result.parity) and result.max_rel < 5e-2
    assert read_metadata(tmp_path / "h.onnx").export["precision"] == "fp16"


def test_parity_failure_writes_nothing_and_keeps_the_old_file(tmp_path):
    from scaleprof.export import ParityError

    path = tmp_path / "m.onnx"
    path.write_bytes(b"the good file from before")
    with pytest.raises(ParityError, match="parity check failed"):
        export_onnx(small_spec("regnetx_002"), path, ExportOptions(rtol=0.0, atol=0.0))
    assert path.read_bytes() == b"the good file from before"
    assert not leftovers(tmp_path)


def test_unwritable_output_directory_fails_before_exporting(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(EnvironmentProblem, match="cannot write"):
        export_onnx(small_spec("regnetx_002"), blocker / "sub" / "m.onnx")


@pytest.mark.parametrize("options, message", [
    (ExportOptions(precision="int4"), "unknown precision"),
    (ExportOptions(opset=7), "opset 7"),
    (ExportOptions(rtol=-1.0), "tolerance"),
    (ExportOptions(exporter="magic"), "unknown exporter"),
])
def test_bad_options(options, message, tmp_path):
    with pytest.raises(BadInput, match=message):
        export_onnx(small_spec("regnetx_002"), tmp_path / "m.onnx", options)
    assert not list(tmp_path.iterdir())


def test_recalibrated_bn_exercises_the_fold(tmp_path):
    """With data statistics the folded biases are non-zero, and parity still holds."""
    import numpy as np
    from onnx import numpy_helper

    export_onnx(small_spec("resnet50"), tmp_path / "r.onnx", ExportOptions(recalibrate_bn=True))
    proto = onnx.load(str(tmp_path / "r.onnx"))
    inits = {i.name: i for i in proto.graph.initializer}
    stem = next(n for n in proto.graph.node if n.op_type == "Conv")
    assert len(stem.input) == 3 and np.abs(numpy_helper.to_array(inits[stem.input[2]])).max() > 0
    assert read_metadata(tmp_path / "r.onnx").export["recalibrated_bn"] is True


def test_scaleprof_error_is_raised_for_exporter_failures(tmp_path):
    import torch

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cannot trace this\nsecond line")

    from scaleprof.models.spec import ModelSpec

    with pytest.raises(ScaleprofError, match="exporter failed: .?cannot trace this.?$"):
        export_onnx(ModelSpec(model="broken", family="x", resolution=32), tmp_path / "b.onnx",
                    ExportOptions(), model=torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), Broken()))
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_record_keeps_the_opset_the_file_declares(tmp_path):
    """The torch.export-based exporter writes opset 18 at the least, whatever it is asked for."""
    import torch

    from scaleprof.models.spec import ModelSpec

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))
    path = tmp_path / "d.onnx"
    export_onnx(ModelSpec(model="tiny", family="x", resolution=32), path, ExportOptions(exporter="dynamo", opset=17),
                model=net)
    declared = next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))
    assert read_metadata(path).export["opset"] == declared >= 18


def test_the_demos_deepest_network_exports_as_a_sweep_exports_it(tmp_path):
    """`make demo` times EfficientNet-B0 at d x4 (the deepest network it builds): its random-weight export
    must pass parity the way a sweep exports it (one shape, static). A change to how random weights are
    made once broke exactly this point (relative error 0.49) while every shallower one passed."""
    from scaleprof.export.cached import cached_export
    from scaleprof.models import base_spec
    from scaleprof.models.scaling import scale_spec

    spec = scale_spec(base_spec("efficientnet_b0"), "d", 4.0)
    path = cached_export(spec, "fp32", tmp_path)
    parity = read_metadata(path).export["parity"]
    assert parity and all(check["ok"] and check["max_rel"] <= 1e-3 for check in parity)
