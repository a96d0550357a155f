"""The Python-API build's control flow against a recording stand-in for the ``tensorrt`` module (it
checks which API calls are made with which arguments; it builds nothing and measures nothing)."""

from __future__ import annotations

import types

import pytest
from tensorrt_fixtures import NODE_ORDER

from scaleprof.engines.base import BuildSpec, ShapePoint as P, ShapeRange as R
from scaleprof.engines.tensorrt.build_api import build_serialized
from scaleprof.engines.tensorrt.options import precision_mode
from scaleprof.errors import EnvironmentProblem


def fake_tensorrt(version="10.8.0.43", parse_ok=True, input_dims=(-1, 3, -1, -1), cache_ok=True, errors=()):
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
        shape = input_dims

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return Tensor()

    class ParserError:
        def __init__(self, name, op, desc, index):
            self._n, self._o, self._d, self._i = name, op, desc, index

        def node_name(self):
            return self._n

        def node_operator(self):
            return self._o

        def desc(self):
            return self._d

        def node(self):
            return self._i

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = len(errors)

        def parse_from_file(self, path):
            calls.append(("parse_from_file", path))
            return parse_ok

        def get_error(self, i):
            return ParserError(*errors[i])

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


def test_build_flow_fp32_tensorrt_10(tmp_path):
    trt = fake_tensorrt()
    spec = _spec(options=(("opt_level", 4), ("workspace_mib", 512)))
    plan, cache, inputs, profiles = build_serialized(trt, tmp_path / "m.onnx", spec, precision_mode(10, "fp32", "fp32"))
    assert (plan, cache) == (b"PLAN", b"cache:")
    assert inputs == {"input": (-1, 3, -1, -1)}
    assert profiles == (R(P(1, 224), P(1, 224), P(1, 224)), R(P(8, 224), P(8, 224), P(8, 224)))
    assert ("create_network", 0) in trt.calls                          # weakly typed, no flags
    assert ("set_memory_pool_limit", "WORKSPACE", 512 << 20) in trt.calls
    assert ("config.builder_optimization_level", 4) in trt.calls
    assert ("config.profiling_verbosity", "DETAILED") in trt.calls
    assert "set_flag" not in _names(trt)
    assert [c for c in trt.calls if c[0] == "set_shape"] == [
        ("set_shape", "input", (1, 3, 224, 224), (1, 3, 224, 224), (1, 3, 224, 224)),
        ("set_shape", "input", (8, 3, 224, 224), (8, 3, 224, 224), (8, 3, 224, 224))]
    assert _names(trt).count("add_optimization_profile") == 2
    assert _names(trt)[-1] == "build_serialized_network"


def test_build_flow_fp16_builder_flag_on_tensorrt_10(tmp_path):
    trt = fake_tensorrt()
    build_serialized(trt, tmp_path / "m.onnx", _spec(precision="fp16"), precision_mode(10, "fp16", "fp32"))
    assert ("set_flag", "FP16") in trt.calls and ("create_network", 0) in trt.calls


def test_build_flow_strongly_typed_fp16_export(tmp_path):
    for version in ("10.8.0", "11.0.0"):
        trt = fake_tensorrt(version)
        build_serialized(trt, tmp_path / "m.onnx", _spec(precision="fp16"), precision_mode(int(version[:2]), "fp16", "fp16"))
        assert ("create_network", 1 << 1) in trt.calls             # 1 << STRONGLY_TYPED
        assert "set_flag" not in _names(trt)


def test_build_flow_reuses_the_timing_cache_and_restarts_a_mismatched_one(tmp_path):
    trt = fake_tensorrt()
    _, cache, _, _ = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(10, "fp32", "fp32"),
                                      cache_bytes=b"old")
    assert ("set_timing_cache", b"old", False) in trt.calls and cache == b"cache:old"
    trt = fake_tensorrt(cache_ok=False)
    _, cache, _, _ = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(10, "fp32", "fp32"),
                                      cache_bytes=b"from-another-gpu")
    assert ("set_timing_cache", b"", True) in trt.calls and cache == b"cache:"


def test_build_flow_without_a_timing_cache(tmp_path):
    """A library that keeps no timing cache (cache_bytes=None) builds without touching one."""
    trt = fake_tensorrt()
    plan, cache, _, _ = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(11, "fp32", "fp32"),
                                         cache_bytes=None)
    assert (plan, cache) == (b"PLAN", None)
    assert not [c for c in trt.calls if "timing_cache" in c[0]]


def test_static_onnx_input_takes_no_profiles(tmp_path):
    from scaleprof.engines.tensorrt.build_api import build_serialized
    from scaleprof.errors import BadInput

    trt = fake_tensorrt(input_dims=(1, 3, 224, 224))
    _, _, _, profiles = build_serialized(trt, tmp_path / "m.onnx", _spec(shapes=(P(1, 224),)),
                                         precision_mode(10, "fp32", "fp32"))
    assert profiles == () and "set_shape" not in _names(trt)
    with pytest.raises(BadInput, match="fixed at 1"):
        build_serialized(fake_tensorrt(input_dims=(1, 3, 224, 224)), tmp_path / "m.onnx", _spec(),
                         precision_mode(10, "fp32", "fp32"))


def test_unsupported_nodes_are_reported_with_their_onnx_names(tmp_path):
    trt = fake_tensorrt(parse_ok=False, errors=[
        ("/blocks/0/se/Weird", "WeirdOp", "No importer registered for op: WeirdOp", 7),
        ("", "", "Assertion failed: unsupported attribute", 3)])        # older error: only an index
    with pytest.raises(EnvironmentProblem) as info:
        build_serialized(trt, tmp_path / "toy.onnx", _spec(), precision_mode(10, "fp32", "fp32"), node_order=NODE_ORDER)
    message = str(info.value)
    assert "\n" not in message and "cannot parse toy.onnx" in message
    assert "node '/blocks/0/se/Weird' (WeirdOp): No importer registered" in message
    assert f"node '{NODE_ORDER[3]}'" in message
    assert "build_serialized_network" not in _names(trt)
