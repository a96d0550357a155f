"""Small real models for the profile tests: exported with torch, built with the ORT backend."""

from __future__ import annotations

import pytest


def _tiny_net():
    import torch
    from torch import nn

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.reduce = nn.Conv2d(c, c // 4, 1)
            self.expand = nn.Conv2d(c // 4, c, 1)

        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * torch.sigmoid(self.expand(torch.relu(self.reduce(s))))

    class Block(nn.Module):      # residual: conv-bn-relu, depthwise-bn-silu, SE, conv-bn, add, relu
        def __init__(self, c):
            super().__init__()
            self.pw = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
            self.dw = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c), nn.SiLU())
            self.se = SE(c)
            self.out = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

        def forward(self, x):
            return torch.relu(self.out(self.se(self.dw(self.pw(x)))) + x)

    net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.MaxPool2d(2), Block(16), Block(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 10))
    return net.eval()


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    import torch

    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    torch.manual_seed(0)
    torch.onnx.export(_tiny_net(), (torch.randn(1, 3, 32, 32),), str(path), dynamo=False,
                      input_names=["input"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


@pytest.fixture(scope="session")
def tiny_engine(tiny_onnx, tmp_path_factory):
    """An ORT CPU engine (ORT_ENABLE_ALL: NCHWc convolutions with fused activations and adds)."""
    from scaleprof.engines.base import BuildSpec, ShapePoint
    from scaleprof.engines.cache import build_engine

    spec = BuildSpec(backend="ort", device="cpu", threads=1, shapes=(ShapePoint(1, 32), ShapePoint(2, 32)))
    return build_engine(tiny_onnx, spec, tmp_path_factory.mktemp("engines")).engine
