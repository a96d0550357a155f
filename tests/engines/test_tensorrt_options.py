"""TensorRT build options without TensorRT: precision modes, option checks, cache keys, timing cache,
side files and tensor types."""

from __future__ import annotations

import pytest

from scaleprof.engines.base import BuildSpec, ShapePoint as P
from scaleprof.engines.tensorrt.options import (key_parts, onnx_float_precision, precision_mode, sidecar_paths,
                                                timing_cache_path, trt_options)
from scaleprof.engines.tensorrt.runner import torch_dtype_name
from scaleprof.errors import BadInput, EnvironmentProblem

SHAPES = (P(1, 224), P(8, 224), P(32, 224), P(1, 256), P(8, 256))


# --- precision -----------------------------------------------------------------------------

@pytest.mark.parametrize("major,precision,onnx,name,typed,flag", [
    (10, "fp32", "fp32", "fp32", False, False),
    (10, "fp16", "fp32", "builder-flag-fp16", False, True),
    (10, "fp16", "fp16", "strongly-typed", True, False),
    (10, "fp16", "mixed", "strongly-typed", True, False),
    (11, "fp32", "fp32", "fp32", True, False),
    (11, "fp16", "fp16", "strongly-typed", True, False),
])
def test_precision_modes_of_tensorrt_10_and_11(major, precision, onnx, name, typed, flag):
    mode = precision_mode(major, precision, onnx)
    assert (mode.name, mode.strongly_typed, mode.fp16_flag) == (name, typed, flag)
    assert mode.note


def test_tensorrt_11_fp16_needs_an_fp16_export():
    with pytest.raises(BadInput, match="--precision fp16"):
        precision_mode(11, "fp16", "fp32")


def test_fp32_from_an_fp16_export_and_old_tensorrt_are_refused():
    with pytest.raises(BadInput, match="fp16 weights"):
        precision_mode(10, "fp32", "fp16")
    with pytest.raises(EnvironmentProblem, match="too old"):
        precision_mode(8, "fp32", "fp32")
    with pytest.raises(BadInput):
        precision_mode(10, "int8", "fp32")


def _model(weight_types, input_type=1):
    from onnx import helper

    inits = [helper.make_tensor(f"w{i}", t, [1], [0.0]) for i, t in enumerate(weight_types)]
    node = helper.make_node("Identity", ["x"], ["y"], name="id")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", input_type, [1])],
                              [helper.make_tensor_value_info("y", input_type, [1])], initializer=inits)
    return helper.make_model(graph)


def test_onnx_float_precision_reads_the_weights():
    FLOAT, FLOAT16, INT64 = 1, 10, 7
    assert onnx_float_precision(_model([FLOAT, FLOAT, INT64])) == "fp32"
    assert onnx_float_precision(_model([FLOAT16, FLOAT16, INT64], FLOAT16)) == "fp16"
    assert onnx_float_precision(_model([FLOAT16, FLOAT])) == "mixed"
    assert onnx_float_precision(_model([], FLOAT16)) == "fp16"      # no weights: the inputs decide


# --- options, cache keys, timing cache -----------------------------------------------------

def test_options_are_validated():
    spec = BuildSpec(backend="tensorrt", device="cuda", options=(("opt_level", 5), ("workspace_mib", 2048)))
    opts = trt_options(spec)
    assert (opts.opt_level, opts.workspace_mib, opts.profiles) == (5, 2048, "per-shape")
    for options, match in ((("opt_level", 6),), "0..5"), ((("workspace_mib", 0),), "positive"), \
                          ((("profiles", "all"),), "profiles="), ((("bogus", 1),), "unknown TensorRT option"):
        with pytest.raises(BadInput, match=match):
            trt_options(BuildSpec(backend="tensorrt", options=options))


def _spec(**kw):
    base = dict(backend="tensorrt", device="cuda", precision="fp16", shapes=(P(1, 224), P(8, 224)))
    base.update(kw)
    return BuildSpec(**base)


def test_key_parts_hold_gpu_name_tensorrt_version_and_builder_options():
    parts = key_parts(_spec(options=(("opt_level", 4), ("workspace_mib", 1024))),
                      trt_version="10.8.0.43", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    assert parts["tensorrt_version"] == "10.8.0.43"
    assert parts["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert parts["compute_capability"] == "9.0"
    assert parts["builder_optimization_level"] == 4
    assert parts["workspace_mib"] == 1024
    assert parts["profiles"] == [["1x3x224x224"] * 3, ["8x3x224x224"] * 3]


def test_key_parts_change_with_each_thing_the_engine_depends_on():
    base = dict(trt_version="10.8.0", gpu_name="NVIDIA H100 80GB HBM3")
    ref = key_parts(_spec(), **base)
    assert key_parts(_spec(), **{**base, "gpu_name": "NVIDIA A100-SXM4-80GB"}) != ref
    assert key_parts(_spec(), **{**base, "trt_version": "10.9.0"}) != ref
    assert key_parts(_spec(options=(("opt_level", 5),)), **base) != ref
    assert key_parts(_spec(options=(("profiles", "single"),)), **base) != ref
    assert key_parts(_spec(), **base, builder="trtexec") != ref
    assert key_parts(_spec(), **base) == ref                                  # and is deterministic


def test_timing_cache_is_per_gpu_and_tensorrt_version(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEPROF_CACHE_DIR", str(tmp_path))
    a = timing_cache_path("NVIDIA H100 80GB HBM3", "10.8.0.43")
    assert a.parent == tmp_path / "tensorrt"
    assert a != timing_cache_path("NVIDIA A100-SXM4-80GB", "10.8.0.43")
    assert a != timing_cache_path("NVIDIA H100 80GB HBM3", "11.0.0")
    assert timing_cache_path("x", "1", override=str(tmp_path / "my.cache")) == tmp_path / "my.cache"


def test_dtype_names_and_sidecar_paths():
    class DataType:           # stands in for tensorrt.DataType members, which have a .name
        def __init__(self, name):
            self.name = name

    assert torch_dtype_name(DataType("HALF")) == "float16"
    assert torch_dtype_name(DataType("FLOAT")) == "float32"
    with pytest.raises(EnvironmentProblem):
        torch_dtype_name(DataType("FP4"))
    side = sidecar_paths("/e/engine.plan")
    assert side["graph"].name == "engine.plan.graph.json"
    assert side["profile"].name == "engine.plan.profile.json"
