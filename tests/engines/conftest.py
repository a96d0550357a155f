"""Small ONNX files for the engine tests: one scaleprof export (RegNetX-200MF at 64 px, ~7 MB) and
hand-made foreign files (no scaleprof metadata, not an image model)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

RES = 64


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """A dynamic-shape export by scaleprof.export (spec + export record in its metadata)."""
    from scaleprof.export.onnx_export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    spec = dataclasses.replace(base_spec("regnetx_002"), resolution=RES)
    path = tmp_path_factory.mktemp("onnx") / "regnetx_002_64.onnx"
    export_onnx(spec, path, ExportOptions(parity_batches=(1,), parity_resolutions=(RES,), recalibrate_bn=True))
    return path


def _torch_export(model, example, path, dynamic=True):
    import torch

    axes = {"input": {0: "batch", 2: "height", 3: "width"}} if dynamic and example.dim() == 4 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes=axes, dynamo=False, opset_version=17)
    return path


@pytest.fixture(scope="session")
def foreign_onnx(tmp_path_factory):
    """An image model nobody built with scaleprof (no spec in its metadata)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    return _torch_export(model, torch.randn(1, 3, 32, 32), tmp_path_factory.mktemp("onnx") / "foreign.onnx")


@pytest.fixture(scope="session")
def static_onnx(tmp_path_factory):
    """The same kind of model exported with a fixed 1x3x32x32 input."""
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    return _torch_export(model, torch.randn(1, 3, 32, 32), tmp_path_factory.mktemp("onnx") / "static.onnx",
                         dynamic=False)


@pytest.fixture(scope="session")
def vector_onnx(tmp_path_factory):
    """Not an image model: its input is a (1, 16) vector."""
    import torch

    return _torch_export(torch.nn.Linear(16, 4), torch.randn(1, 16), tmp_path_factory.mktemp("onnx") / "vector.onnx")


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "engines"


@pytest.fixture
def trt10():
    """The toy engine's inspector JSON as TensorRT 10 writes it (tests/fixtures/tensorrt/README.md)."""
    from tests.engines.tensorrt_fixtures import FIXTURES

    from scaleprof.engines.tensorrt.inspector import read_inspector

    return read_inspector(FIXTURES / "efficientnet_toy.trt10.graph.json")
