"""ONNX Runtime on the CUDA execution provider (GPU hosts with onnxruntime-gpu), and the check that
a session asked for a provider ORT cannot start does not quietly run on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from scaleprof.engines import BuildSpec, ShapePoint, build_engine
from scaleprof.errors import EnvironmentProblem

RES = 64


def _why_no_cuda_ep() -> str | None:
    import onnxruntime
    import torch

    if not torch.cuda.is_available():
        return "needs an NVIDIA GPU visible to PyTorch"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "needs onnxruntime-gpu (ONNX Runtime here has no CUDAExecutionProvider)"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_why_no_cuda_ep() is not None, reason=_why_no_cuda_ep() or "")
def test_ort_cuda_engine_runs_profiles_and_matches_the_cpu_engine(tiny_onnx, cache_dir):
    shapes = (ShapePoint(1, RES), ShapePoint(2, RES))
    cuda = build_engine(tiny_onnx, BuildSpec(backend="ort", device="cuda", shapes=shapes), cache_dir).engine
    cpu = build_engine(tiny_onnx, BuildSpec(backend="ort", shapes=shapes, threads=1), cache_dir).engine
    with cuda, cpu:
        assert cuda.manifest.extras["ep"] == "cuda"
        assert cuda.session.get_providers()[0] == "CUDAExecutionProvider"
        x = cpu.make_inputs(ShapePoint(2, RES))
        got, ref = cuda.run(x)["logits"], cpu.run(x)["logits"]
        assert got.shape == ref.shape == (2, 1000)
        assert np.abs(got - ref).max() <= 1e-2 * max(1.0, np.abs(ref).max())   # TF32 convolutions allowed

        runner = cuda.runner(ShapePoint(2, RES))
        assert runner.timing_method == "perf_counter+cuda-sync"
        assert all(0 < runner() < 1000 for _ in range(10))

        trace = cuda.profile_layers(ShapePoint(1, RES), iterations=3)
        assert trace.profiler == "onnxruntime" and trace.events
        assert all(len(e.times_ms) == 3 for e in trace.events)
        assert any(e.op_type in ("Conv", "FusedConv") for e in trace.events)
        assert sum(sum(e.times_ms) for e in trace.events) > 0


def test_checked_session_refuses_a_silent_cpu_fallback(tiny_onnx):
    """ONNX Runtime only warns when a requested provider is not there and runs on the next one (the
    CPU); checked_session turns that into an EnvironmentProblem. The provider asked for is one this
    ONNX Runtime really lacks (CUDA on a CPU build)."""
    import onnxruntime

    from scaleprof.engines.ort import checked_session, session_options

    available = onnxruntime.get_available_providers()
    missing = next((p for p in ("CUDAExecutionProvider", *onnxruntime.get_all_providers()) if p not in available), None)
    if missing is None:
        pytest.skip("this ONNX Runtime has every provider it knows of")
    providers = [(missing, {"device_id": 0}), "CPUExecutionProvider"]
    with pytest.warns(UserWarning, match=f"'{missing}' is not in available provider names"):
        with pytest.raises(EnvironmentProblem, match=f"could not start {missing} .*fell back to CPUExecutionProvider"):
            checked_session(tiny_onnx, session_options(1, "all"), providers)
    session = checked_session(tiny_onnx, session_options(1, "all"), ["CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]
