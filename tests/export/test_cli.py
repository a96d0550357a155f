"""`scaleprof export` and `scaleprof inspect`: results, and one line + non-zero exit on bad input."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper



@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    import dataclasses

    path = tmp_path_factory.mktemp("cli") / "regnetx.onnx"
    export_onnx(dataclasses.replace(base_spec("regnetx_002"), resolution=32), path,
                ExportOptions(parity_resolutions=(32, 64)))
    return path


def assert_one_line_error(code, err, expect):
    assert code != 0
    lines = err.strip().splitlines()    # progress lines may come first; the error is one line, the last
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    assert "Traceback" not in err and expect in lines[-1]


def test_export_cli_json_then_inspect(scaleprof, tmp_path):
    path = tmp_path / "out" / "x.onnx"
    code, out, err = scaleprof("export", "regnetx_002", "--strategy", "dWr", "--scale", "2", "--resolution", "32",
                             "--static", "--batch", "2", "--tolerance", "1e-3,1e-5", "-o", path, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["input_shape"] == [2, 3, 32, 32] and result["spec"]["strategy"] == "dWr"
    assert path.is_file()

    code, out, err = scaleprof("inspect", path, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["spec"]["scale"] == 2.0 and info["input"] == {"name": "input", "shape": [2, 3, 32, 32]}
    assert info["predicted_counts"]["acts"] == info["onnx_counts"]["acts"]
    code, out, _ = scaleprof("inspect", path)
    assert code == 0 and "regnetx_002 dWr(0.8) x2" in out and "predicted" in out


def test_inspect_text(scaleprof, exported):
    code, out, err = scaleprof("inspect", exported)
    assert code == 0, err
    assert "input      input batchx3xheightxwidth" in out and "parity" in out and "graph      flops" in out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_onnx(scaleprof, exported, tmp_path, damage):
    bad = tmp_path / "bad.onnx"
    data = exported.read_bytes()
    bad.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"\x08\x07not an onnx file" * 50,
                     "empty": b""}[damage])
    code, _, err = scaleprof("inspect", bad)
    assert_one_line_error(code, err, str(bad))


def test_truncated_at_every_cut_is_rejected(exported, tmp_path):
    from scaleprof.errors import BadInput
    from scaleprof.export import load_model

    data = exported.read_bytes()
    for cut in (10, 1000, len(data) // 2, len(data) - 7):
        bad = tmp_path / f"cut{cut}.onnx"
        bad.write_bytes(data[:cut])
        with pytest.raises(BadInput):
            load_model(bad)


def _write_model(path, shape, elem=TensorProto.FLOAT):
    x = helper.make_tensor_value_info("x", elem, shape)
    y = helper.make_tensor_value_info("y", elem, shape)
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("shape, elem, expect", [
    ((1, 10), TensorProto.FLOAT, "not an image tensor"),
    (("n", 3, 8), TensorProto.FLOAT, "not an image tensor"),
    ((1, "c", 8, 8), TensorProto.FLOAT, "channel dim must be fixed"),
    ((1, 3, 8, 8), TensorProto.INT64, "not a floating-point image"),
])
def test_non_image_input(scaleprof, tmp_path, shape, elem, expect):
    path = _write_model(tmp_path / "t.onnx", shape, elem)
    code, _, err = scaleprof("inspect", path)
    assert_one_line_error(code, err, expect)


def test_missing_file_and_not_an_engine_dir(scaleprof, tmp_path):
    code, _, err = scaleprof("inspect", tmp_path / "nope.onnx")
    assert_one_line_error(code, err, "no such ONNX file")
    code, _, err = scaleprof("inspect", tmp_path)
    assert_one_line_error(code, err, "no manifest.json")


def test_inspect_engine_dir(scaleprof, exported, tmp_path):
    from scaleprof.engines.base import EngineManifest, ShapePoint

    manifest = EngineManifest(backend="ort", backend_version="1.0", device="cpu", device_name="test cpu",
                              precision="fp32", threads=2, key="k123", onnx_sha256="0" * 64,
                              onnx_path=str(exported), artifact="model.ort.onnx",
                              shapes=(ShapePoint(1, 32), ShapePoint(8, 32)))
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    code, out, err = scaleprof("inspect", tmp_path)
    assert code == 0, err
    assert "backend    ort 1.0 on cpu (test cpu)" in out and "1x3x32x32, 8x3x32x32" in out
    assert "MISSING" in out and "regnetx_002" in out
    code, out, _ = scaleprof("inspect", tmp_path, "--json")
    assert json.loads(out)["manifest"]["key"] == "k123"


def test_export_cli_unwritable_dir_leaves_nothing(scaleprof, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = scaleprof("export", "regnetx_002", "--resolution", "32", "-o", blocker / "m.onnx")
    assert_one_line_error(code, err, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_export_cli_bad_tolerance_and_parity_failure(scaleprof, tmp_path):
    code, _, err = scaleprof("export", "regnetx_002", "-o", tmp_path / "m.onnx", "--tolerance", "abc")
    assert_one_line_error(code, err, "--tolerance")
    code, _, err = scaleprof("export", "regnetx_002", "--resolution", "32", "-o", tmp_path / "m.onnx",
                           "--tolerance", "0,0")
    assert_one_line_error(code, err, "parity check failed")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flags, expect", [
    (["--resolution", "-5"], "resolution -5 is not one regnetx_002 can take"),    # was a RuntimeError traceback
    (["--resolution", "0"], "resolution 0 is not one regnetx_002 can take"),      # was silently the default
    (["--resolution", "16"], "resolution 16 is not one regnetx_002 can take"),    # below the total stride, as count
    (["--scale", "2"], "--scale/--alpha need a --strategy"),                       # flags checked as count/scale do
    (["--opset", "0"], "opset 0 is not supported"),                              # was silently opset 17
])
def test_export_cli_bad_resolution_and_opset(scaleprof, tmp_path, flags, expect):
    code, _, err = scaleprof("export", "regnetx_002", "-o", tmp_path / "m.onnx", *flags)
    assert_one_line_error(code, err, expect)
    assert not list(tmp_path.iterdir())


def test_inspect_tolerates_a_partial_export_record(scaleprof, tmp_path):
    """A file from elsewhere may carry a scaleprof-looking record with keys missing: inspect shows what
    is there instead of failing."""
    path = _write_model(tmp_path / "partial.onnx", (1, 3, 8, 8))
    model = onnx.load(str(path))
    helper.set_model_props(model, {"scaleprof.export": json.dumps({"dynamic": True, "parity": [{"batch": 1}]})})
    onnx.save(model, str(path))
    code, out, err = scaleprof("inspect", path)
    assert code == 0 and err == ""
    assert "export     ?, dynamic shapes, ? exporter" in out and "parity" not in out.split("export")[1]


@pytest.mark.parametrize("suffix, text", [(".json", '{"a": 1}'), (".txt", "graph { node { op_type: ")])
def test_onnx_path_in_a_text_format_is_rejected_in_one_line(scaleprof, tmp_path, suffix, text):
    """onnx.load picks protobuf's JSON or text parser from the suffix; their errors are bad input too."""
    bad = tmp_path / f"model{suffix}"
    bad.write_text(text)
    code, _, err = scaleprof("inspect", bad)
    assert_one_line_error(code, err, "not a readable ONNX model")
