"""The TensorRT backend on a host without TensorRT: lazy import, the one-line failure, and the
builder's control flow against a recording stand-in for the ``tensorrt`` module (it checks which
API calls are made with which arguments; it builds nothing and measures nothing). The real build,
run and profile paths are the @pytest.mark.gpu tests at the end, skipped without TensorRT and a GPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import pytest
from tensorrt_fixtures import NODE_ORDER

from scaleprof.engines.base import BuildSpec, EngineManifest, ShapePoint as P, ShapeRange as R
from scaleprof.engines.tensorrt.options import precision_mode
from scaleprof.errors import EnvironmentProblem

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


# --- without TensorRT ----------------------------------------------------------------------

def test_importing_the_backend_does_not_import_tensorrt():
    code = ("import sys, scaleprof.engines.tensorrt.backend, scaleprof.engines.registry; "
            "print('tensorrt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here: the missing-TensorRT path cannot be shown")
def test_missing_tensorrt_is_one_line_naming_the_install():
    from scaleprof.engines.tensorrt.library import import_library

    with pytest.raises(EnvironmentProblem) as info:
        import_library()
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'scaleprof[tensorrt]' on a host with an NVIDIA GPU" in message
    assert "docker" in message and info.value.exit_code == 1


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here")
def test_backend_tensorrt_fails_cleanly_from_the_command_line(tmp_path):
    """`scaleprof build --backend tensorrt` without TensorRT: exit 1, one line on stderr."""
    from tensorrt_fixtures import toy_onnx

    onnx_path = toy_onnx(tmp_path / "toy.onnx")
    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "build", str(onnx_path), "--backend", "tensorrt",
                           "--device", "cuda", "-o", str(tmp_path / "out")], capture_output=True, text=True)
    if "ModuleNotFoundError" in proc.stderr and "scaleprof.tools" in proc.stderr:
        pytest.skip("the CLI is not fully assembled yet (a subtool module is missing)")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "tensorrt" in lines[0] and "pip install 'scaleprof[tensorrt]'" in lines[0]


def test_registry_names_the_tensorrt_backend():
    from scaleprof.engines.registry import BACKENDS

    assert BACKENDS["tensorrt"][:2] == ("scaleprof.engines.tensorrt.backend", "TensorRTBackend")


def test_check_device_refuses_cpu():
    from scaleprof.engines.tensorrt.backend import TensorRTBackend
    from scaleprof.errors import BadInput

    with pytest.raises(BadInput, match="NVIDIA GPUs"):
        TensorRTBackend().check_device("cpu")
    TensorRTBackend().check_device("cuda:1")


def test_engine_profiles_come_from_the_manifest_extras():
    from scaleprof.engines.tensorrt.engine import TensorRTEngine
    from scaleprof.engines.tensorrt.profiles import engine_profiles, profile_to_json

    profiles = (R(P(1, 224), P(8, 224), P(32, 224)), R(P(1, 256), P(1, 256), P(1, 256)))
    m = EngineManifest(backend="tensorrt", backend_version="10.8.0", device="cuda", device_name="GPU",
                       precision="fp16", threads=None, key="k", onnx_sha256="", onnx_path="m.onnx",
                       artifact="engine.plan", shapes=(P(1, 224), P(1, 256)), ranges=(),
                       extras={"profiles": [profile_to_json(r) for r in profiles]})
    m = EngineManifest.from_json(m.to_json())                     # survives the manifest file
    assert engine_profiles(m) == profiles
    engine = TensorRTEngine("/nowhere", m)
    assert engine.accepts(P(16, 224)) and not engine.accepts(P(64, 224))
    assert engine._profile_index(P(8, 224)) == 0 and engine._profile_index(P(1, 256)) == 1


# --- builder control flow against a recording stand-in -------------------------------------

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
    from scaleprof.engines.tensorrt.build_api import build_serialized

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
    from scaleprof.engines.tensorrt.build_api import build_serialized

    trt = fake_tensorrt()
    build_serialized(trt, tmp_path / "m.onnx", _spec(precision="fp16"), precision_mode(10, "fp16", "fp32"))
    assert ("set_flag", "FP16") in trt.calls and ("create_network", 0) in trt.calls


def test_build_flow_strongly_typed_fp16_export(tmp_path):
    from scaleprof.engines.tensorrt.build_api import build_serialized

    for version in ("10.8.0", "11.0.0"):
        trt = fake_tensorrt(version)
        build_serialized(trt, tmp_path / "m.onnx", _spec(precision="fp16"), precision_mode(int(version[:2]), "fp16", "fp16"))
        assert ("create_network", 1 << 1) in trt.calls             # 1 << STRONGLY_TYPED
        assert "set_flag" not in _names(trt)


def test_build_flow_reuses_the_timing_cache_and_restarts_a_mismatched_one(tmp_path):
    from scaleprof.engines.tensorrt.build_api import build_serialized

    trt = fake_tensorrt()
    _, cache, _, _ = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(10, "fp32", "fp32"),
                                      cache_bytes=b"old")
    assert ("set_timing_cache", b"old", False) in trt.calls and cache == b"cache:old"
    trt = fake_tensorrt(cache_ok=False)
    _, cache, _, _ = build_serialized(trt, tmp_path / "m.onnx", _spec(), precision_mode(10, "fp32", "fp32"),
                                      cache_bytes=b"from-another-gpu")
    assert ("set_timing_cache", b"", True) in trt.calls and cache == b"cache:"


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
    from scaleprof.engines.tensorrt.build_api import build_serialized

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


# --- on a GPU with TensorRT ----------------------------------------------------------------

def _gpu_reason() -> str | None:
    if not HAVE_TRT:
        return "TensorRT is not installed (pip install 'scaleprof[tensorrt]' on a GPU host)"
    try:
        import torch
        if not torch.cuda.is_available():
            return "no CUDA GPU"
    except Exception as err:
        return f"torch unusable: {err}"
    return None


@pytest.mark.gpu
def test_gpu_build_run_profile_tiny_cnn(tmp_path):
    reason = _gpu_reason()
    if reason:
        pytest.skip(reason)
    import numpy as np
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    from scaleprof.engines.tensorrt.backend import TensorRTBackend
    from scaleprof.engines.tensorrt.options import sidecar_paths

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="/act/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["output"], name="/pool/GlobalAveragePool")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 8, 1, 1])], [w])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))

    backend = TensorRTBackend()
    spec = BuildSpec(backend="tensorrt", device="cuda", shapes=(P(1, 32), P(4, 32)),
                     options=(("timing_cache", str(tmp_path / "t.cache")),))
    engine = backend.build(path, spec, tmp_path / "engine")
    side = sidecar_paths(engine.artifact_path)
    assert side["graph"].is_file() and (tmp_path / "t.cache").is_file()
    with engine:
        x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
        out = engine.run({"input": x})["output"]
        ref = torch.relu(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(numpy_helper.to_array(w)),
                                                    padding=1)).mean(dim=(2, 3), keepdim=True).numpy()
        assert np.allclose(out, ref, rtol=1e-2, atol=1e-2)
        runner = engine.runner(P(1, 32))
        assert runner.timing_method in ("cuda-graph+cuda-events", "cuda-events")
        assert runner() > 0
        trace = engine.profile_layers(P(4, 32), iterations=5)
        assert trace.iterations == 5 and trace.events
        assert any("/conv/Conv" in e.onnx_nodes for e in trace.events)
        assert side["profile"].is_file()
