"""The TensorRT backend on a host without TensorRT: lazy import, the one-line failure, the registry
entry and the engine's profiles (the build's control flow: test_tensorrt_build_api.py). The real
build, run and profile paths are the @pytest.mark.gpu tests at the end, skipped without TensorRT
and a GPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from scaleprof.engines.base import BuildSpec, EngineManifest, ShapePoint as P, ShapeRange as R
from scaleprof.errors import EnvironmentProblem

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


# --- without TensorRT ----------------------------------------------------------------------

def test_importing_the_backend_does_not_import_tensorrt():
    code = ("import sys, scaleprof.engines.tensorrt.backend, scaleprof.engines.backends; "
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
    from tests.engines.tensorrt_fixtures import toy_onnx

    onnx_path = toy_onnx(tmp_path / "toy.onnx")
    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "build", str(onnx_path), "--backend", "tensorrt",
                           "--device", "cuda", "-o", str(tmp_path / "out")], capture_output=True, text=True)
    if "ModuleNotFoundError" in proc.stderr and "scaleprof.tools" in proc.stderr:
        pytest.skip("the CLI is not fully assembled yet (a subtool module is missing)")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "tensorrt" in lines[0] and "pip install 'scaleprof[tensorrt]'" in lines[0]


def test_registry_names_the_tensorrt_backends():
    from scaleprof.engines.backends import BACKENDS, GPU_ONLY

    assert BACKENDS["tensorrt"][:2] == ("scaleprof.engines.tensorrt.backend", "TensorRTBackend")
    assert BACKENDS["tensorrt-rtx"][:2] == ("scaleprof.engines.tensorrt.rtx", "TensorRTRTXBackend")
    assert set(GPU_ONLY) == {"tensorrt", "tensorrt-rtx"}


def test_tensorrt_installed_without_a_gpu_says_there_is_no_gpu(monkeypatch):
    """Not 'install TensorRT' when TensorRT imports and the GPU is what is missing."""
    import types

    from scaleprof.engines import backends
    from scaleprof.engines.tensorrt import backend

    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(Builder=object, __version__="10.8.0"))
    monkeypatch.setattr(backend, "gpu_present", lambda: False)
    monkeypatch.setattr(backends, "_instances", {})
    with pytest.raises(EnvironmentProblem) as info:
        backends.get_backend("tensorrt")
    message = str(info.value)
    assert "no NVIDIA GPU here: TensorRT is installed" in message and "pip install" not in message
    assert "\n" not in message


def test_check_device_refuses_cpu():
    from scaleprof.engines.tensorrt.backend import TensorRTBackend
    from scaleprof.errors import BadInput

    with pytest.raises(BadInput, match="NVIDIA GPUs"):
        TensorRTBackend().check_device("cpu")
    TensorRTBackend().check_device("cuda:1")


def test_the_library_providing_tensorrt_is_a_parameter():
    """Another module with TensorRT's API (TensorRT-RTX, say) is a TensorRTLibrary and a subclass."""
    from scaleprof.engines.tensorrt.backend import TensorRTBackend
    from scaleprof.engines.tensorrt.library import TENSORRT, TensorRTLibrary, import_library
    from scaleprof.errors import BadInput

    other = TensorRTLibrary(module="sp_module_that_is_not_installed", title="Other-RT",
                            install_hint="pip install other-rt", timing_cache=False, trtexec=False, api_major=11)
    with pytest.raises(EnvironmentProblem, match=r"^Other-RT is not installed here \(.*\): pip install other-rt$"):
        import_library(other)
    assert other.api_generation("1.2.0") == 11 and TENSORRT.api_generation("10.8.0.43") == 10

    class OtherBackend(TensorRTBackend):
        name = "other-rt"
        library = other

    backend = OtherBackend()
    assert backend.install_hint == "pip install other-rt" and TensorRTBackend().install_hint == TENSORRT.install_hint
    assert backend.trtexec_on_path() is None
    with pytest.raises(BadInput, match="the Other-RT backend runs on NVIDIA GPUs"):
        backend.check_device("cpu")


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
