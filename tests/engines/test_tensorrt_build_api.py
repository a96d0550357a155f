"""What the Python-API build does only for NVIDIA's TensorRT 10/11, against a recording stand-in for
the ``tensorrt`` module (it records which API calls are made; it builds nothing): the FP16 builder
flag and the timing cache. Everything TensorRT-RTX shares with them (parsing, parser errors,
profiles, strong typing, static inputs, the builder config) runs against the real ``tensorrt_rtx``
library in test_tensorrt_rtx_build.py."""

from __future__ import annotations

import types

from tests.engines.tensorrt_fixtures import NODE_ORDER

from scaleprof.engines.base import BuildSpec, ShapePoint as P
from scaleprof.engines.tensorrt.build_api import build_serialized
from scaleprof.engines.tensorrt.options import precision_mode


def fake_tensorrt(version="10.8.0.43", cache_ok=True):
    """A stand-in ``tensorrt`` module that records the builder calls made on it."""
    calls: list[tuple] = []
    trt = types.SimpleNamespace(__version__=version, calls=calls)

    class ILogger:
        def __init__(self):
            pass

    class Enum:
        def __init__(self, name, value=0):
            self.name, self.value = name, value

        def __int__(self):
            return self.value

        def __repr__(self):
            return self.name

    class Tensor:
        name = "input"
        shape = (-1, 3, -1, -1)

    class Network:
        num_inputs = 1
        num_layers = 0

        def get_input(self, i):
            return Tensor()

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0

        def parse_from_file(self, path):
            calls.append(("parse_from_file", path))
            return True

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            calls.append(("set_shape", name, lo, opt, hi))

    class Cache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return b"cache:" + bytes(self.data)

    class Config:
        def __init__(self):
            self._cache = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool.name, size))

        def __setattr__(self, key, value):
            if not key.startswith("_"):
                calls.append(("config." + key, getattr(value, "name", value)))
            object.__setattr__(self, key, value)

        def set_flag(self, flag):
            calls.append(("set_flag", flag.name))

        def add_optimization_profile(self, profile):
            calls.append(("add_optimization_profile",))
            return sum(1 for c in calls if c[0] == "add_optimization_profile") - 1

        def create_timing_cache(self, data):
            calls.append(("create_timing_cache", bytes(data)))
            return Cache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append(("set_timing_cache", bytes(cache.data), ignore_mismatch))
            ok = cache_ok or not cache.data
            if ok:
                self._cache = cache
            return ok

        def get_timing_cache(self):
            return self._cache

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("build_serialized_network",))
            return b"PLAN"

    trt.ILogger = ILogger
    trt.Builder = Builder
    trt.OnnxParser = OnnxParser
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=Enum("STRONGLY_TYPED", 1))
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=Enum("WORKSPACE"))
    trt.ProfilingVerbosity = types.SimpleNamespace(DETAILED=Enum("DETAILED"))
    trt.BuilderFlag = types.SimpleNamespace(FP16=Enum("FP16"))
    return trt


def _spec(**kw):
    base = dict(backend="tensorrt", device="cuda", precision="fp32", shapes=(P(1, 224), P(8, 224)))
    base.update(kw)
    return BuildSpec(**base)


def _names(trt):
    return [c[0] for c in trt.calls]


def test_build_flow_fp16_builder_flag_on_tensorrt_10(tmp_path):
    trt = fake_tensorrt()
    build_serialized(trt, tmp_path / "m.onnx", _spec(precision="fp16"), precision_mode(10, "fp16", "fp32"))
    assert ("set_flag", "FP16") in trt.calls and ("create_network", 0) in trt.calls


def test_build_flow_reuses_the_timing_cache_and_restarts_a_mismatched_one(tmp_path):
    trt = fake_tensorrt()
    built = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(10, "fp32", "fp32"), cache_bytes=b"old")
    assert ("set_timing_cache", b"old", False) in trt.calls and built.timing_cache == b"cache:old"
    trt = fake_tensorrt(cache_ok=False)
    built = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(10, "fp32", "fp32"),
                             cache_bytes=b"from-another-gpu")
    assert ("set_timing_cache", b"", True) in trt.calls and built.timing_cache == b"cache:"


def test_build_flow_without_a_timing_cache(tmp_path):
    """A library that keeps no timing cache (cache_bytes=None) builds without touching one."""
    trt = fake_tensorrt()
    built = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(11, "fp32", "fp32"), cache_bytes=None)
    assert (built.plan, built.timing_cache) == (b"PLAN", None)
    assert not [c for c in trt.calls if "timing_cache" in c[0]]


def test_parser_errors_without_a_node_name_take_it_from_the_node_order():
    """An error that carries only the node's index is named from the ONNX graph's node order."""
    from scaleprof.engines.tensorrt.build_api import parse_errors

    class Error:
        def __init__(self, index, desc):
            self.index, self.text = index, desc

        def node(self):
            return self.index

        def desc(self):
            return self.text

    parser = types.SimpleNamespace(num_errors=2, get_error=[Error(3, "unsupported attribute"), Error(-1, "bad file")].__getitem__)
    assert parse_errors(parser, NODE_ORDER) == [f"node '{NODE_ORDER[3]}': unsupported attribute", "model: bad file"]
