"""TensorRT-RTX for real: the shared TensorRT build path run with the ``tensorrt_rtx`` module on a
host without a GPU (ahead-of-time builds of a tiny CNN and EfficientNet-B0, one and three
optimisation profiles), the parser's errors, an invalid profile, an fp16 export, the layer file
and the builder's memory figures, and the one-line refusal to profile without a GPU.

The library is part of the dev extra, so CI runs these; they skip only where its wheel does not
exist (not x86-64)."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest

from scaleprof import cli
from scaleprof.engines.base import BuildSpec, ShapePoint as P, ShapeRange as R
from scaleprof.errors import BadInput, EnvironmentProblem

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx has no wheel for this platform (x86-64 only)")

B0_RES = 64                 # the resolution of the shared b0_onnx fixture (tests/conftest.py)


@pytest.fixture(scope="module")
def fp16_onnx(tmp_path_factory):
    """A tiny CNN exported with fp16 weights and activations (what --precision fp16 writes)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4)).half().eval()
    path = tmp_path_factory.mktemp("fp16") / "tiny_fp16.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32).half(),), str(path), input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}},
                          dynamo=False, opset_version=17)
    return path


@pytest.fixture
def scaleprof(monkeypatch, capsys):
    def call(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def _spec(*shapes, **kw):
    return BuildSpec(backend="tensorrt-rtx", device="cuda", shapes=tuple(shapes), **kw)


@pytest.fixture(scope="module")
def tiny_engine(foreign_onnx, tmp_path_factory):
    from scaleprof.engines.cache import build_engine

    return build_engine(foreign_onnx, _spec(P(1, 32)), tmp_path_factory.mktemp("engines")).engine


@pytest.fixture(scope="module")
def b0_engines(b0_onnx, tmp_path_factory):
    """B0 built from the command line with one profile and with three (one per resolution)."""
    out = tmp_path_factory.mktemp("b0-out")
    engines = {}
    for resolutions in ("64", "64,96,128"):
        assert cli.main(["build", str(b0_onnx), "--backend", "tensorrt-rtx", "--resolution", resolutions,
                         "-o", str(out), "--json"]) == 0
        from scaleprof.engines.cache import build_engine

        points = tuple(P(1, int(r)) for r in resolutions.split(","))
        engines[len(points)] = build_engine(b0_onnx, _spec(*points), out / "engines").engine   # the cached one
    return engines


# --- builds --------------------------------------------------------------------------------

def test_tiny_cnn_builds_without_a_gpu(tiny_engine):
    m = tiny_engine.manifest
    assert tiny_engine.artifact_path.stat().st_size > 10_000
    assert (m.backend, m.backend_version, m.device) == ("tensorrt-rtx", trt.__version__, "cuda")
    assert m.extras["library"] == "tensorrt_rtx" and m.extras["compute_capabilities"] == ["default"]
    assert m.extras["strongly_typed"] is True and m.extras["timing_cache"] is None
    assert m.extras["profiles"] == [{k: {"batch": 1, "resolution": 32} for k in ("min", "opt", "max")}]
    assert len(m.extras["activation_bytes"]) == 1 and m.extras["activation_bytes"][0] > 0
    assert m.extras["activation_source"] == "builder log"
    assert (tiny_engine.directory / m.extras["layers_json"]).is_file()


def test_cache_key_names_library_version_and_targets(foreign_onnx):
    from scaleprof.engines.backends import get_backend

    backend = get_backend("tensorrt-rtx")
    parts = backend.build_key_parts(_spec(P(1, 32)))
    assert parts["library"] == "tensorrt_rtx" and parts["tensorrt_version"] == trt.__version__
    assert parts["compute_capabilities"] == ["default"]
    chosen = backend.build_key_parts(_spec(P(1, 32), options=(("compute_capabilities", "12.0,8.6"),)))
    assert chosen["compute_capabilities"] == ["8.6", "12.0"]


def test_builds_are_deterministic(foreign_onnx, tiny_engine, tmp_path):
    from scaleprof.engines.cache import build_engine

    again = build_engine(foreign_onnx, _spec(P(1, 32)), tmp_path, force=True).engine
    digest = lambda e: hashlib.sha256(e.artifact_path.read_bytes()).hexdigest()   # noqa: E731
    assert digest(again) == digest(tiny_engine)


def test_explicit_compute_capabilities_are_built_for(foreign_onnx, tmp_path):
    from scaleprof.engines.cache import build_engine

    engine = build_engine(foreign_onnx, _spec(P(1, 32), options=(("compute_capabilities", "8.9"),)), tmp_path).engine
    assert engine.manifest.extras["compute_capabilities"] == ["8.9"]
    with pytest.raises(BadInput, match="not a target of TensorRT-RTX"):
        build_engine(foreign_onnx, _spec(P(1, 32), options=(("compute_capabilities", "6.1"),)), tmp_path)


def test_b0_with_one_and_three_profiles(b0_engines):
    one, three = b0_engines[1], b0_engines[3]
    assert len(one.manifest.extras["profiles"]) == 1 and len(three.manifest.extras["profiles"]) == 3
    assert three.artifact_path.stat().st_size > one.artifact_path.stat().st_size
    memory = three.manifest.extras["activation_bytes"]
    assert len(memory) == 3 and memory == sorted(memory) and memory[0] < memory[2]
    assert one.manifest.extras["activation_bytes"][0] == memory[0]        # same shape, same plan for it


def test_static_export_takes_no_profiles(static_onnx, tmp_path):
    from scaleprof.engines.cache import build_engine

    engine = build_engine(static_onnx, _spec(P(1, 32)), tmp_path).engine
    assert engine.manifest.extras["profiles"] == [] and engine.artifact_path.is_file()
    with pytest.raises(BadInput, match="fixed at"):
        build_engine(static_onnx, _spec(P(2, 32)), tmp_path)


def test_builder_config_takes_the_options():
    from scaleprof.engines.tensorrt.build_api import create_config
    from scaleprof.engines.tensorrt.library import logger_for
    from scaleprof.engines.tensorrt.options import precision_mode, trt_options

    opts = trt_options(_spec(P(1, 32), options=(("opt_level", 4), ("workspace_mib", 512))))
    config = create_config(trt, trt.Builder(logger_for(trt)), opts, precision_mode(11, "fp32", "fp32"), ("SM86", "SM120"))
    assert config.builder_optimization_level == 4
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 512 << 20
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED
    assert config.num_compute_capabilities == 2 and config.get_compute_capability(1) == trt.ComputeCapability.SM120


# --- fp16 ----------------------------------------------------------------------------------

def test_fp16_export_builds_strongly_typed_in_fp16(fp16_onnx, tmp_path):
    from scaleprof.engines.cache import build_engine
    from scaleprof.engines.tensorrt.network import read_layers

    engine = build_engine(fp16_onnx, _spec(P(1, 32), precision="fp16"), tmp_path).engine
    m = engine.manifest
    assert (m.extras["precision_mode"], m.extras["onnx_precision"]) == ("strongly-typed", "fp16")
    conv = [l for l in read_layers(engine.directory / m.extras["layers_json"]) if l["type"] == "CONVOLUTION"]
    assert conv and {l["precision"] for l in conv} == {"fp16"}


def test_precision_that_the_export_does_not_hold_is_refused(fp16_onnx, foreign_onnx, tmp_path):
    from scaleprof.engines.cache import build_engine

    with pytest.raises(BadInput, match="TensorRT-RTX builds strongly typed networks only"):
        build_engine(foreign_onnx, _spec(P(1, 32), precision="fp16"), tmp_path)
    with pytest.raises(BadInput, match="fp16 weights but fp32 was asked for"):
        build_engine(fp16_onnx, _spec(P(1, 32)), tmp_path)


# --- errors --------------------------------------------------------------------------------

def _model(path, nodes, weights=(), domains=()):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["n", 4, "h", "w"])],
                              list(weights))
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def _conv(name="stem_conv", channels=3):
    import numpy as np
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, channels, 3, 3), np.float32), f"{name}.weight")
    return helper.make_node("Conv", ["input", weight.name], ["c"], name=name, pads=[1, 1, 1, 1]), weight


def test_unknown_operator_is_named_with_its_node(tmp_path):
    from onnx import helper

    from scaleprof.engines.cache import build_engine

    conv, weight = _conv()
    odd = helper.make_node("FancyOp", ["c"], ["out"], name="weird_node", domain="com.example")
    path = _model(tmp_path / "unknown.onnx", [conv, odd], [weight], domains=["com.example"])
    with pytest.raises(BadInput) as info:            # the file is what is wrong: exit 2
        build_engine(path, _spec(P(1, 32)), tmp_path / "engines")
    message = str(info.value)
    assert "\n" not in message and "cannot parse unknown.onnx" in message
    assert "node 'weird_node' (FancyOp)" in message


def test_weights_that_do_not_fit_their_node_are_named(tmp_path):
    from scaleprof.engines.cache import build_engine

    conv, weight = _conv(channels=5)                    # the input has 3 channels
    conv.output[0] = "out"
    path = _model(tmp_path / "badweights.onnx", [conv], [weight])
    with pytest.raises(BadInput, match=r"node 'stem_conv' \(Conv\): .*[Kk]ernel weight"):
        build_engine(path, _spec(P(1, 32)), tmp_path / "engines")


def test_truncated_file(b0_onnx, tmp_path):
    """scaleprof's loader refuses it in one line before TensorRT sees it; TensorRT's parser, handed
    the same bytes, fails to deserialize the model."""
    from scaleprof.engines.cache import build_engine
    from scaleprof.engines.tensorrt.build_api import build_serialized
    from scaleprof.engines.tensorrt.options import precision_mode

    cut = tmp_path / "cut.onnx"
    cut.write_bytes(b0_onnx.read_bytes()[: b0_onnx.stat().st_size // 2])
    with pytest.raises(BadInput, match="corrupt or truncated"):
        build_engine(cut, _spec(P(1, 64)), tmp_path / "engines")
    with pytest.raises(BadInput, match="cannot parse cut.onnx: .*(parse|deserializ)"):
        build_serialized(trt, cut, _spec(P(1, 64)), precision_mode(11, "fp32", "fp32"), cache_bytes=None)


def test_invalid_profile_is_refused_with_its_index(foreign_onnx):
    from scaleprof.engines.tensorrt.build_api import add_ranges, parse_network
    from scaleprof.engines.tensorrt.library import logger_for
    from scaleprof.engines.tensorrt.options import precision_mode

    builder = trt.Builder(logger_for(trt))
    network, _ = parse_network(trt, builder, foreign_onnx, precision_mode(11, "fp32", "fp32"))
    config = builder.create_builder_config()
    good, bad = R(P(1, 32), P(1, 32), P(1, 32)), R(P(1, 64), P(1, 32), P(1, 64))    # opt below min
    logger_for(trt).book.reset()
    with pytest.raises(BadInput) as info:
        add_ranges(trt, builder, config, {"input": (-1, 3, -1, -1)}, (good, bad))
    message = str(info.value)
    assert "rejected optimisation profile 1" in message and "MIN<=OPT<=MAX" in message
    assert "cudaError" not in message                   # the driver noise that follows is not the cause


def test_a_failure_reports_its_own_error_not_an_earlier_one(tmp_path, foreign_onnx):
    from onnx import helper

    from scaleprof.engines.tensorrt.build_api import build_serialized
    from scaleprof.engines.tensorrt.options import precision_mode

    conv, weight = _conv()
    odd = helper.make_node("FancyOp", ["c"], ["out"], name="weird_node", domain="com.example")
    path = _model(tmp_path / "unknown.onnx", [conv, odd], [weight], domains=["com.example"])
    mode = precision_mode(11, "fp32", "fp32")
    with pytest.raises(BadInput, match="weird_node"):
        build_serialized(trt, path, _spec(P(1, 32)), mode, cache_bytes=None)
    # Turing has no fp32 GEMM kernels in TensorRT-RTX: building the Linear layer for it is refused
    with pytest.raises(BadInput) as info:
        build_serialized(trt, foreign_onnx, _spec(P(1, 32)), mode, cache_bytes=None, targets=("SM75",))
    message = str(info.value)
    assert "weird_node" not in message and "compute capability 7.5 (Turing)" in message
    assert "drop 7.5 from compute_capabilities" in message


# --- layers and memory ---------------------------------------------------------------------

def test_layer_file_maps_every_b0_node(b0_engines, b0_onnx):
    from scaleprof.complexity import count_onnx
    from scaleprof.core.onnx_file import load_model
    from scaleprof.engines.tensorrt.network import layer_counts, read_layers
    from scaleprof.profile.layers import node_counts

    engine = b0_engines[1]
    layers = read_layers(engine.directory / engine.manifest.extras["layers_json"])
    nodes = [n.name for n in load_model(b0_onnx, load_weights=False).graph.node]
    named = {l["name"] for l in layers}
    assert set(nodes) <= named                                   # one layer per node, with its name
    assert set(nodes) == {n for l in layers for n in l["onnx_nodes"]}   # metadata: [ONNX Layer: node]
    stem = next(l for l in layers if l["name"] == "/conv_stem/Conv")
    assert (stem["type"], stem["onnx_nodes"], stem["precision"]) == ("CONVOLUTION", ["/conv_stem/Conv"], "fp32")
    counts = count_onnx(b0_onnx, 1, B0_RES)
    rows = layer_counts(layers, node_counts(counts))
    assert sum(r["flops"] for r in rows) == counts.flops and sum(r["acts"] for r in rows) == counts.acts
    assert next(r for r in rows if r["name"] == "/conv_stem/Conv")["acts"] == 32 * (B0_RES // 2) ** 2


def test_inspect_shows_layers_and_memory_against_the_prediction(b0_engines, scaleprof):
    engine = b0_engines[3]
    code, out, err = scaleprof("inspect", engine.directory, "--json")
    assert code == 0, err
    net = json.loads(out)["network_layers"]
    assert net["summary"]["onnx_nodes"] == 239 and net["counts_resolution"] == B0_RES
    assert [row["resolution"] for row in net["memory"]] == [64, 96, 128]
    for row in net["memory"]:      # at 64-128 px the builder's ~8 MiB granularity dominates: no ordering asserted
        assert row["activation_bytes"] > 0 and row["predicted_bytes"] > 0 and row["ratio"] > 0
    code, out, _ = scaleprof("inspect", engine.directory)
    assert "network layers before fusion" in out and "MMACs" in out
    assert out.count("memory     profile") == 3 and "builder log" in out


# --- no GPU --------------------------------------------------------------------------------

def test_profiling_without_a_gpu_is_one_line(tiny_engine, scaleprof):
    code, out, err = scaleprof("profile", tiny_engine.directory)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1, err
    assert "needs an RTX-class NVIDIA GPU" in lines[0] and "this host has none" in lines[0]
    with pytest.raises(EnvironmentProblem, match="RTX-class"):
        tiny_engine.load()
