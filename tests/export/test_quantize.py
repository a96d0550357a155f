"""int8 and fp8 exports: a QDQ file from ONNX Runtime's static quantization, its settings in the
metadata, parity against the fp32 network (top-1 agreement and relative error), calibration on a
folder of images, and one-line refusals of bad calibration folders."""

from __future__ import annotations

import dataclasses

import onnx
import pytest

from scaleprof.core.onnx_file import quantized_precision
from scaleprof.errors import BadInput
from scaleprof.export import ExportOptions, ParityError, export_onnx, read_metadata

RES = 64


def spec_at(model: str = "regnetx_002"):
    from scaleprof.models import base_spec

    return dataclasses.replace(base_spec(model), resolution=RES)


def one_shape(**kw) -> ExportOptions:
    return ExportOptions(parity_batches=(4,), parity_resolutions=(RES,), **kw)


@pytest.fixture(scope="module")
def b0_int8(tmp_path_factory):
    path = tmp_path_factory.mktemp("int8") / "b0-int8.onnx"
    return path, export_onnx(spec_at("efficientnet_b0"), path, one_shape(precision="int8"))


def test_int8_export_is_a_qdq_file_with_its_settings(b0_int8, b0_onnx):
    path, result = b0_int8
    model = onnx.load(str(path))
    assert quantized_precision(model) == "int8"
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    # biases stay float: no int32 tensor is dequantized (TensorRT-RTX's parser refuses those)
    int32 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT32}
    assert not any(n.op_type == "DequantizeLinear" and n.input[0] in int32 for n in model.graph.node)
    # per-channel weights: a conv weight's scale has one value per output channel
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    int8 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    weight_dq = [n for n in model.graph.node
                 if n.op_type == "DequantizeLinear" and n.input[0] in int8 and len(dims[n.input[0]]) == 4]
    assert len(weight_dq) == 81                     # every convolution of B0
    assert all(dims[n.input[1]] == dims[n.input[0]][:1] for n in weight_dq)

    record = read_metadata(path).export
    assert record["precision"] == "int8" and read_metadata(path).spec.model == "efficientnet_b0"
    q = record["quantization"]
    assert (q["format"], q["type"], q["per_channel"], q["quantize_bias"]) == ("QDQ", "QInt8", True, False)
    assert q["calibration"] == {"source": "random", "folder": None, "images": 8, "resolution": RES}
    assert result.quantization == q
    assert model.producer_name == "scaleprof"
    # weights in a byte each: about a quarter of the fp32 file
    assert path.stat().st_size < 0.4 * b0_onnx.stat().st_size


def test_int8_parity_is_against_fp32_with_top1_agreement(b0_int8):
    _, result = b0_int8
    (check,) = result.parity
    assert check.ok and check.batch == 4
    assert check.top1 is not None and 0.0 <= check.top1 <= 1.0
    assert 0 < check.max_rel < 0.5                  # int8 rounding shows, within the int8 tolerance
    assert read_metadata(b0_int8[0]).export["tolerance"] == {"rtol": 0.5, "atol": 0.0}


def test_int8_parity_fails_on_a_float_tolerance(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(ParityError, match=r"int8 against fp32"):
        export_onnx(spec_at(), path, one_shape(precision="int8", rtol=1e-4, atol=0.0))
    assert not path.exists()


def test_fp8_export_recalibrates_bn_and_has_finite_scales(tmp_path):
    from scaleprof.export.quantize import non_finite_scales

    path = tmp_path / "m-fp8.onnx"
    result = export_onnx(spec_at("efficientnet_b0"), path, one_shape(precision="fp8"))
    assert quantized_precision(onnx.load(str(path))) == "fp8"
    record = read_metadata(path).export
    assert record["recalibrated_bn"] is True and record["quantization"]["type"] == "QFLOAT8E4M3FN"
    assert not non_finite_scales(path)
    assert all(p.ok for p in result.parity)


@pytest.fixture
def image_folder(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(50, 80), (120, 90), (64, 64)]):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / ".hidden").write_text("not read")
    return folder


def test_calibration_folder_is_used(image_folder, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(spec_at(), path, one_shape(precision="int8", calibration_images=str(image_folder)))
    calibration = read_metadata(path).export["quantization"]["calibration"]
    assert calibration == {"source": "images", "folder": str(image_folder), "images": 3, "resolution": RES}


def test_calibration_images_are_fitted_and_normalised(image_folder):
    from scaleprof.export.calibration_images import load_images

    arrays = load_images(image_folder, 32, limit=2)
    assert [a.shape for a in arrays] == [(1, 3, 32, 32)] * 2
    assert all(a.dtype.name == "float32" and -2.2 < a.min() and a.max() < 2.7 for a in arrays)


@pytest.mark.parametrize("case", ["empty", "not-images", "missing", "fp32"])
def test_bad_calibration_folders_are_one_line(case, tmp_path, scaleprof):
    folder = tmp_path / "dir"
    precision = "int8"
    if case == "empty":
        folder.mkdir()
    elif case == "not-images":
        folder.mkdir()
        (folder / "a.jpg").write_text("text, not a JPEG")
    elif case == "fp32":
        folder.mkdir()
        precision = "fp32"
    code, out, err = scaleprof("export", "regnetx_002", "--resolution", RES, "-o", tmp_path / "m.onnx",
                               "--precision", precision, "--calibration-images", folder)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert {"empty": "holds no images", "not-images": "a.jpg is not an image", "missing": "no such folder",
            "fp32": "calibration images are for int8 and fp8"}[case] in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_cli_says_what_parity_compared(tmp_path, scaleprof):
    code, out, err = scaleprof("export", "regnetx_002", "--resolution", RES, "-o", tmp_path / "m.onnx",
                               "--precision", "int8")
    assert code == 0, err
    assert ("int8 QDQ (QInt8, per-channel symmetric weights, symmetric activations, float biases), "
            "calibrated on 8 random images") in out
    assert "parity against fp32" in out and "top-1 agreement" in out


def test_a_static_export_is_calibrated_at_its_batch(tmp_path):
    path = tmp_path / "m.onnx"
    result = export_onnx(spec_at(), path, ExportOptions(precision="int8", dynamic=False, static_batch=3,
                                                        calibration_count=4))
    assert result.input_shape == (3, 3, RES, RES) and result.parity[0].batch == 3
    assert read_metadata(path).export["quantization"]["calibration"]["images"] == 6    # 4 images in 2 batches of 3


def test_unknown_calibration_count_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="calibration image count"):
        export_onnx(spec_at(), tmp_path / "m.onnx", one_shape(precision="int8", calibration_count=0))
