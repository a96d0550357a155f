import subprocess
import sys

import pytest

from scaleprof.engines import backends
from scaleprof.errors import BadInput, EnvironmentProblem


def test_importing_engines_imports_no_runtime():
    code = ("import sys, scaleprof.engines, scaleprof.engines.cache, scaleprof.tools.build; "
            "print([m for m in ('torch', 'onnxruntime', 'tensorrt', 'onnx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_backend_names_the_choices():
    with pytest.raises(BadInput, match=r"unknown backend 'otr'.*ort, torch, tensorrt.*did you mean 'ort'"):
        backends.get_backend("otr")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", ""])
def test_unknown_device(device):
    with pytest.raises(BadInput, match="unknown device"):
        backends.backend_for("ort", device)


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    (tmp_path / "sp_fake_backend.py").write_text("import sp_package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends.BACKENDS, "fake", ("sp_fake_backend", "Fake", "pip install 'scaleprof[fake]'"))
    with pytest.raises(EnvironmentProblem, match=r"needs the 'sp_package_that_is_not_installed' package: "
                                                 r"pip install 'scaleprof\[fake\]'"):
        backends.get_backend("fake")


def test_tensorrt_missing_names_its_extra():
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    with pytest.raises(EnvironmentProblem) as err:
        backends.backend_for("tensorrt", "cuda")
    assert "scaleprof[tensorrt]" in str(err.value) or "not part of this scaleprof installation" in str(err.value)


def test_ort_on_cuda_without_onnxruntime_gpu_names_the_gpu_extra():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(EnvironmentProblem, match=r"scaleprof\[gpu\]"):
        backends.backend_for("ort", "cuda")


def test_torch_on_cuda_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(EnvironmentProblem, match="no CUDA GPU"):
        backends.backend_for("torch", "cuda")


def test_backends_are_singletons_and_aliases_resolve():
    assert backends.get_backend("ort") is backends.get_backend("ort") is backends.get_backend("onnxruntime")
    assert backends.get_backend("pytorch").name == "torch"
