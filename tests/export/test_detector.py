"""EfficientDet exports with their parity check (the default): the export's memory estimate used to run
the detector at resolution + 32 px, which its feature pyramid refuses, so every resolution failed."""

from __future__ import annotations

import dataclasses

import pytest

from scaleprof import cli
from scaleprof.export import read_metadata


def test_tf_efficientdet_d0_exports_at_256_px_with_parity(tmp_path, capsys):
    path = tmp_path / "d0.onnx"
    code = cli.main(["export", "tf_efficientdet_d0", "--resolution", "256", "-o", str(path)])
    err = capsys.readouterr().err
    assert code == 0, err
    parity = read_metadata(path).export["parity"]
    assert {p["resolution"] for p in parity} == {256, 384} and all(p["ok"] for p in parity)


@pytest.mark.parametrize("model", ["tf_efficientdet_d0", "efficientdet_d0"])
@pytest.mark.parametrize("resolution", [256, 512])
def test_the_memory_check_takes_the_detectors_resolutions(model, resolution):
    from scaleprof.export.onnx_export import ExportOptions, _check_memory
    from scaleprof.models import base_spec

    spec = dataclasses.replace(base_spec(model), resolution=resolution)
    _check_memory(spec, ExportOptions(), resolution)         # raised "Sizes of tensors must match" before
