import numpy as np
import pytest

from scaleprof.engines import BuildSpec, ShapePoint, build_engine
from scaleprof.engines.torch_profile import ROOT, module_of_node
from scaleprof.errors import BadInput
from scaleprof.export.rebuild import rebuild_model

RES = 64


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


gpu = pytest.mark.skipif(not _cuda(), reason="needs an NVIDIA GPU visible to PyTorch")


@pytest.fixture(scope="module")
def engines(tiny_onnx, tmp_path_factory):
    cache = tmp_path_factory.mktemp("engines")
    shapes = (ShapePoint(1, RES), ShapePoint(2, RES))
    torch_engine = build_engine(tiny_onnx, BuildSpec(backend="torch", shapes=shapes, threads=1), cache,
                                model_source=rebuild_model).engine
    ort_engine = build_engine(tiny_onnx, BuildSpec(backend="ort", shapes=shapes, threads=1), cache).engine
    with torch_engine, ort_engine:
        yield torch_engine, ort_engine


def test_torch_engine_computes_what_the_onnx_engine_computes(engines):
    torch_engine, ort_engine = engines
    x = ort_engine.make_inputs(ShapePoint(2, RES))
    a, b = torch_engine.run(x)["logits"], ort_engine.run(x)["logits"]
    assert a.shape == b.shape == (2, 1000)
    assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(b).max())
    assert torch_engine.input_shapes() == {"input": ("batch", 3, "height", "width")}


def test_runner_on_cpu(engines):
    runner = engines[0].runner(ShapePoint(2, RES))
    assert runner.timing_method == "perf_counter" and runner() > 0
    with pytest.raises(BadInput, match="outside this torch engine's shape set"):
        engines[0].runner(ShapePoint(8, RES))


def test_profile_attributes_time_to_modules_and_onnx_nodes(engines, tiny_onnx):
    import onnx

    trace = engines[0].profile_layers(ShapePoint(1, RES), iterations=3)
    assert trace.profiler == "torch.profiler" and trace.iterations == 3
    by_name = {e.name: e for e in trace.events}
    stem = by_name["stem.conv + stem.bn"]                # the BatchNorm the export folded into the conv
    assert stem.op_type == "Conv2d + BatchNormAct2d" and stem.onnx_nodes == ("/stem/conv/Conv",)
    assert len(stem.times_ms) == 3 and all(t > 0 for t in stem.times_ms)
    exported = {n.name for n in onnx.load(str(tiny_onnx)).graph.node}
    mapped = [n for e in trace.events for n in e.onnx_nodes]
    assert mapped and set(mapped) <= exported and len(mapped) == len(set(mapped))
    convs = {n for n in exported if n.endswith("/Conv")}
    assert convs <= set(mapped)                      # every exported conv belongs to a profiled module
    modules = dict(engines[0].model.named_modules())
    assert "" not in by_name and all(part == ROOT or part in modules for e in trace.events
                                     for part in e.name.split(" + "))


def test_module_of_node_reads_both_exporters():
    import onnx

    modules = {"", "blocks", "blocks.0", "blocks.0.0", "blocks.0.0.conv_dw", "head"}
    ts = onnx.helper.make_node("Conv", ["x", "w"], ["y"], name="/blocks/blocks.0/blocks.0.0/conv_dw/Conv")
    assert module_of_node(ts, modules) == "blocks.0.0.conv_dw"
    top = onnx.helper.make_node("Flatten", ["x"], ["y"], name="/Flatten")
    assert module_of_node(top, modules) == ""
    dyn = onnx.helper.make_node("Conv", ["x", "w"], ["y"], name="node_Conv_12")
    entry = dyn.metadata_props.add()
    entry.key, entry.value = "pkg.torch.onnx.name_scopes", "['', 'blocks', 'blocks.0', 'blocks.0.0', 'conv2d']"
    assert module_of_node(dyn, modules) == "blocks.0.0"


def test_foreign_onnx_has_no_model_to_rebuild(foreign_onnx, cache_dir):
    with pytest.raises(BadInput, match="no scaleprof model spec"):
        build_engine(foreign_onnx, BuildSpec(backend="torch", shapes=(ShapePoint(1, 32),)), cache_dir,
                     model_source=rebuild_model)


def test_torch_engine_without_a_model_source_is_one_line(tiny_onnx, cache_dir, engines):
    """Engines cannot rebuild a network themselves: the caller hands them a model source."""
    spec = BuildSpec(backend="torch", shapes=(ShapePoint(1, RES), ShapePoint(2, RES)), threads=1)
    for attempt in ("build", "load"):               # a fresh cache, then the cached entry of the fixture
        cache = cache_dir if attempt == "build" else engines[0].directory.parent
        with pytest.raises(BadInput, match="needs a model source") as err:
            build_engine(tiny_onnx, spec, cache)
        assert "\n" not in str(err.value) and "rebuild_model" in str(err.value)


@pytest.mark.parametrize("spec_kwargs, words", [
    ({"precision": "fp16"}, "fp16 on CUDA only"),
    ({"options": (("cuda_graph", True),)}, "cuda_graph needs --device cuda"),
    ({"options": (("compile", "fastest"),)}, "compile must be"),
    ({"options": (("nhwc", True),)}, "unknown torch option"),
    ({"options": (("channels_last", "maybe"),)}, "channels_last must be true or false, got 'maybe'"),
])
def test_bad_torch_options(tiny_onnx, cache_dir, spec_kwargs, words):
    with pytest.raises(BadInput, match=words):
        build_engine(tiny_onnx, BuildSpec(backend="torch", shapes=(ShapePoint(1, RES),), **spec_kwargs), cache_dir,
                     model_source=rebuild_model)


def test_channels_last_gives_the_same_answer(engines, tiny_onnx, cache_dir):
    spec = BuildSpec(backend="torch", shapes=(ShapePoint(1, RES),), options=(("channels_last", True),))
    x = engines[1].make_inputs(ShapePoint(1, RES))
    with build_engine(tiny_onnx, spec, cache_dir, model_source=rebuild_model).engine as engine:
        out = engine.run(x)["logits"]
        assert engine.runner(ShapePoint(1, RES))() > 0
    assert np.abs(out - engines[1].run(x)["logits"]).max() < 1e-3


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("precision, graph", [("fp32", True), ("fp16", True), ("fp32", False)])
def test_cuda_runner(tiny_onnx, cache_dir, precision, graph):
    spec = BuildSpec(backend="torch", device="cuda", precision=precision, shapes=(ShapePoint(2, RES),),
                     options=(("cuda_graph", graph),))
    with build_engine(tiny_onnx, spec, cache_dir, model_source=rebuild_model).engine as engine:
        runner = engine.runner(ShapePoint(2, RES))
        assert runner.timing_method == ("cuda-graph+cuda-events" if graph else "cuda-events")
        times = [runner() for _ in range(20)]
        assert all(0 < t < 1000 for t in times)
        x = {"input": np.random.default_rng(0).standard_normal((2, 3, RES, RES)).astype(np.float32)}
        assert np.isfinite(engine.run(x)["logits"]).all()
        trace = engine.profile_layers(ShapePoint(2, RES), iterations=3)
        stem = {e.name: e for e in trace.events}["stem.conv + stem.bn"]
        assert all(t > 0 for t in stem.times_ms)


@pytest.mark.slow
def test_torch_compile(tiny_onnx, cache_dir):
    spec = BuildSpec(backend="torch", shapes=(ShapePoint(1, RES),), options=(("compile", True),))
    with build_engine(tiny_onnx, spec, cache_dir, model_source=rebuild_model).engine as engine:
        runner = engine.runner(ShapePoint(1, RES))
        runner()                                       # compiles
        assert runner() > 0
