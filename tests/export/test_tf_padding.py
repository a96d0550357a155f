"""Exports of the TF-padding models named by spec, and the export record's rebuild recipe (seed, BN
recalibration): the ONNX file computes what timm's dynamic "same"-padding network computes, at its
resolution and at resolution + k * spatial_multiple, with constant pads only."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from scaleprof.cli import main
from scaleprof.export import ExportOptions, export_onnx, read_metadata, recalibrate_bn
from scaleprof.export.passes import dynamic_pads
from scaleprof.models import base_spec, build_model, scale_spec


_SESSIONS: dict = {}


def _run_onnx(path, x):
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _SESSIONS:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        _SESSIONS.clear()
        _SESSIONS[key] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    session = _SESSIONS[key]
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _rebuilt_from_file(path):
    """The network the file says it holds, from its metadata alone, with timm's dynamic padding."""
    meta = read_metadata(path)
    record = meta.export
    assert record["weights"] == "seeded"
    model = build_model(meta.spec, "cpu", seed=record["seed"])
    if record["recalibrated_bn"]:
        recalibrate_bn(model, record["resolution"], record["seed"])
    return model.eval()


def _relative_error(model, path, resolution, batch=2):
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(resolution))
    with torch.no_grad():
        ref = model(x).numpy()
    out = _run_onnx(path, x)
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def _constant_pads_only(path):
    proto = onnx.load(str(path), load_external_data=False)
    ops = [n.op_type for n in proto.graph.node]
    assert "Pad" in ops and not dynamic_pads(proto)           # the export stage's own check: pads are initializers
    assert not {"Shape", "Ceil", "Gather", "Concat"} & set(ops)  # no pad arithmetic left at all


@pytest.mark.slow
def test_cli_export_tf_efficientnet_b0_small(capsys, tmp_path):
    path = tmp_path / "tf_b0.onnx"
    code = main(["export", "tf_efficientnet_b0", "--resolution", "64", "-o", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["spatial_multiple"] == 32 and result["spec"]["model"] == "tf_efficientnet_b0"
    assert {(p["batch"], p["resolution"]) for p in result["parity"]} == {(1, 64), (2, 64), (1, 96), (2, 96)}
    assert all(p["ok"] for p in result["parity"]) and result["max_rel"] < 1e-3
    _constant_pads_only(path)
    meta = read_metadata(path)
    assert meta.spec.model == "tf_efficientnet_b0" and meta.export["spatial_multiple"] == 32
    # against timm's dynamic same padding (the export's own parity compares with the frozen copy)
    model = _rebuilt_from_file(path)
    assert _relative_error(model, path, 64) < 1e-3 and _relative_error(model, path, 96) < 1e-3


@pytest.mark.slow
def test_scaled_tf_model_at_a_resolution_that_is_no_multiple_of_32(tmp_path):
    """dWr x2 of tf_efficientnet_b0 runs at 232 px: the last stride-2 layer sees 15 px (232/15 is no
    stride), yet the pads repeat only every 32 px."""
    spec = scale_spec("tf_efficientnet_b0", "dWr", 2.0)
    assert spec.resolution % 32
    spec = dataclasses.replace(spec, resolution=72)           # the same residue problem, 3x cheaper
    path = tmp_path / "scaled.onnx"
    result = export_onnx(spec, path, ExportOptions(recalibrate_bn=True, parity_batches=(1,)))
    assert result.spatial_multiple == 32 and all(p.ok for p in result.parity)
    _constant_pads_only(path)
    model = _rebuilt_from_file(path)
    for resolution in (72, 72 + 32, 72 + 64):
        assert _relative_error(model, path, resolution) < 1e-4, resolution
    # at other resolutions the constant pads are not TF's (the reason for the multiple)
    assert _relative_error(model, path, 72 + 16) > 1e-3


def test_static_export_of_a_tf_model_has_no_multiple(tmp_path):
    spec = dataclasses.replace(base_spec("tf_efficientnet_b0"), resolution=40)
    result = export_onnx(spec, tmp_path / "s.onnx", ExportOptions(dynamic=False, parity_batches=(1,)))
    assert result.spatial_multiple == 0 and result.input_shape == (1, 3, 40, 40)
    _constant_pads_only(tmp_path / "s.onnx")


def test_export_record_carries_the_seed_that_rebuilds_the_weights(tmp_path):
    spec = dataclasses.replace(base_spec("regnetx_002"), resolution=32)
    path = tmp_path / "seeded.onnx"
    export_onnx(spec, path, ExportOptions(seed=7, recalibrate_bn=True, check_parity=False))
    record = read_metadata(path).export
    assert record["seed"] == 7 and record["weights"] == "seeded" and record["recalibrated_bn"] is True
    assert record["resolution"] == 32
    assert _relative_error(_rebuilt_from_file(path), path, 32) < 1e-4
    other = build_model(spec, "cpu", seed=8)
    recalibrate_bn(other, 32, 8)
    assert _relative_error(other.eval(), path, 32) > 1e-2                   # another seed: another network

    # weights handed in are not the seed's: the record says so
    export_onnx(spec, tmp_path / "given.onnx", ExportOptions(check_parity=False), model=other)
    assert read_metadata(tmp_path / "given.onnx").export["weights"] == "given"


def test_recalibrate_bn_is_reproducible_and_leaves_the_global_rng_alone():
    spec = dataclasses.replace(base_spec("regnetx_002"), resolution=32)
    a, b = build_model(spec, seed=3), build_model(spec, seed=3)
    state = torch.random.get_rng_state()
    recalibrate_bn(a, 200, 5)            # calibrates at min(200, 128) px
    recalibrate_bn(b, 128, 5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not a.training and not any(m.training for m in a.modules())
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert float(a.stem.bn.running_var.mean()) != pytest.approx(1.0)
