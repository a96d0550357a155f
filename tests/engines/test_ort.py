import numpy as np
import pytest

from scaleprof.engines import BuildSpec, ShapePoint, ShapeRange, build_engine
from scaleprof.engines.ort import parse_profile
from scaleprof.errors import BadInput

RES = 64


@pytest.fixture(scope="module")
def engine(tiny_onnx, tmp_path_factory):
    spec = BuildSpec(backend="ort", shapes=(ShapePoint(1, RES), ShapePoint(2, RES)), threads=1)
    with build_engine(tiny_onnx, spec, tmp_path_factory.mktemp("engines")).engine as engine:
        yield engine


def test_engine_runs_the_exported_model(engine, tiny_onnx):
    import torch

    from scaleprof.core.onnx_file import load_model
    from scaleprof.engines.torch_backend import model_recipe
    from scaleprof.export.rebuild import rebuild_model

    assert engine.input_shapes() == {"input": ("batch", 3, "height", "width")}
    x = engine.make_inputs(ShapePoint(2, RES))["input"]
    out = engine.run({"input": x})["logits"]
    with torch.no_grad():
        ref = rebuild_model(model_recipe(load_model(tiny_onnx)))(torch.from_numpy(x)).numpy()
    assert out.shape == (2, 1000)
    assert np.abs(out - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_runner_times_one_inference(engine):
    runner = engine.runner(ShapePoint(1, RES))
    times = [runner() for _ in range(5)]
    assert runner.timing_method == "perf_counter" and runner.shape == ShapePoint(1, RES)
    assert all(t > 0 for t in times)


def test_shape_outside_the_set_names_the_engine_shapes(engine):
    assert engine.accepts(ShapePoint(2, RES)) and not engine.accepts(ShapePoint(4, RES))
    with pytest.raises(BadInput, match=r"4x3x64x64 is outside .*\(1x3x64x64, 2x3x64x64\)"):
        engine.runner(ShapePoint(4, RES))
    with pytest.raises(BadInput, match="outside"):
        engine.profile_layers(ShapePoint(1, 96), iterations=2)


def test_ranges_accept_every_shape_inside(tiny_onnx, cache_dir):
    rng = ShapeRange(ShapePoint(1, RES), ShapePoint(2, RES), ShapePoint(4, RES + 32))
    spec = BuildSpec(backend="ort", shapes=(ShapePoint(1, RES),), ranges=(rng,))
    with build_engine(tiny_onnx, spec, cache_dir).engine as engine:
        assert engine.accepts(ShapePoint(3, RES + 16)) and not engine.accepts(ShapePoint(8, RES))
        assert engine.runner(ShapePoint(3, RES + 16))() > 0


def test_profile_layers_names_optimised_nodes(engine):
    import onnx

    trace = engine.profile_layers(ShapePoint(1, RES), iterations=4)
    assert trace.profiler == "onnxruntime" and trace.iterations == 4
    optimised = {n.name for n in onnx.load(str(engine.optimized_model_path)).graph.node}
    assert trace.events and {e.name for e in trace.events} <= optimised
    assert all(len(e.times_ms) == 4 and e.op_type for e in trace.events)
    assert any(e.op_type in ("Conv", "FusedConv") for e in trace.events)
    assert sum(sum(e.times_ms) for e in trace.events) > 0


def test_parse_profile_skips_warmup_runs():
    def run(ts):
        return {"cat": "Session", "name": "model_run", "ts": ts, "dur": 100}

    def node(name, ts, dur, op="Conv"):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}

    events = [run(0), node("a", 10, 999),                                 # warm-up
              run(200), node("a", 210, 50), node("b", 260, 20, "Relu"), {"cat": "Node", "name": "a_fence_before", "ts": 205},
              run(400), node("a", 410, 40)]
    layers = parse_profile(events, iterations=2)
    assert [(e.name, e.op_type, e.times_ms) for e in layers] == [("a", "Conv", (0.05, 0.04)), ("b", "Relu", (0.02, 0.0))]


def test_fp16_engine_needs_an_fp16_export(tiny_onnx, cache_dir):
    with pytest.raises(BadInput, match="fp32 model.*--precision fp16"):
        build_engine(tiny_onnx, BuildSpec(backend="ort", precision="fp16", shapes=(ShapePoint(1, RES),)), cache_dir)


@pytest.mark.parametrize("options, words", [((("bogus", 1),), "unknown ort option"),
                                            ((("opt_level", "max"),), "optimisation level"),
                                            ((("ep", "cuda"),), "does not run on device 'cpu'")])
def test_bad_options(tiny_onnx, cache_dir, options, words):
    with pytest.raises(BadInput, match=words):
        build_engine(tiny_onnx, BuildSpec(backend="ort", shapes=(ShapePoint(1, RES),), options=options), cache_dir)
